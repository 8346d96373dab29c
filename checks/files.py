"""Application files: both web servers run the same code base, the one behind Nginx."""

from __future__ import annotations

import posixpath

from checks import probes
from checks.base import Check, failed, passed
from facts import proc
from lab.remote import quote

MAX_FILES = 500
CHECKSUMS = (
    "find . -type f ! -path '*/__pycache__/*' ! -path './.git/*' ! -name '*.pyc' ! -name '*.log' "
    f"-size -4M -print0 2>/dev/null | sort -z | head -z -n {MAX_FILES} | xargs -0 -r sha256sum"
)


class CodeBase(Check):
    id = "files.code-base"
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

    def observe(self, lab):
        def probe(host):
            master = probes.application(lab, host)["master"]
            if master is None:
                return {"entry": "", "files": {}}
            cwd = lab.sh(host, f"readlink /proc/{int(master['pid'])}/cwd", sudo=True).strip()
            candidates = proc.entry_candidates(master["args"], cwd)
            found = lab.sh(
                host,
                "for f in "
                + " ".join(quote(c) for c in candidates)
                + '; do [ -f "$f" ] && echo "$f" && break; done; true',
                sudo=True,
            ).strip()
            if not candidates:  # a server whose command line names no code: its directory
                found = posixpath.join(cwd, ".")
            directory = posixpath.dirname(found) if found else cwd
            out = lab.sh(host, f"cd {quote(directory)} && {CHECKSUMS}", sudo=True, check=False)
            files = {}
            for line in out.splitlines():
                digest, _, path = line.partition("  ")
                files[path.strip().removeprefix("./")] = digest
            return {
                "args": master["args"],
                "entry": posixpath.basename(found),
                "directory": directory,
                "files": files,
            }

        return lab.on_each(lab.web_hosts(), probe)

    def judge(self, hosts):
        problems = []
        for host, info in hosts.items():
            if not info["entry"]:
                problems.append(
                    f"{host}: the grader could not find the code the application server runs "
                    f"({info.get('args') or 'no process'})"
                )
        if problems:
            return failed("; ".join(problems))
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
            return failed("; ".join(problems))
        return passed(
            f"{len(a['files'])} files identical, entry point {a['entry']}: "
            + ", ".join(f"{h} ({i['directory']})" for h, i in hosts.items())
        )
