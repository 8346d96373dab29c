"""Application files: both web servers run the same code base, the one behind Nginx."""

from __future__ import annotations

import posixpath
from typing import NotRequired, TypedDict

from checks.base import Check, failed_all, passed
from lab.facts import proc, systemd
from lab.observe import probes
from lab.remote.quoting import quote

MAX_FILES = 500
CHECKSUMS = (  # the entry point first, then Python files, then the rest, in a fixed order
    "{{ printf '%s\\0' {entry}; find . -xdev -type f -name '*.py' ! -path '*/__pycache__/*' "
    "-print0 | LC_ALL=C sort -z; find . -xdev -type f ! -name '*.py' ! -name '*.pyc' "
    "! -name '*.log' ! -path './.git/*' -size -4M -print0 | LC_ALL=C sort -z; }} "
    f"| head -z -n {MAX_FILES + 1} | xargs -0 -r sha256sum"
)
SYSTEM_DIRECTORIES = ("/", "/root", "/usr", "/etc", "/var", "/home", "/tmp", "/run")


class CodeBaseHost(TypedDict):
    """The code a web server's application server runs."""

    args: NotRequired[str]  # its command line (none: no process holds the socket)
    entry: str  # the entry point's file name ('' not found)
    files: dict[str, str]  # path (from directory) → sha256
    directory: NotRequired[str]  # the entry point's directory (when found)
    capped: NotRequired[bool]  # more than MAX_FILES files: the first ones only


CodeBaseObservation = dict[str, CodeBaseHost]  # by web server


class CodeBase(Check):
    id = "files.code-base"
    design = "app-files"
    section = "application files"
    title = "Both web servers run the same application files"
    requirement = (
        "1 Application Files (Your Code Base): Contains the code, logic, templates, "
        "and resources necessary for the web application."
    )
    points = 5
    hint = (
        "Deploy the same version of the code base to both web servers and restart the "
        "application server there: the entry point it runs and every file beside it must match."
    )
    needs = ("app.server",)
    touches = ()

    def observe(self, lab) -> CodeBaseObservation:
        def probe(host) -> CodeBaseHost:
            master = probes.application(lab, host)["master"]
            if master is None:
                return {"entry": "", "files": {}}
            pid = int(master["pid"])
            cwd = lab.sh(host, f"readlink /proc/{pid}/cwd", sudo=True).strip()
            launched = launch_directory(lab, host, pid, cwd)
            config_path = proc.config_file(master["args"])
            config = read_file(lab, host, launched, config_path) if config_path else ""
            inis = [(posixpath.join(launched, f), "") for f in proc.ini_files(master["args"])]
            inis = [(path, read_file(lab, host, launched, path)) for path, _ in inis]
            uwsgi = None
            if proc.is_uwsgi(master["args"]):  # uwsgi says how it reads them, where it can
                asked = proc.uwsgi_reading(master["args"], launched)
                uwsgi = proc.parse_uwsgi_reading(lab.sh(host, asked, sudo=True, check=False))
            candidates = proc.entry_candidates(master["args"], cwd, config, inis, uwsgi)
            found = lab.sh(
                host,
                "for f in "
                + " ".join(quote(c) for c in candidates)
                + '; do [ -f "$f" ] && echo "$f" && break; done; true',
                sudo=True,
            ).strip()
            if not found:
                return {"args": master["args"], "entry": "", "files": {}}
            directory = posixpath.dirname(found)
            if directory in SYSTEM_DIRECTORIES:
                return {"args": master["args"], "entry": "", "files": {}}
            command = CHECKSUMS.format(entry=quote("./" + posixpath.basename(found)))
            out = lab.sh(host, f"cd {quote(directory)} && {command}", sudo=True, check=False)
            files = {}
            for line in out.splitlines():
                digest, _, path = line.partition("  ")
                files.setdefault(path.strip().removeprefix("./"), digest)
            return {
                "args": master["args"],
                "entry": posixpath.basename(found),
                "directory": directory,
                "files": files,
                "capped": len(out.splitlines()) > MAX_FILES,
            }

        return lab.on_each(lab.web_hosts(), probe)

    def judge(self, hosts: CodeBaseObservation):
        problems = []
        for host, info in hosts.items():
            if not info["entry"]:
                problems.append(
                    f"{host}: the grader could not find the code the application server runs "
                    f"({info.get('args') or 'no process'})"
                )
        if problems:
            return failed_all(problems)
        (first, a), *others = hosts.items()
        for host, b in others:
            if a["entry"] != b["entry"]:
                problems.append(f"{first} runs {a['entry']} but {host} runs {b['entry']}")
                continue
            differ = sorted(
                p
                for p in set(a["files"]) | set(b["files"])
                if a["files"].get(p) != b["files"].get(p)
            )
            if differ:
                shown = ", ".join(differ[:5]) + (" ..." if len(differ) > 5 else "")
                problems.append(
                    f"{first} ({a['directory']}) and {host} ({b['directory']}) differ: {shown}"
                )
        if problems:
            return failed_all(problems)
        capped = f" (the first {MAX_FILES}: Python files first)" if a.get("capped") else ""
        return passed(
            f"{len(a['files'])} files identical{capped}, entry point {a['entry']}: "
            + ", ".join(f"{h} ({i['directory']})" for h, i in hosts.items())
        )


def launch_directory(lab, host: str, pid: int, cwd: str) -> str:
    """The folder the server was started in, against which it read the relative paths of its
    configuration files (before a chdir of its own): its systemd unit's WorkingDirectory, as
    systemd says (`/` by default), else its working directory now."""
    unit = systemd.parse_unit(lab.sh(host, systemd.unit_of(pid), check=False))
    if not unit:
        return cwd
    shown = lab.sh(host, systemd.working_directory(unit), check=False).strip().removeprefix("-")
    if not shown:
        return "/"
    return shown if shown.startswith("/") else cwd  # "~": a home its working directory names


def read_file(lab, host: str, directory: str, path: str) -> str:
    """The start of a configuration file (a relative path is read from directory)."""
    full = posixpath.join(directory, path)
    return lab.sh(host, f"head -c 65536 -- {quote(full)}", sudo=True, check=False)
