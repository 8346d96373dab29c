"""Processes: who they are (ps) and which code a WSGI server runs (its command line)."""

from __future__ import annotations

import contextlib
import posixpath
import re
import time
from dataclasses import dataclass

from lab.remote.quoting import pid as valid_pid
from lab.remote.quoting import quote

HOSTNAME = "cat /proc/sys/kernel/hostname"  # the kernel's own word, no program's
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


UNITS = "ps -e -o pid=,ppid=,unit=,comm="  # every process, its parent and its service


def parse_units(text: str) -> dict[int, tuple[int, str, str]]:
    """`ps -e -o pid=,ppid=,unit=,comm=` as pid → (parent pid, systemd unit, program name)."""
    found = {}
    for line in text.splitlines():
        words = line.split(None, 3)
        if len(words) == 4 and words[0].isdigit() and words[1].isdigit():
            found[int(words[0])] = (int(words[1]), words[2], words[3].strip())
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
INI_OPTIONS = ("--ini",)
_UWSGI_KEYS = {  # uwsgi's names (and aliases) for the settings that lead to the code
    "module": "module",
    "wsgi": "module",
    "wsgi-file": "wsgi-file",
    "file": "wsgi-file",
    "chdir": "chdir",
    "pythonpath": "pythonpath",
    "python-path": "pythonpath",
    "pp": "pythonpath",
    "mount": "mount",
}
_UWSGI_REF = re.compile(r"%\(([\w-]+)\)")


def config_file(args: str) -> str | None:
    """The gunicorn configuration file on a command line (-c FILE), if any."""
    return _option([w.strip("[]") for w in args.split()], *CONFIG_OPTIONS)


def is_uwsgi(args: str) -> bool:
    words = args.split()
    return bool(words) and any(posixpath.basename(w).startswith("uwsgi") for w in words[:2])


def ini_files(args: str) -> list[str]:
    """The INI files a uwsgi command line loads, in its order (`--ini FILE[:SECTION]`, or a
    bare `FILE.ini` argument, which uwsgi reads as --ini), without their section."""
    if not is_uwsgi(args):
        return []
    words, found = args.split(), []
    for i, word in enumerate(words[1:], 1):
        if word in INI_OPTIONS and i + 1 < len(words):
            found.append(words[i + 1])
        elif word.startswith("--ini="):
            found.append(word.split("=", 1)[1])
        elif word.split(":")[0].endswith(".ini") and words[i - 1] not in INI_OPTIONS:
            found.append(word)
    return [f if f.endswith(".ini") or ":" not in f else f.rsplit(":", 1)[0] for f in found]


def parse_uwsgi_ini(text: str, path: str, section: str = "uwsgi") -> list[tuple[str, str]]:
    """The code-locating settings of an INI file's [uwsgi] section as uwsgi reads them, in
    order (a key may repeat): option aliases folded (not `_` for `-`: uwsgi ignores
    `wsgi_file`), `%d` (the file's folder), `%n` (its name without extension) and `%(key)` (an
    earlier value) filled in."""
    folder = posixpath.dirname(path).rstrip("/") + "/"
    name = posixpath.splitext(posixpath.basename(path))[0]
    current, values, found = None, {}, []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1].strip()
            continue
        if current != section or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key, value = key.strip(), value.strip().strip("\"'")
        value = value.replace("%d", folder).replace("%n", name)
        value = _UWSGI_REF.sub(lambda m: values.get(m.group(1), m.group(0)), value)
        values[key] = value
        if key in _UWSGI_KEYS:
            found.append((_UWSGI_KEYS[key], value))
    return found


UWSGI = "/usr/bin/uwsgi-core"  # the distribution's program (not /usr/bin/uwsgi: an alternative)
UWSGI_ASKED = tuple(_UWSGI_KEYS)  # --get finds an option by the name it was given


def uwsgi_reading(args: str, directory: str) -> str:
    """Shell asking the distribution's uwsgi how it reads a server's command line (its INI
    files included) from directory, where that server started: `--get OPTION` prints an
    option's values and exits, one option at a time (`== OPTION` before each)."""
    line = " ".join(quote(w) for w in args.split()[1:])
    return (
        f'cd {quote(directory)} && for o in {" ".join(UWSGI_ASKED)}; do echo "== $o"; '
        f'{UWSGI} {line} --get "$o" 2>/dev/null; done'
    )


def parse_uwsgi_reading(text: str) -> dict[str, list[str]]:
    """`uwsgi_reading` output as option (aliases folded) → its values (options uwsgi did not
    name: absent); {} when uwsgi answered none (not installed, or not its command line)."""
    found: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("== ") and line[3:] in UWSGI_ASKED:
            current = _UWSGI_KEYS[line[3:]]
        elif current and line.strip():
            found.setdefault(current, []).append(line.strip())
    return found


def uwsgi_settings(words: list[str], inis: list[tuple[str, str]]) -> dict[str, list[str]]:
    """uwsgi's settings from its INI files, then its own command line (read later: it wins)."""
    settings: dict[str, list[str]] = {}
    for path, text in inis:
        for key, value in parse_uwsgi_ini(text, path):
            settings.setdefault(key, []).append(value)
    for i, word in enumerate(words[:-1]):
        key = "module" if word == "-w" else None
        key = key or (_UWSGI_KEYS.get(word[2:]) if word.startswith("--") else None)
        if key:
            settings.setdefault(key, []).append(words[i + 1])
    return settings


def entry_candidates(args: str, cwd: str, config: str = "", inis=(), uwsgi=None) -> list[str]:
    """Files that may hold the entry point of a WSGI server or script, most likely first.

    Understands gunicorn (`[--chdir D] [--pythonpath P] module:callable`, or `wsgi_app`, `chdir`
    and `pythonpath` in its -c configuration file), uwsgi (`--module`, `--wsgi-file`, `--chdir`,
    `--pythonpath`, `--mount`, as uwsgi itself read them when given (`uwsgi`, from
    parse_uwsgi_reading), else from its command line and INI files (`inis`: their (path,
    text))) and `python FILE`.
    """
    words = [w.strip("[]") for w in args.split()]
    if is_uwsgi(args):
        return _uwsgi_candidates(uwsgi or uwsgi_settings(words, list(inis)), cwd)
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
        return _module_files(module, roots)
    skip = {_option(words, *CONFIG_OPTIONS)}
    scripts = [w for w in words if w.endswith(".py") and w not in skip]
    return [posixpath.join(base, scripts[0])] if scripts else []


# -- when a service loaded its configuration, and when its files changed ----------------------
SLACK = 1.0  # seconds: the boot time in /proc/stat is whole seconds


def loaded_and_changed(pids, paths) -> str:
    """A shell line printing the boot time, clock ticks per second, the /proc/PID/stat line of
    each pid (validated) and the mtime of each path (quoted by the caller's quote())."""
    checked = [p for p in (valid_pid(x) for x in pids) if p]
    stats = " ".join(f"/proc/{p}/stat" for p in checked) or "/dev/null"
    files = " ".join(quote(p) for p in paths) or "/dev/null"
    return (
        "grep '^btime ' /proc/stat; echo \"ticks $(getconf CLK_TCK)\"; "
        f"cat {stats} 2>/dev/null; stat -L -c 'mtime %.9Y %.9Z %n' {files} 2>/dev/null; true"
    )


def parse_loaded_and_changed(text: str) -> tuple[dict[int, float], dict[str, float]]:
    """(pid → when it started, path → when it last changed: its mtime, or its ctime if later), in
    seconds since the epoch."""
    boot, ticks, stats, mtimes = None, 100, [], {}
    for line in text.splitlines():
        words = line.split()
        if len(words) == 2 and words[0] == "btime" and words[1].isdigit():
            boot = int(words[1])
        elif len(words) == 2 and words[0] == "ticks" and words[1].isdigit():
            ticks = int(words[1]) or 100
        elif line.startswith("mtime ") and len(words) >= 3:
            with contextlib.suppress(ValueError):
                path, when = _changed(line)
                mtimes[path] = when
        elif ")" in line and words and words[0].isdigit():
            stats.append(line)
    started = {}
    for line in stats if boot is not None else []:
        fields = line.rpartition(")")[2].split()  # the name in () may hold spaces
        if len(fields) > 19 and fields[19].isdigit():  # starttime: field 22 of proc(5)
            started[int(line.split()[0])] = boot + int(fields[19]) / ticks
    return started, mtimes


def _changed(line: str) -> tuple[str, float]:
    """A `mtime MTIME CTIME PATH` line as (path, the later time): the ctime (the inode's last
    change, which `touch -d` cannot set back) counts as much as the mtime. The older `mtime
    MTIME PATH` lines have the mtime alone."""
    _, mtime, rest = line.split(" ", 2)
    ctime, _, path = rest.partition(" ")
    if path.startswith("/"):
        with contextlib.suppress(ValueError):
            return path, max(float(mtime), float(ctime))
    return rest, float(mtime)


def stale_config(loaded: float | None, mtimes: dict[str, float]) -> tuple[str, float] | None:
    """The newest configuration file changed after the running configuration was loaded (the
    youngest process of the service started), as (path, mtime); None when none did."""
    if loaded is None or not mtimes:
        return None
    path, changed = max(mtimes.items(), key=lambda item: item[1])
    return (path, changed) if changed > loaded + SLACK else None


def clock(seconds: float) -> str:
    """HH:MM:SS of a moment, as this machine's clock shows it."""
    return time.strftime("%H:%M:%S", time.localtime(seconds))


def older_than_file(service: str, loaded: float | None, mtimes: dict[str, float]) -> str:
    """'SERVICE has been running since HH:MM:SS, before FILE changed at HH:MM:SS: ...', or ''."""
    stale = stale_config(loaded, mtimes)
    if stale is None:
        return ""
    path, changed = stale
    return (
        f"{service} has been running since {clock(loaded)}, before {posixpath.basename(path)} "
        f"changed at {clock(changed)}: the running configuration is older than the file; "
        "reload it"
    )


def _module_files(module: str, roots: list[str]) -> list[str]:
    dotted = module.split(":")[0].replace(".", "/")
    return [
        path
        for root in roots
        for path in (
            posixpath.join(root, f"{dotted}.py"),
            posixpath.join(root, dotted, "__init__.py"),
        )
    ]


def _uwsgi_candidates(settings: dict[str, list[str]], cwd: str) -> list[str]:
    """uwsgi changes into `chdir` before it loads the application (so cwd is already there);
    a wsgi-file, else a module, else a mount's application, found from there or a pythonpath."""
    base = settings.get("chdir", [cwd])[-1]
    roots = [base, *(posixpath.join(base, p) for p in settings.get("pythonpath", []))]
    apps = [m.split("=", 1)[1] for m in settings.get("mount", []) if "=" in m]
    files = settings.get("wsgi-file", []) + [a for a in apps if a.endswith(".py")]
    if files:
        return [posixpath.join(base, files[-1])]
    modules = settings.get("module", []) + [a for a in apps if not a.endswith(".py")]
    return _module_files(modules[-1], roots) if modules else []
