"""Application server: runs the application files, reachable only by Nginx, uses the database."""

from __future__ import annotations

from checks import probes
from checks.base import Check, failed, passed


class AppServer(Check):
    id = "app.server"
    design = "app-server"
    section = "application server"
    title = "An application server runs on each web server, reachable only by Nginx"
    requirement = (
        "1 Application Server: Processes dynamic content, interacts with the "
        "application files, and generates responses."
    )
    points = 5
    hint = (
        "Run the application with a WSGI server (e.g. gunicorn under systemd) bound to "
        "127.0.0.1 or a unix socket, so that only Nginx on the same host reaches it."
    )
    needs = ("web.reverse-proxy",)

    def observe(self, lab):
        return lab.on_each(lab.web_hosts(), lambda host: probes.application(lab, host))

    def judge(self, hosts):
        problems, seen = [], []
        for host, app in hosts.items():
            master = app["master"]
            if master is None:
                problems.append(f"{host}: no process holds {', '.join(app['targets'])}")
            elif not app["local_only"]:
                problems.append(
                    f"{host}: {master['name']} (pid {master['pid']}) listens on "
                    f"{', '.join(app['sockets'])}: reachable from the network, not only by Nginx"
                )
            else:
                seen.append(f"{host}: {master['name']} on {', '.join(app['sockets'])}")
        if problems:
            return failed("; ".join(problems))
        return passed("; ".join(seen))


WRITE_HINT = (
    "Writes must reach the primary from every web server: give the write account a host part "
    "that matches how each application connects (web-01's own application uses TCP too, not "
    "only 'user'@'localhost'), and the privileges it needs on the application's table."
)


class UsesDatabase(Check):
    id = "app.database"
    design = "app-data"
    section = "application server"
    title = "The application stores and serves data through the database"
    requirement = (
        "Application servers handle dynamic information, make web application "
        "business logic, and interact with application files and databases."
    )
    points = 5
    hint = (
        "The application needs its database settings and accounts: POST /api/guestbook must "
        "store an entry, and GET /api/guestbook must show it (docs/app-contract.md)."
    )
    needs = ("web.reverse-proxy",)

    def observe(self, lab):
        return probes.front_door(lab)

    def judge(self, o):
        problems, hint, notes = [], "", []
        stored = {**o["on_replica"], **o["on_primary"]}
        local = {o["primary"]: o["on_primary"], o["replica"]: o["on_replica"]}
        for host, post in o["posts"].items():
            token = post["token"]
            if post["status"] not in (200, 201):
                problems.append(
                    f"{host}: POST /api/guestbook answered HTTP {post['status']}: "
                    "the application could not store the entry"
                )
                hint = WRITE_HINT if post["status"] >= 500 else ""
            elif token not in stored:
                problems.append(
                    f"{host}: the entry it accepted is in neither database "
                    f"({o['primary']}, {o['replica']})"
                )
            elif token not in local.get(host, o["on_primary"]):
                notes.append(f"{host}'s own database has not received its entry yet")
            elif token not in o["reads"].get(host, []):
                problems.append(f"{host}: GET /api/guestbook does not show the entry it stored")
        if problems:
            return failed("; ".join(problems), hint)
        tables = ", ".join(sorted(set(stored.values())))
        note = f" ({'; '.join(notes)}: see db.replication)" if notes else ""
        return passed(
            f"entries posted through {', '.join(o['posts'])} were stored in {tables} and read "
            f"back through the same server{note}"
        )
