"""Lab state files, overlay writes and the rendered ssh config."""

import io
import os
import stat

from lab.core.state import LabState, write_private
from lab.providers.lxcimage import write_into
from lab.remote.connection import HostSpec, connect
from lab.remote.sshconfig import render


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_private_files_are_0600(tmp_path):
    path = tmp_path / "d" / "secret"
    write_private(path, "x")
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700


def test_secrets_are_generated_once_per_lab_and_differ_between_labs(tmp_path):
    one, two = LabState("one", tmp_path), LabState("two", tmp_path)
    first = one.secret("db_password")
    assert first == one.secret("db_password")
    assert len(first) >= 24
    assert two.secret("db_password") != first
    assert mode(one.secrets_file) == 0o600


def test_state_records_merge_and_remove(tmp_path):
    state = LabState("one", tmp_path)
    assert not state.exists and state.load() == {}
    state.save(provider="lxc")
    state.save(containers=["a"])
    assert state.load() == {"provider": "lxc", "containers": ["a"]}
    key = state.ensure_key()
    assert mode(key) == 0o600 and state.public_key.startswith("ssh-ed25519 ")
    state.remove()
    assert not state.dir.exists()


def test_write_into_overlay_copies_parent_ownership_and_mode(tmp_path):
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    (lower / "home/lab/.ssh").mkdir(parents=True)
    os.chmod(lower / "home/lab/.ssh", 0o700)
    upper.mkdir()
    write_into(upper, lower, "home/lab/.ssh/authorized_keys", "key\n", 0o600, (0, 0))
    assert (upper / "home/lab/.ssh/authorized_keys").read_text() == "key\n"
    assert mode(upper / "home/lab/.ssh") == 0o700
    assert mode(upper / "home/lab/.ssh/authorized_keys") == 0o600


def test_ssh_config_pins_key_and_known_hosts(tmp_path):
    spec = HostSpec("web-01", "192.168.56.11", 22, "lab", tmp_path / "id", tmp_path / "kh")
    text = render([spec, HostSpec("lb-01", "192.168.56.10", 2222, "lab", tmp_path / "id")])
    assert "Host web-01\n  HostName 192.168.56.11\n  Port 22\n  User lab\n" in text
    assert f'IdentityFile "{tmp_path / "id"}"' in text
    assert "StrictHostKeyChecking yes" in text
    assert "Host lb-01\n  HostName 192.168.56.10\n  Port 2222" in text
    assert text.count("StrictHostKeyChecking") == 1


def test_remote_commands_get_no_local_stdin_unless_given_input(tmp_path):
    """invoke forwards the local stdin by default: an endless one (`yes | lab ...`) would keep
    every remote command from returning."""
    conn = connect(HostSpec("web-01", "192.168.56.11", 22, "lab", tmp_path / "id"))
    runner = conn.config.runners.remote(context=conn)
    runner._unify_kwargs_with_config({"hide": True})  # how run() resolves its streams
    assert runner.streams["in"] is False
    runner._unify_kwargs_with_config({"in_stream": io.StringIO("data")})
    assert runner.streams["in"].read() == "data"
