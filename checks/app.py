"""Application server: runs the application files, reachable only by Nginx, uses the database."""

import ipaddress
import re

from checks.base import Check, failed, passed


def app_pid(lab, host: str) -> str:
    """The pid of the process that answered /api/status on host (through Nginx)."""
    reply = lab.http(f"http://{lab.address(host)}/api/status")
    try:
        return str(reply.json().get("pid", ""))
    except ValueError:
        return ""


def listen_addresses(ss_output: str, pid: str) -> list[str]:
    """Local addresses of the listening sockets that process pid holds (from `ss -lnpH`)."""
    found = []
    for line in ss_output.splitlines():
        if f"pid={pid}," in line:
            found.append(line.split()[3])  # State Recv-Q Send-Q Local Peer Process
    return found


def is_local_only(address: str) -> bool:
    """True for loopback TCP addresses and unix socket paths."""
    if address.startswith("/") or address.startswith("@"):
        return True
    host = address.rsplit(":", 1)[0].strip("[]")
    if host in ("*", "0.0.0.0", "::"):
        return False
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


class AppServer(Check):
    id = "app.server"
    section = "application server"
    title = "An application server runs on each web server, reachable only by Nginx"
    requirement = (
        "1 Application Server: Processes dynamic content, interacts with the "
        "application files, and generates responses."
    )
    points = 5
    hint = (
        "Run the application with a WSGI server (e.g. gunicorn under systemd) bound to "
        "127.0.0.1 (or a unix socket), so that only Nginx on the same host reaches it."
    )
    needs = ("web.reverse-proxy",)

    def observe(self, lab):
        def probe(host):
            pid = app_pid(lab, host)
            sockets = lab.sh(host, "ss -lntpH; ss -lxpH", sudo=True) if pid.isdigit() else ""
            process = lab.sh(host, f"ps -o comm= -p {pid}", check=False).strip() if pid else ""
            return {
                "pid": pid,
                "process": process,
                "listening": listen_addresses(sockets, pid) if pid else [],
            }

        return lab.on_each(lab.web_hosts(), probe)

    def judge(self, hosts):
        problems, seen = [], []
        for host, info in hosts.items():
            if not info["listening"]:
                problems.append(
                    f"{host}: the application process (pid {info['pid'] or '?'}) listens nowhere"
                )
                continue
            public = [a for a in info["listening"] if not is_local_only(a)]
            if public:
                problems.append(
                    f"{host}: {info['process']} listens on {', '.join(public)}, "
                    "reachable from the network, not only by Nginx"
                )
            else:
                seen.append(f"{host}: {info['process']} on {', '.join(info['listening'])}")
        if problems:
            return failed("; ".join(problems))
        return passed("; ".join(seen))


class UsesDatabase(Check):
    id = "app.database"
    section = "application server"
    title = "The application serves data from the database"
    requirement = (
        "Application servers handle dynamic information, make web application "
        "business logic, and interact with application files and databases."
    )
    points = 5
    hint = (
        "Give the application its database settings (WEBSTACK_DB_* in its environment) "
        "and make sure MySQL runs: /api/status must show no database error."
    )
    needs = ("web.reverse-proxy",)

    def observe(self, lab):
        def probe(host):
            status = lab.http(f"http://{lab.address(host)}/api/status")
            book = lab.http(f"http://{lab.address(host)}/api/guestbook")
            return {
                "status": status.status_code,
                "database": _json(status).get("database", {}),
                "guestbook": book.status_code,
                "read_from": _json(book).get("read_from"),
            }

        return lab.on_each(lab.web_hosts(), probe)

    def judge(self, hosts):
        problems = []
        for host, info in hosts.items():
            database = info["database"] if isinstance(info["database"], dict) else {}
            if info["status"] != 200 or "error" in database or "entries" not in database:
                reason = database.get("error") or f"HTTP {info['status']}"
                problems.append(f"{host}: /api/status has no database data ({_short(reason)})")
            elif info["guestbook"] != 200 or info["read_from"] != host:
                problems.append(f"{host}: /api/guestbook answered HTTP {info['guestbook']}")
        if problems:
            return failed("; ".join(problems))
        return passed(
            ", ".join(
                f"{h}: {i['database']['entries']} guestbook entries read from "
                f"its {i['database'].get('role', '?')} database"
                for h, i in hosts.items()
            )
        )


def _json(reply) -> dict:
    try:
        body = reply.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _short(text: str) -> str:
    return re.sub(r"\s+", " ", str(text))[:120]
