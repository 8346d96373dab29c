"""Remote: the connection to lab hosts (Fleet, fan-out), quoting, trusted commands, SSH config."""
