"""The question a command asks before it throws work away: --yes answers it; without a
terminal (stdin piped or closed) it is refused in one line, never read from the pipe."""

from __future__ import annotations

import sys

from rich.prompt import Confirm
from rich.text import Text

from lab.core.errors import LabError


def add_yes(parser, what: str) -> None:
    """The --yes option of a command that asks before throwing work away."""
    parser.add_argument(
        "--yes",
        "-y",
        action="store_true",
        help=f"{what}: do not ask before throwing work away (needed without a terminal)",
    )


def confirm(lab, situation: str, question: str) -> None:
    """Go on only with --yes or a yes at the terminal."""
    if lab.args.yes:
        return
    if not sys.stdin.isatty():
        raise LabError(f"{situation}: not without --yes", hint="run it again with --yes")
    lab.console.print(Text(situation))
    try:
        agreed = Confirm.ask(question, console=lab.console, default=False)
    except EOFError:  # Ctrl-D at the question
        agreed = False
    if not agreed:
        raise LabError("nothing changed", hint="`lab snapshot save NAME` keeps your work first")
