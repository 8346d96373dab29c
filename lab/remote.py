"""The one place remote commands are quoted and wrapped in sudo, and remote values validated."""

from __future__ import annotations

import re
import shlex

quote = shlex.quote
_PID = re.compile(r"^[1-9][0-9]{0,9}$")


def as_root(command: str) -> str:
    """command run by root through sudo (never prompting) in a POSIX shell."""
    return f"sudo -n sh -c {quote(command)}"


def pid(value: object) -> str | None:
    """value as a process id (digits only) or None: network values never reach a shell raw."""
    text = str(value).strip()
    return text if _PID.match(text) else None
