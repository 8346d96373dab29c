"""Application server: runs the application files, reachable only by Nginx, uses the database."""

from __future__ import annotations

from checks.base import Check, failed_all, passed
from checks.web import application_problem
from lab.observe import probes


class AppServerHost(probes.Application, probes.Outside):
    """What Nginx forwards to, who holds it, and what reaches it from outside the host."""


AppServerObservation = dict[str, AppServerHost]  # by web server


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
        "127.0.0.1 or a unix socket, so that only Nginx on the same host reaches it: no other "
        "port (a relay such as socat, another Nginx server, a port forward, an SSH tunnel from "
        "another host) may lead to it."
    )
    needs = ("web.reverse-proxy",)
    touches = ()
    per_host = True  # judged host by host
    direct = True  # a web server whose Nginx is stopped: its application server, seen directly

    def directly(self, lab, host):
        return probes.reachable_directly(lab, host)

    def observe(self, lab) -> AppServerObservation:
        def probe(host) -> AppServerHost:
            return {**probes.application(lab, host), **probes.outside(lab, host)}

        return lab.on_each(lab.web_hosts(), probe)

    def judge(self, hosts: AppServerObservation):
        problems, seen = [], []
        for host, app in hosts.items():
            master = app["master"]
            # asked directly (no Nginx to judge it through): what web.reverse-proxy shows
            unproven = "" if app.get("front_door", True) else application_problem(host, app)
            if unproven:
                problems.append(unproven)
            elif master is None:
                problems.append(f"{host}: no process holds {', '.join(app['targets'])}")
            elif app["exposed"]:  # beyond loopback, and a visitor outside the host got it
                problems.append(
                    f"{host}: {master['name']} (pid {master['pid']}) listens on "
                    f"{', '.join(app['sockets'])}: reachable from the network, not only by "
                    f"Nginx: {'; '.join(answered(e, at=True) for e in app['exposed'])}"
                )
            for relay in app["relays"]:
                held = (
                    f" ({', '.join(relay['programs'])})"
                    if relay["programs"]
                    else " (where nothing listens: a port forward)"
                )
                on = f"{relay['host']}'s " if relay.get("host") else ""
                how = (
                    f"Nginx passes requests there to it ({relay['configured']}), and "
                    f"{relay['from']} connected there"
                    if relay.get("configured")
                    else answered(relay)
                )
                problems.append(
                    f"{host}: {on}{relay['socket']}{held} relays the application to the network: "
                    + how
                )
            if master is not None and not app["exposed"] and not app["relays"]:
                how = "" if app.get("front_door", True) else " (asked from the host: no port 80)"
                asked = ", ".join(app.get("asked_from", []))
                unreached = (
                    ""
                    if app["local_only"]
                    else ", where nothing outside the host reaches it"
                    + (f" (asked from {asked})" if asked else "")
                )
                seen.append(
                    f"{host}: {master['name']} on {', '.join(app['sockets'])}{how}{unreached}"
                )
        if problems:
            return failed_all(problems)
        return passed("; ".join(seen) + "; no other port leads to it from outside")


def answered(seen: probes.Relay, at: bool = False) -> str:
    """How a visitor outside the host got the application at seen's socket (named, or
    'there')."""
    where = f"at {seen['socket']}" if at else "there"
    pid = f", pid {seen['pid']}" if seen["pid"] else ""
    return (
        f"GET /api/status {where} from {seen['from']} was answered by the application "
        f"(HTTP {seen['status']}{pid})"
    )


# A failure with hints of its own in docs/exercises/hints.yml (`app.database/CASE`).
ACCOUNTS_NOT_LOADED = "accounts-not-loaded"
FLUSH_HINT = (
    "The refused account is in the database's grant tables, but the running server has not "
    "read them: loading a dump (or writing the mysql.* tables) does not reload the accounts. "
    "Run FLUSH PRIVILEGES on that server, and dump with --flush-privileges next time."
)
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
    touches = ()  # reads the replica back once a paused write lets it run (probes.front_door)
    per_host = True  # each web server's application is written and read through its own Nginx
    direct = True  # ... or, where nothing listens on its web port, directly

    def directly(self, lab, host):
        return probes.reachable_directly(lab, host)

    def observe(self, lab) -> probes.FrontDoor:
        return probes.front_door(lab)

    def judge(self, o: probes.FrontDoor):
        problems, hint, case, notes = [], "", "", []
        stored = {**o["on_replica"], **o["on_primary"]}
        local = {o["primary"]: o["on_primary"], o["replica"]: o["on_replica"]}
        answers = o.get("read_answers", {})
        for host, post in o["posts"].items():
            token, unloaded = post["token"], []
            if post["status"] not in (200, 201):
                reason, unloaded = failure_reason(post.get("error"), post.get("said", ""))
                problems.append(
                    f"{host}: POST /api/guestbook answered HTTP {post['status']}: the application "
                    f"could not store the entry{reason}"
                )
                hint = hint or (WRITE_HINT if post["status"] >= 500 else "")
            elif token not in stored:
                problems.append(
                    f"{host}: the entry it accepted is in neither database "
                    f"({o['primary']}, {o['replica']})"
                )
            elif token not in local.get(host, o["on_primary"]):
                notes.append(f"{host}'s own database has not received its entry yet")
            elif token not in o["reads"].get(host, []):
                answer = answers.get(host, {"status": 200})
                said = answer.get("said", "") if answer["status"] else ""  # else: why none came
                reason, unloaded = failure_reason(answer.get("error"), said)
                if answer["status"] == 200:
                    problems.append(f"{host}: GET /api/guestbook does not show the entry it stored")
                elif answer["status"] is None:
                    failure = answer.get("said") or "GET /api/guestbook got no answer"
                    problems.append(f"{host}: {failure}{reason}")
                else:
                    problems.append(
                        f"{host}: GET /api/guestbook answered HTTP {answer['status']}{reason}"
                    )
            if unloaded:  # the cause is known, whatever else the evidence suggests
                hint, case = FLUSH_HINT, ACCOUNTS_NOT_LOADED
        if problems:
            return failed_all(problems, hint, case)
        tables = ", ".join(sorted(set(stored.values())))
        note = f" ({'; '.join(notes)}: see db.replication)" if notes else ""
        direct = [h for h in o.get("asked_directly", []) if h in o["posts"]]
        how = f" ({', '.join(direct)}: its application itself, with no port 80)" if direct else ""
        return passed(
            f"entries posted through {', '.join(o['posts'])}{how} were stored in {tables} and "
            f"read back through the same server{note}"
        )


def failure_reason(error: probes.AppError | None, said: str) -> tuple[str, list[str]]:
    """Why the application failed, in its own words (its journal's error line, else what its
    answer said), and the refused accounts its database has in its tables but not loaded."""
    error = error or {}
    unloaded = list(error.get("unloaded", []))
    if error.get("line"):
        reason = f"; {error['unit']} logged: {error['line']}"
    elif said:
        reason = f"; its answer said: {said}"
    elif error.get("unit"):
        reason = f"; {error['unit']} logged no error in the last minute"
    else:
        reason = ""
    if unloaded:
        reason += (
            f"; {', '.join(unloaded)} is in {error['database']}'s grant tables but its server "
            "has not loaded it (written there without FLUSH PRIVILEGES)"
        )
    return reason, unloaded
