"""`lab ssh-config`: an OpenSSH config for the lab's hosts."""

from __future__ import annotations

import sys

from lab.core.errors import ExitCode

HELP = "print an OpenSSH config for `ssh -F FILE HOST`"
ORDER = 80  # its place in `lab --help`


def arguments(parser) -> None:
    """No arguments of its own."""


def run(lab) -> ExitCode:
    lab.require_up()
    sys.stdout.write(lab.write_ssh_config())
    return ExitCode.OK
