"""systemd: which unit runs a process, and what its journal says in the service's own words."""

from __future__ import annotations

import re

from lab.remote.quoting import pid as valid_pid
from lab.remote.quoting import quote

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


def journal(unit: str, lines: int = 30, since: str = "") -> str:
    """A unit's last lines (of those since `since`, e.g. "-60s", when given: journalctl's own
    -n would count them from the start of that window, not back from its end)."""
    if since:
        window = f"journalctl -u {quote(unit)} --since {quote(since)} --no-pager -o cat"
        return f"{window} | tail -n {int(lines)}"
    return f"journalctl -u {quote(unit)} -n {int(lines)} --no-pager -o cat"


def unit_of(pid: object) -> str:
    """`ps` naming the systemd unit a process runs in (the pid validated: digits only)."""
    return f"ps -o unit= -p {valid_pid(pid) or '1'}"


def working_directory(unit: str) -> str:
    """The folder systemd starts a unit's processes in (empty: its default, `/`)."""
    return f"systemctl show -p WorkingDirectory --value {quote(unit)}"


def parse_unit(text: str) -> str:
    """The service `ps -o unit=` named, or '' (no unit, a scope or a login session)."""
    words = text.split()
    return words[0] if words and words[0].endswith(".service") else ""


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


# the final line of a traceback: `pymysql.err.OperationalError: (1045, "Access denied ...")`
_EXCEPTION = re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception|Denied|Refused)\b[^:\s]*:\s*\S")
_ERROR_WORDS = re.compile(r"error|denied|refused|exception|fatal|failed", re.IGNORECASE)
_ACCESS_LOG = re.compile(r'"[A-Z]+ \S+ HTTP/[\d.]+" \d{3} ')  # a request logged, not an error
LONGEST = 300


def app_error(journal_text: str) -> str:
    """An application's own last error in its journal: the final line of its last Python
    traceback (the exception and its message), else the last line that speaks of an error
    and is not an access log line; '' when it said none."""
    lines = [line.strip() for line in own_lines(journal_text).splitlines()]
    found = next((line for line in reversed(lines) if _EXCEPTION.match(line)), "")
    if not found:
        words = (line for line in reversed(lines) if not _ACCESS_LOG.search(line))
        found = next((line for line in words if _ERROR_WORDS.search(line)), "")
    return found[:LONGEST]


# a service's error in its own words: HAProxy's [ALERT], Nginx's [emerg] or [crit], or a line
# that speaks of an error; never a notice or a warning
_SEVERE = re.compile(r"\[(alert|emerg|crit|error)\]", re.IGNORECASE)
_MILD = re.compile(r"\[(notice|warn|warning|info|debug)\]", re.IGNORECASE)


def is_error(line: str) -> bool:
    """Whether a service's journal line reports an error (not a notice, warning or request)."""
    if _SEVERE.search(line):
        return True
    return (
        bool(_ERROR_WORDS.search(line)) and not _MILD.search(line) and not _ACCESS_LOG.search(line)
    )


def start_failure(journal_text: str) -> str:
    """Why the service's last start failed, in its own words: the first error it said after
    systemd's last `Starting` line (and before any `Stopping`), without its prefix; '' when it
    said none (it started, or was stopped on purpose)."""
    lines = [line.strip() for line in journal_text.splitlines() if line.strip()]
    starts = [i for i, line in enumerate(lines) if line.startswith("Starting ")]
    window = lines[starts[-1] + 1 :] if starts else lines
    stops = [i for i, line in enumerate(window) if line.startswith("Stopping ")]
    window = window[: stops[0]] if stops else window
    said = own_lines("\n".join(window)).splitlines()
    found = next((line for line in said if is_error(line)), "")
    return " ".join(found.split())[:LONGEST]
