"""Application files: both web servers run the lab's code base, the same version."""

import hashlib
import shlex

from checks.app import app_pid
from checks.base import Check, failed, passed
from provision.app import application_files


def expected_checksums() -> dict[str, str]:
    return {path: hashlib.sha256(data).hexdigest() for path, data in application_files().items()}


class CodeBase(Check):
    id = "files.code-base"
    section = "application files"
    title = "Both web servers run the application files of the code base"
    requirement = (
        "1 Application Files (Your Code Base): Contains the code, logic, templates, "
        "and resources necessary for the web application."
    )
    points = 5
    hint = (
        "Deploy the files of provision/app unchanged to both web servers (the application "
        "server's working directory), then restart the application server."
    )
    needs = ("app.server",)

    def observe(self, lab):
        paths = sorted(expected_checksums())

        def probe(host):
            pid = app_pid(lab, host)
            cwd = lab.sh(host, f"readlink /proc/{pid}/cwd", sudo=True).strip() if pid else ""
            files = " ".join(shlex.quote(p) for p in paths)
            out = (
                lab.sh(
                    host, f"cd {shlex.quote(cwd)} && sha256sum {files} 2>/dev/null; true", sudo=True
                )
                if cwd
                else ""
            )
            found = {}
            for line in out.splitlines():
                digest, _, path = line.partition("  ")
                found[path.strip()] = digest
            return {"directory": cwd, "files": found}

        return {"expected": expected_checksums(), "hosts": lab.on_each(lab.web_hosts(), probe)}

    def judge(self, observation):
        expected, problems = observation["expected"], []
        for host, info in observation["hosts"].items():
            missing = [p for p in expected if p not in info["files"]]
            changed = [
                p for p in expected if p in info["files"] and info["files"][p] != expected[p]
            ]
            if not info["directory"]:
                problems.append(f"{host}: no application process found")
            elif missing or changed:
                details = [f"missing {', '.join(missing)}"] if missing else []
                details += [f"different {', '.join(changed)}"] if changed else []
                problems.append(f"{host} ({info['directory']}): {'; '.join(details)}")
        if problems:
            return failed("; ".join(problems))
        hosts = observation["hosts"]
        return passed(
            f"{len(expected)} files identical to the code base on "
            + ", ".join(f"{h} ({i['directory']})" for h, i in hosts.items())
        )
