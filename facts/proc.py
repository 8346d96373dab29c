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


CONFIG_OPTIONS = ("-c", "--config")
_SETTING = re.compile(r"""^\s*(wsgi_app|chdir|pythonpath)\s*=\s*['"]([^'"]+)['"]""", re.M)


def config_file(args: str) -> str | None:
    """The gunicorn configuration file on a command line (-c FILE), if any."""
    return _option([w.strip("[]") for w in args.split()], *CONFIG_OPTIONS)


def entry_candidates(args: str, cwd: str, config: str = "") -> list[str]:
    """Files that may hold the entry point of a WSGI server or script, most likely first.

    Understands gunicorn (`[--chdir D] [--pythonpath P] module:callable`, or `wsgi_app`, `chdir`
    and `pythonpath` in its -c configuration file), uwsgi (`--module`, `--wsgi-file`, `--chdir`)
    and `python FILE`.
    """
    words = [w.strip("[]") for w in args.split()]
    settings = dict(_SETTING.findall(config))
    base = _option(words, "--chdir") or settings.get("chdir") or cwd
    paths = (_option(words, "--pythonpath") or settings.get("pythonpath") or "").split(",")
    roots = [base, *(posixpath.join(base, p) for p in paths if p)]
    wsgi_file = _option(words, "--wsgi-file", "--file")
    if wsgi_file:
        return [posixpath.join(base, wsgi_file)]
    module = _option(words, "--module", "-w", "--wsgi") or settings.get("wsgi_app")
    if not module:
        specs = [w for w in words[1:] if _WSGI_SPEC.match(w)]
        module = specs[-1] if specs else None
    if module:
        dotted = module.split(":")[0].replace(".", "/")
        return [
            path
            for root in roots
            for path in (
                posixpath.join(root, f"{dotted}.py"),
                posixpath.join(root, dotted, "__init__.py"),
            )
        ]
    skip = {_option(words, *CONFIG_OPTIONS)}
    scripts = [w for w in words if w.endswith(".py") and w not in skip]
    return [posixpath.join(base, scripts[0])] if scripts else []
