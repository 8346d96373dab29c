"""The command line: arguments, commands (lab/cli/commands) and everything rich prints."""
