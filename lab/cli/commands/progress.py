"""`lab progress`: the exercises and the results of their checks, as `lab exercise list`."""

from __future__ import annotations

from lab.cli.commands import exercise
from lab.core.errors import ExitCode

HELP = "where you stand: each exercise with the results of its checks (lab exercise list)"
ORDER = 170  # its place in `lab --help`


def arguments(parser) -> None:
    """No arguments of its own."""


def run(lab) -> ExitCode:
    return exercise.show_list(lab)
