"""Processes: who they are (ps) and which code a WSGI server runs (its command line)."""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

from lab.remote import pid as valid_pid

_WSGI_SPEC = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*(\(.*\))?$")  # module:callable


@dataclass(frozen=True)
class Process:
    pid: int
    ppid: int
    name: str
    args: str


def ps(pids) -> str:
    """`ps` for the given pids (each validated: digits only)."""
    checked = [p for p in (valid_pid(x) for x in pids) if p]
    return f"ps -o pid=,ppid=,comm=,args= -p {','.join(checked) or '1'}"


def parse_ps(text: str) -> dict[int, Process]:
    """`ps -o pid=,ppid=,comm=,args=` lines by pid."""
    found = {}
    for line in text.splitlines():
        fields = line.split(None, 3)
        if len(fields) >= 3 and fields[0].isdigit() and fields[1].isdigit():
            found[int(fields[0])] = Process(
                int(fields[0]), int(fields[1]), fields[2], fields[3] if len(fields) > 3 else ""
            )
    return found


def eldest(processes: dict[int, Process]) -> Process | None:
    """The process whose parent is not among them (a WSGI server's master)."""
    for process in processes.values():
        if process.ppid not in processes:
            return process
    return next(iter(processes.values()), None)


def _option(args: list[str], *names: str) -> str | None:
    for i, arg in enumerate(args):
        for name in names:
            if arg == name and i + 1 < len(args):
                return args[i + 1]
            if name.startswith("--") and arg.startswith(name + "="):
                return arg.split("=", 1)[1]
    return None


def entry_candidates(args: str, cwd: str) -> list[str]:
    """Files that may hold the entry point of a WSGI server or script, most likely first.

    Understands gunicorn (`[--chdir D] module:callable`), uwsgi (`--module`, `--wsgi-file`,
    `--chdir`) and `python FILE`.
    """
    words = [w.strip("[]") for w in args.split()]
    base = _option(words, "--chdir") or cwd
    wsgi_file = _option(words, "--wsgi-file", "--file")
    if wsgi_file:
        return [posixpath.join(base, wsgi_file)]
    module = _option(words, "--module", "-w", "--wsgi")
    if not module:
        specs = [w for w in words[1:] if _WSGI_SPEC.match(w)]
        module = specs[-1] if specs else None
    if module:
        dotted = module.split(":")[0].replace(".", "/")
        return [posixpath.join(base, f"{dotted}.py"), posixpath.join(base, dotted, "__init__.py")]
    scripts = [w for w in words if w.endswith(".py")]
    return [posixpath.join(base, scripts[0])] if scripts else []
