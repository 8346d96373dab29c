"""systemd: what a unit's journal says in the service's own words."""

from __future__ import annotations

from lab.remote import quote

NOISE = (
    "code=exited",
    "Failed with result",
    "Failed to start",
    "Starting ",
    "Started ",
    "Control process exited",
    "Scheduled restart",
    "Stopped ",
    "Stopping ",
    "Consumed ",
    "Deactivated successfully",
    "Main process exited",
    "repeated too quickly",
    "Start request repeated",
)


def journal(unit: str, lines: int = 30) -> str:
    return f"journalctl -u {quote(unit)} -n {int(lines)} --no-pager -o cat"


def own_lines(journal_text: str) -> str:
    """A unit's journal without systemd's own lines: what the service itself said."""
    return "\n".join(
        line
        for line in journal_text.splitlines()
        if line.strip() and not any(noise in line for noise in NOISE)
    )


def first_error(journal_text: str) -> str:
    """The last line the service said itself (the error that stopped it), or ''."""
    lines = own_lines(journal_text).splitlines()
    return lines[-1].strip() if lines else ""
