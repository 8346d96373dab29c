"""Load balancer (HAProxy): round robin, active-active, health checks."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import NotRequired, TypedDict, TypeVar

from checks.base import Check, CheckError, NotObservable, failed, failed_all, passed
from checks.web import service_error
from lab.core import wait
from lab.core.wait import Deadline
from lab.facts import haproxy, proc
from lab.observe import probes
from lab.observe.live import leaves
from lab.remote.quoting import quote

ROUND_ROBIN_REQUESTS = 8
BURST = 8
ATTEMPTS = 3  # runs of requests, when HAProxy says something moved its turns meanwhile
LEAVE_WINDOW = 20.0  # seconds a failing server may take to leave the rotation (defaults: ~7 s)

T = TypeVar("T")


class LbAnswer(TypedDict):
    """An answer through the load balancer (through_lb())."""

    status: int
    served_by: str | None  # its first X-Served-By value (None: none)


class LbObservation(probes.Balancer):
    listeners: list[str]  # the programs holding port 80 on the balancer
    status: NotRequired[int]  # what a request through it answered (none: no answer)
    error: NotRequired[str]  # why no answer came
    journal: NotRequired[str]  # ... and why HAProxy's last start failed ('' no such line)
    installed: NotRequired[bool]  # ... and whether the haproxy package is installed


class ServerState(TypedDict):
    """A web server's state in HAProxy's runtime view (`show stat`)."""

    status: str
    check_status: str


class ThroughBalancer(TypedDict):
    """Requests sent through the balancer: who HAProxy says took them, and the web servers'
    names; with web servers out of the rotation (a prerequisite failed there), how they left
    and which backends took the requests."""

    sent: dict[str, int] | None  # requests HAProxy sent each web server (None: no stats socket)
    hostnames: dict[str, str]  # web server → its own hostname
    domain: str
    down: NotRequired[dict[str, ServerState]]  # the web servers out of the rotation
    routed: NotRequired[dict[str, int]]  # backend → the requests it took (by its counters)
    moved: NotRequired[list[str]]  # what moved HAProxy's turns meanwhile (steadily())


class RotationView(TypedDict):
    """The part of the balancer's view round robin is judged on."""

    servers: list[probes.BalancerServer]
    web: dict[str, str]  # web server → address (every one, with some out of the rotation)
    algorithms: dict[str, str]
    rules: NotRequired[dict[str, probes.ProxyRules]]
    config_warnings: list[str]


class RoundRobinObservation(ThroughBalancer):
    balancer: RotationView
    answers: list[LbAnswer]
    received: dict[str, int | None]  # requests each web server's Nginx logged (None: cannot tell)


class ActiveView(TypedDict):
    """The part of the balancer's view active-active is judged on."""

    servers: list[probes.BalancerServer]
    web: dict[str, str]  # web server → address (every one, with some out of the rotation)
    stat: dict[str, probes.StatRow] | None


class ActiveActiveObservation(ThroughBalancer):
    balancer: ActiveView
    burst: list[str | None]  # the X-Served-By of each simultaneous answer


class Failover(TypedDict):
    """How long a web server cut off from the balancer took to leave the rotation and to come
    back (failover())."""

    host: str
    lb: str
    left_after: float | None  # seconds (None: it never left)
    back_after: float | None  # seconds (None: it never came back)


class HealthObservation(TypedDict):
    web: list[str]
    configured: dict[str, probes.BalancerServer]  # the balancer's server at each web server
    rules: NotRequired[dict[str, probes.ProxyRules]]  # each backend's check rules
    socket: bool  # HAProxy has a stats socket
    config_warnings: list[str]
    stat: dict[str, ServerState] | None  # HAProxy's runtime view (None: no stats socket)
    behaviour: NotRequired[Failover]  # without a stats socket, when the configuration checks


def through_lb(lab, path: str = "/", timeout: float = 5) -> LbAnswer:
    reply = lab.http(f"http://{lab.address('lb')}{path}", timeout=timeout)
    values = probes.served_by(reply)
    return {"status": reply.status_code, "served_by": values[0] if values else None}


def lasting(lab, lb: str, seconds: float = 1.0) -> bool:
    """Whether an HAProxy process on lb lives through `seconds`: one that fails to start is
    started again by systemd (Restart=always) a few times, each try gone at once."""
    before = set(haproxy.process_ids(lab.sh(lb, haproxy.PROCESSES, check=False)))
    time.sleep(seconds)
    return bool(before & set(haproxy.process_ids(lab.sh(lb, haproxy.PROCESSES, check=False))))


def named(values: list, o: dict) -> list:
    """Each X-Served-By value as the web server it names (its name in the topology), or as it
    was when it names none (short names, FQDNs and hostnames alike)."""
    web, hostnames, domain = o["balancer"]["web"], o.get("hostnames", {}), o.get("domain", "")
    return [probes.served_by_host(v, hostnames, web, domain) or v for v in values]


def balancer_problem(o: dict) -> str:
    """Whether HAProxy's servers are the web servers (by address), or what they are instead."""
    found = probes.web_servers_in_balancer(o)
    missing = [h for h in o["web"] if h not in found]
    if not missing:
        return ""
    others = ", ".join(f"{s['name']} {s['host']}:{s['port']}" for s in o["servers"]) or "none"
    wanted = ", ".join(f"{h} ({o['web'][h]})" for h in missing)
    return f"HAProxy's servers ({others}) do not include {wanted}"


class HaproxyAnswers(Check):
    id = "lb.haproxy"
    design = "load-balancer"
    section = "load balancer"
    title = "HAProxy on the load balancer takes the incoming requests"
    requirement = (
        "1 load-balancer (HAproxy): for distributing incoming requests or network "
        "traffic among multiple servers."
    )
    points = 5
    touches = ("balancer",)  # sends requests through the balancer
    hint = "Install HAProxy on the load balancer with a frontend on port 80 and start it."

    def observe(self, lab) -> LbObservation:
        lb = lab.name("lb")
        balancer, listeners = lab.together(
            lambda: probes.balancer(lab), lambda: probes.programs_on_port(lab, lb, 80)
        )
        o = {**balancer, "listeners": listeners}
        try:
            o["status"] = through_lb(lab)["status"]
            if o["status"] >= 500:  # servers (re)started a moment ago: let health checks see them
                wait_until_servers_up(lab, o)
                o["status"] = through_lb(lab)["status"]
        except CheckError as exc:
            o["error"] = str(exc)
            o["running"] = o["running"] and lasting(lab, o["host"])
            o["journal"] = service_error(lab, o["host"], "haproxy")
            installed = lab.sh(o["host"], haproxy.INSTALLED, check=False)
            o["installed"] = haproxy.parse_installed(installed)
        return o

    def judge(self, o: LbObservation):
        lb = o["host"]
        others = [n for n in o["listeners"] if n != "haproxy"]
        if "error" in o and not o.get("installed", True) and not o["running"]:
            return failed(
                f"{lb}: HAProxy is not installed (no haproxy package; {o['error']})",
                "Install HAProxy on the load balancer (`sudo apt-get install haproxy`), with a "
                "frontend on port 80, and start it.",
            )
        if "error" in o and others and "haproxy" not in o["listeners"]:
            return failed(
                f"{lb}: port 80 belongs to {', '.join(others)}, not HAProxy ({o['error']})"
            )
        if "error" in o and not o["running"]:
            if o.get("journal"):
                return failed(f"{lb}: HAProxy is not running; its journal says why: {o['journal']}")
            why = f"haproxy -c: {o['config_error']}; " if o["config_error"] else ""
            return failed(f"{lb}: HAProxy is not running ({why}{o['error']})")
        if "error" in o:
            why = o.get("journal") or o["config_error"] or ""
            return failed(f"{lb}: {o['error']}" + (f" ({why})" if why else ""))
        if "haproxy" not in o["listeners"]:
            return failed(f"{lb}: port 80 belongs to {', '.join(o['listeners']) or 'nobody'}")
        stale = proc.older_than_file("HAProxy", o.get("loaded"), o.get("mtimes") or {})
        if not o["config_ok"]:
            return failed(
                f"{lb}: haproxy -c fails on {', '.join(o['files'])} "
                f"({o['config_error'] or 'no detail'}): what runs is an older configuration, "
                "lost at the next restart" + (f"; {stale}" if stale else "") + config_warnings(o),
                "Fix what `sudo haproxy -c -f /etc/haproxy/haproxy.cfg` reports, then reload.",
            )
        if o["status"] >= 500:
            return failed(
                f"{lb}: HAProxy answers HTTP {o['status']}: no server could answer"
                + (f"; {stale}" if stale else "")
                + config_warnings(o)
            )
        if stale:  # the rules the grader reads in the file may not be those that run
            return failed(
                f"{lb}: {stale}; what the grader reads in the file may not be what runs"
                + config_warnings(o),
                "Reload HAProxy after each change of its configuration: "
                "`sudo systemctl reload haproxy`.",
            )
        return passed(
            f"{lb}: haproxy on port 80 (HTTP {o['status']}), haproxy -c ok" + config_warnings(o)
        )


def config_warnings(o: dict, shown: int = 2) -> str:
    """What `haproxy -c` warned about, in its words (a setting it ignores is one to look at)."""
    said = o.get("config_warnings") or []
    if not said:
        return ""
    more = f" (and {len(said) - shown} more)" if len(said) > shown else ""
    return f"; haproxy -c warns: {'; '.join(said[:shown])}{more}"


class RoundRobin(Check):
    id = "lb.round-robin"
    design = "round-robin"
    section = "load balancer"
    title = "Requests are distributed round robin over both web servers"
    requirement = (
        "HAProxy is configured with the Round Robin distribution algorithm. This "
        "algorithm cycles through the list of servers, directing each new request "
        "to the next server in the list."
    )
    points = 10
    hint = "Use `balance roundrobin` in the backend, with both web servers (by address) in it."
    needs = ("lb.haproxy", "web.served-by")
    exclusive = "balancer"  # other requests through the balancer would interleave
    through_web = True  # a web server that failed web.served-by: judged from HAProxy's view

    def observe(self, lab) -> RoundRobinObservation:
        o = probes.balancer(lab)
        wait_until_servers_up(lab, o)
        web = lab.web_hosts()
        down = out_of_rotation(lab, o)

        def send():
            marks = lab.on_each(web, lambda h: probes.log_marks(lab, h))
            taken = backend_sessions(lab, o, down)
            answers = [through_lb(lab) for _ in range(ROUND_ROBIN_REQUESTS)]
            routed = grown(taken, backend_sessions(lab, o, down))
            return answers, routed, probes.logged_by_each(lab, web, marks, len(answers))

        (answers, routed, received), turns = steadily(lab, o, send, ROUND_ROBIN_REQUESTS)
        return {
            "balancer": {k: o[k] for k in ("servers", "web", "algorithms", "config_warnings")}
            | {"rules": o.get("rules") or {}}
            | ({"web": everyone(lab)} if down else {}),
            "answers": answers,
            "received": received,
            **turns,
            "hostnames": probes.web_hostnames(lab),
            "domain": lab.topology.domain,
            **({"down": down, "routed": routed} if down else {}),
        }

    def judge(self, o: RoundRobinObservation):
        problem = balancer_problem(o["balancer"]) or routed_problem(o)
        if problem:
            return failed(problem)
        problem = other_turns(o["balancer"])
        if problem:
            return failed(problem + config_warnings(o["balancer"]))
        answers = o["answers"]
        order = named([a["served_by"] for a in answers], o)
        if any(a["status"] != 200 for a in answers):
            codes = sorted({a["status"] for a in answers})
            return failed(f"requests through the load balancer got HTTP {codes}")
        problem = misrouted(order, o["received"], o["sent"], alone=True)
        if problem:
            return failed(problem)
        up = [h for h in o["balancer"]["web"] if h not in o.get("down", {})]
        if set(order) != set(up):
            return failed(
                f"only {', '.join(sorted(map(str, set(order))))} answered {len(order)} requests"
                + meanwhile(o)
            )
        repeats = [i for i in range(1, len(order)) if order[i] == order[i - 1]]
        if repeats and len(up) > 1:
            return failed(
                f"not round robin: {' '.join(map(str, order))}"
                + meanwhile(o)
                + config_warnings(o["balancer"])
            )
        proofs = []
        if all(seen is not None for seen in o["received"].values()):
            proofs.append("the web servers' own Nginx logs agree")
        if o["sent"]:
            proofs.append("HAProxy's session counters agree")
        agree = f", {' and '.join(proofs)}" if proofs else ""
        if o.get("down"):
            return passed(
                f"{down_evidence(o)}; {len(order)} requests all went to "
                f"{' and '.join(up)}, the server{'s' if len(up) > 1 else ''} UP"
                f"{agree}{unconfirmed(o['received'])}"
            )
        return passed(
            f"{len(order)} requests alternated: {' '.join(order[:6])} ...{agree}"
            + unconfirmed(o["received"])
        )


def everyone(lab) -> dict[str, str]:
    """Every web server of the lab, by address (also those a run leaves out: checks.runner)."""
    return {h.name: h.address for h in lab.topology.with_role("web")}


def out_of_rotation(lab, o: probes.Balancer) -> dict[str, ServerState]:
    """HAProxy's runtime view ({status, check_status}) of the web servers this run leaves out
    (a prerequisite failed there: checks.runner); {} when it leaves none out. Not observable
    unless HAProxy's health checks took each of them out of the rotation."""
    out = [h for h in everyone(lab) if h not in lab.web_hosts()]
    if not out:
        return {}
    if not o["stat"]:
        raise NotObservable(
            f"{', '.join(out)} cannot answer, and HAProxy has no stats socket to say whether "
            "its health checks took it out of the rotation"
        )
    rows = probes.server_rows(lab, o["host"], o["sockets"][0], everyone(lab)) or {}
    down = {h: {k: rows[h].get(k, "") for k in ("status", "check_status")} for h in rows}
    reason = kept_in_rotation({h: down.get(h) for h in out})
    if reason:
        raise NotObservable(reason)
    return {h: down[h] for h in out if h in down}


def kept_in_rotation(rows: dict[str, ServerState | None]) -> str:
    """Why requests through HAProxy cannot show the turns of these web servers, which cannot
    answer ('' when HAProxy's health checks took each out: DOWN after a completed check; one
    HAProxy does not list at all is judged as the balancer's configuration)."""
    for host, row in rows.items():
        if row is None:
            continue
        checked = row["check_status"] and not row["check_status"].startswith("INI")
        if not (row["status"].startswith("DOWN") and checked):
            check = row["check_status"] or "not health-checked"
            return (
                f"{host} cannot answer, yet HAProxy keeps it in the rotation ({row['status']}, "
                f"{check}): which server takes each turn cannot be seen"
            )
    return ""


def backend_sessions(lab, o: probes.Balancer, down: dict) -> dict[str, int]:
    """With web servers out of the rotation, the sessions each of HAProxy's backends has
    taken (to tell which backends requests went to, in HAProxy's words); else {}."""
    return probes.backend_sessions(lab, o["host"], o["sockets"][0]) if down else {}


def grown(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """The counters that grew between two readings, by how much."""
    return {k: after[k] - before[k] for k in after if k in before and after[k] > before[k]}


def routed_problem(o: RoundRobinObservation | ActiveActiveObservation) -> str:
    """With web servers out of the rotation: a backend that took the requests without every
    web server as an active server in it (an ACL singling visitors out), or that does not
    balance round robin (balance source for visitors); '' when none."""
    if not o.get("down"):
        return ""
    web = o["balancer"]["web"]
    for backend, algorithm in taking_backends(o).items():
        servers = [s for s in o["balancer"]["servers"] if s["backend"] == backend]
        found = probes.web_servers_in_balancer({"web": web, "servers": servers})
        backups = sorted(h for h, s in found.items() if s["backup"])
        active = sorted(h for h in found if h not in backups)
        if backups:
            return (
                f"{', '.join(backups)} stand(s) by as backup in HAProxy's backend {backend}, "
                "which took the requests (active-passive)"
            )
        if active != sorted(web):
            return (
                f"the requests went to HAProxy's backend {backend}, whose active servers are "
                f"{', '.join(active) or 'none of the web servers'}, not {' and '.join(web)}"
            )
        if algorithm not in haproxy.ROUND_ROBIN:
            return (
                f"the requests went to HAProxy's backend {backend}, which balances with "
                f"`balance {algorithm or '?'}`"
            )
    return ""


def taking_backends(o: RoundRobinObservation | ActiveActiveObservation) -> dict[str, str]:
    """The backends that took the requests (by HAProxy's counters; else those of the web
    servers), each with its balance algorithm as HAProxy runs it."""
    servers = o["balancer"]["servers"]
    names = o.get("routed") or {
        s["backend"] for s in probes.web_servers_in_balancer(o["balancer"]).values()
    }
    running = o["balancer"].get("algorithms") or {}
    return {
        b: running.get(b) or next((s["balance"] for s in servers if s["backend"] == b), "")
        for b in sorted(names)
    }


def down_evidence(o: RoundRobinObservation | ActiveActiveObservation) -> str:
    """HAProxy's own view of a rotation with web servers its health checks took out."""
    web, down = list(o["balancer"]["web"]), o["down"]
    out = ", ".join(
        f"{h} is {row['status']} by HAProxy's health checks ({row['check_status']})"
        for h, row in down.items()
    )
    backends = "; ".join(f"backend {b} balances {a}" for b, a in taking_backends(o).items())
    return (
        f"{out}, so it takes no turn (what keeps it from answering is graded by the web "
        f"server's checks); HAProxy's own view: {backends} over {' and '.join(web)}, all active"
    )


def unconfirmed(received: dict) -> str:
    """A note naming the web servers whose Nginx logs the site's requests to no file the grader
    can read at once (access_log off, syslog, buffered): their logs confirmed nothing."""
    silent = sorted(h for h, seen in received.items() if seen is None)
    if not silent:
        return ""
    return f" (not confirmed by {' or '.join(silent)}'s Nginx: it logs these requests to no file)"


class Turns(TypedDict):
    """HAProxy's counters around requests sent through it (steadily())."""

    sent: dict[str, int] | None  # the sessions it sent each web server (None: no stats socket)
    moved: NotRequired[list[str]]  # what moved its turns meanwhile, in words (haproxy.moves())


def steadily(lab, o: probes.Balancer, send: Callable[[], T], requests: int) -> tuple[T, Turns]:
    """send()'s result (it sends `requests` requests through the balancer) and HAProxy's
    counters around it. When they say something moved the turns meanwhile (a health check that
    timed out on a loaded machine, a redispatched connection, other visitors), send() is tried
    again, ATTEMPTS times at most: such a run shows no algorithm's turns."""
    addresses = lab.web_addresses()
    for _ in range(ATTEMPTS):
        before = stat_rows(lab, o)
        result = send()
        after = stat_rows(lab, o)
        if before is None or after is None:
            return result, {"sent": None}
        was, now = haproxy.sessions_at(before, addresses), haproxy.sessions_at(after, addresses)
        turns: Turns = {"sent": {h: now[h] - was[h] for h in now}}
        moved = haproxy.moves(before, after, addresses, requests)
        if not moved:
            return result, turns
        if any(
            r.get("status", "").startswith("DOWN")
            for r in haproxy.servers_at(after, addresses).values()
        ):
            wait_until_servers_up(lab, o)  # one taken out meanwhile: give it time to come back
    return result, turns | {"moved": moved}


def stat_rows(lab, o: probes.Balancer) -> list[dict[str, str]] | None:
    """HAProxy's `show stat` rows, when it has a stats socket that answers."""
    return probes.stat_rows(lab, o["host"], o["sockets"][0]) if o["stat"] else None


def meanwhile(o: dict) -> str:
    """What moved HAProxy's turns while the requests were sent, as a note ('' nothing did)."""
    return f" (meanwhile HAProxy {', '.join(o['moved'])})" if o.get("moved") else ""


def misrouted(claims: list, received: dict, sent: dict | None, alone: bool = False) -> str:
    """Positive evidence that X-Served-By lied about who answered, in words, or ''.

    claims: the X-Served-By of each answer; received: how many of these requests each web
    server's Nginx logged (None: it cannot tell); sent: how many HAProxy sent each (None: not
    known). alone: nothing else sent such requests meanwhile, so the logs hold only these.
    """
    known = {h: n for h, n in received.items() if n is not None}
    for host, count in known.items():
        claimed = claims.count(host)
        if count < claimed == 1:
            return f"the answer carried X-Served-By {host}, but {host}'s Nginx did not log it"
        if count < claimed:
            return (
                f"{claimed} answers carried X-Served-By {host}, but {host}'s Nginx logged "
                f"{count} such requests"
            )
    if alone and sum(known.values()) <= len(claims):
        for host, count in known.items():
            claimed = claims.count(host)
            if count > claimed:
                return (
                    f"{host}'s Nginx logged {count} of the {len(claims)} requests, yet "
                    f"{claimed} answers carried X-Served-By {host}"
                )
    for host, count in (sent or {}).items():
        claimed = claims.count(host)
        if count < claimed:
            return (
                f"HAProxy sent {host} {count} of the requests, yet {claimed} answers carried "
                f"X-Served-By {host}"
            )
    return ""


def wait_until_servers_up(lab, o: probes.Balancer, seconds: float = 4.0) -> None:
    """Give HAProxy a moment to see freshly (re)started servers UP before counting requests."""
    if not o["stat"]:
        return

    def all_up():
        rows = probes.server_rows(lab, o["host"], o["sockets"][0]) or {}
        return len(rows) == len(o["web"]) and all(haproxy.server_up(r) for r in rows.values())

    wait.until(all_up, seconds, 0.2)


class ActiveActive(Check):
    id = "lb.active-active"
    design = "active-active"
    section = "load balancer"
    title = "Both servers are active at the same time (active-active)"
    requirement = (
        "HAProxy is configured for an Active-Active setup. Both servers actively "
        "handle incoming requests simultaneously."
    )
    points = 5
    hint = "List both web servers as normal (not `backup`) servers of the backend."
    needs = ("lb.haproxy", "web.served-by")
    touches = ("balancer",)  # sends requests through the balancer
    through_web = True  # a web server that failed web.served-by: judged from HAProxy's view

    def observe(self, lab) -> ActiveActiveObservation:
        o = probes.balancer(lab)
        down = out_of_rotation(lab, o)

        def send():
            taken = backend_sessions(lab, o, down)
            with ThreadPoolExecutor(max_workers=BURST) as pool:
                burst = list(pool.map(lambda _: through_lb(lab)["served_by"], range(BURST)))
            return burst, grown(taken, backend_sessions(lab, o, down))

        (burst, routed), turns = steadily(lab, o, send, BURST)
        return {
            "balancer": {k: o[k] for k in ("servers", "web", "stat")}
            | ({"web": everyone(lab)} if down else {}),
            "burst": burst,
            **turns,
            "hostnames": probes.web_hostnames(lab),
            "domain": lab.topology.domain,
            **({"down": down, "routed": routed} if down else {}),
        }

    def judge(self, o: ActiveActiveObservation):
        problem = balancer_problem(o["balancer"])
        if problem:
            return failed(problem)
        web, burst = list(o["balancer"]["web"]), named(o["burst"], o)
        used = probes.web_servers_in_balancer(o["balancer"])
        stat = o["balancer"]["stat"] or {}
        backups = [h for h, s in used.items() if s["backup"] or stat.get(h, {}).get("bck") == "1"]
        if backups:
            return failed(f"{', '.join(backups)} stand(s) by as backup (active-passive)")
        problem = routed_problem(o) or misrouted(burst, {}, o.get("sent"))
        if problem:
            return failed(problem)
        answered = {b for b in burst if b}
        up = [h for h in web if h not in o.get("down", {})]
        if answered != set(up):
            return failed(
                f"{len(burst)} simultaneous requests were all served by "
                f"{', '.join(sorted(answered)) or 'nobody'}" + meanwhile(o)
            )
        counts = ", ".join(f"{h} {burst.count(h)}" for h in up)
        if o.get("down"):
            return passed(
                f"{down_evidence(o)}; {len(burst)} simultaneous requests went to "
                f"the server{'s' if len(up) > 1 else ''} UP: {counts}"
            )
        return passed(f"{len(burst)} simultaneous requests shared: {counts}")


class HealthChecks(Check):
    id = "lb.health-checks"
    design = "health-checks"
    section = "load balancer"
    title = "HAProxy health-checks both servers: a failing one leaves the rotation"
    requirement = (
        "HAProxy ... improves resource utilization, enhances availability: a server "
        "that fails leaves the rotation."
    )
    points = 5
    hint = (
        "Add `check` to each server line (e.g. with `option httpchk GET /` and "
        "`default-server inter 1s fall 2 rise 2` for a quick reaction)."
    )
    needs = ("lb.haproxy",)
    exclusive = True  # the behavioural test takes one server out of the rotation
    touches = ()  # ... but HAProxy's view, when it has one, is disturbed by no other check

    def exclusive_on(self, lab) -> bool | str:
        """With a stats socket, HAProxy is only asked: it runs beside the others."""
        return False if probes.balancer(lab)["stat"] else self.exclusive

    def observe(self, lab) -> HealthObservation:
        o = probes.balancer(lab)
        used = probes.web_servers_in_balancer(o)
        base = {
            "web": list(o["web"]),
            "configured": used,
            "rules": o.get("rules") or {},
            "socket": bool(o["stat"]),
            "config_warnings": o["config_warnings"],
        }
        if o["stat"]:
            wait_until_servers_up(lab, o)
            rows = probes.server_rows(lab, o["host"], o["sockets"][0]) or {}
            keys = ("status", "check_status")
            return {**base, "stat": {h: {k: r.get(k, "") for k in keys} for h, r in rows.items()}}
        unchecked = len(used) < len(o["web"]) or not all(s["check"] for s in used.values())
        if unchecked or too_slow({**base, "stat": None}) or checked_elsewhere(used, base["rules"]):
            return {**base, "stat": None}
        return {**base, "stat": None, "behaviour": failover(lab, lab.web_hosts()[-1])}

    def judge(self, o: HealthObservation):
        verdict = self._judge(o)
        if verdict.passed:
            return verdict
        return failed(verdict.evidence + config_warnings(o), verdict.hint, verdict.case)

    def _judge(self, o):
        elsewhere = checked_elsewhere(o["configured"], o.get("rules") or {})
        if elsewhere:
            return failed(
                "; ".join(elsewhere),
                "Let HAProxy check each web server itself: drop `addr`, `port` and `track` from "
                "its server line (or aim them at that server and its web port).",
            )
        if o["stat"] is not None:
            return _judge_stat(o)
        configured = o["configured"]
        slow = too_slow(o)
        if slow:
            return failed("; ".join(slow))
        absent = [h for h in o["web"] if h not in configured]
        if absent:
            return failed(f"HAProxy has no server at the address of {', '.join(absent)}")
        unchecked = [h for h in o["web"] if not configured[h]["check"]]
        if unchecked:
            return failed(
                f"{', '.join(unchecked)}: no `check` on the server line in haproxy.cfg (and no "
                "stats socket to ask HAProxy): a failing server would stay in the rotation"
            )
        b = o["behaviour"]
        if b["left_after"] is None:
            return failed(
                f"{b['host']} could not answer {b['lb']} for {LEAVE_WINDOW:.0f} s, yet HAProxy "
                "kept it in the rotation: its health checks do not run (or run too rarely)"
            )
        if b["back_after"] is None:
            return failed(
                f"{b['host']} left the rotation after {b['left_after']:.1f} s but did not come "
                f"back within {LEAVE_WINDOW:.0f} s after it recovered"
            )
        return passed(
            f"no stats socket, so tried: {b['host']} made unable to answer {b['lb']} left the "
            f"rotation after {b['left_after']:.1f} s and was back {b['back_after']:.1f} s after "
            "it recovered"
        )


def checked_elsewhere(
    configured: dict[str, probes.BalancerServer], rules: dict[str, probes.ProxyRules]
) -> list[str]:
    """Web servers whose health HAProxy takes from somewhere else than the server itself: a
    `check addr`/`port` aimed at another address or port, `tcp-check connect`/`http-check
    connect` rules none of which reach the server's own port, `track` of another server, or a
    proxy its checks go through (`check-via-socks4`)."""
    found = []
    for host, server in configured.items():
        own = f"{server['host']}:{server['port']}"
        addr, port = server.get("check_addr") or "", server.get("check_port") or 0
        aimed = f"{addr or server['host']}:{port or server['port']}"
        connects = (rules.get(server["backend"]) or {}).get("connects") or []
        if server["check"] and connects and not any(reaches(server, c) for c in connects):
            where = ", ".join(
                f"{a or addr or server['host']}:{p or port or server['port']}" for a, p in connects
            )
            found.append(
                f"{host}: its health checks connect to {where} (`tcp-check`/`http-check "
                f"connect`), not to the server itself ({own}), so it stays in the rotation "
                f"whatever {host} does"
            )
        elif server.get("tracked"):
            found.append(
                f"{host}: its health is copied from {server['tracked']} (`track`), so it stays "
                f"in the rotation whatever {host} does"
            )
        elif server["check"] and server.get("check_via"):
            found.append(
                f"{host}: its health checks go through {server['check_via']} "
                f"(`check-via-socks4`), not straight to the server itself ({own}): whatever "
                f"answers them there keeps {host} in the rotation"
            )
        elif server["check"] and (
            (addr and not set(server.get("check_addresses") or [addr]) & set(server["addresses"]))
            or (port and port != server["port"])
        ):
            found.append(
                f"{host}: its health checks go to {aimed}, not to the server itself ({own}), "
                f"so it stays in the rotation whatever {host} does"
            )
    return found


def reaches(server: probes.BalancerServer, connect: tuple[str, int]) -> bool:
    """Whether a check rule's connection (addr, port; ''/0: the server's) reaches the server's
    own address and port."""
    addr, port = connect
    port = port or server.get("check_port") or server["port"]
    addr = addr or server.get("check_addr") or ""
    return port == server["port"] and (not addr or addr in (server["host"], *server["addresses"]))


def other_turns(balancer: RotationView) -> str:
    """Why visitors' requests may take other turns than round robin: a backend that frontends
    route requests to, with web servers at their web port, that balances otherwise or picks
    the server itself (`use-server`); '' when none."""
    used = probes.web_servers_in_balancer(balancer)
    web_ports = {(balancer["web"][h], s["port"]) for h, s in used.items()}
    rules = balancer.get("rules") or {}
    running = balancer.get("algorithms") or {}
    serving = {
        s["backend"]: running.get(s["backend"]) or s["balance"]
        for s in balancer["servers"]
        if not s["backup"]
        and any((a, s["port"]) in web_ports for a in s["addresses"])
        and (rules.get(s["backend"]) or {}).get("routed", True)
    }
    for backend, algorithm in serving.items():
        if algorithm not in haproxy.ROUND_ROBIN:
            more = f"HAProxy's backend {backend}" if len(serving) > 1 else "the backend"
            return f"{more} balances with `balance {algorithm or '?'}`"
    for backend in serving:
        chooses = (rules.get(backend) or {}).get("chooses") or []
        if chooses:
            return (
                f"HAProxy's backend {backend} picks the server itself for some requests "
                f"(`{chooses[0]}`): they take no round-robin turn"
            )
    return ""


def too_slow(o: HealthObservation) -> list[str]:
    """Servers whose health checks would take longer than the window to take them out."""
    slow = []
    for host, server in o["configured"].items():
        fall = ((o["stat"] or {}).get(host) or {}).get("check_fall") or server.get("fall")
        estimate = haproxy.detection_seconds(server.get("inter"), fall)
        if estimate > LEAVE_WINDOW:
            slow.append(
                f"{host}: checks every {server.get('inter') or '2s'}, out after {fall or 3} "
                f"failures: about {estimate:.0f} s before a dead server leaves the rotation"
            )
    return slow


def _judge_stat(o: HealthObservation):
    problems, seen = [], []
    slow = too_slow(o)
    if slow:
        return failed("; ".join(slow))
    for host in o["web"]:
        row = o["stat"].get(host)
        if row is None:
            problems.append(f"HAProxy has no server at {host}'s address")
        elif row["status"].startswith("MAINT"):
            problems.append(f"{host} is in maintenance ({row['status']}): it takes no requests")
        elif not row["check_status"]:
            problems.append(f"{host} is not health-checked (no `check` on its server line)")
        elif row["check_status"].startswith("INI"):
            problems.append(
                f"{host}: its first health check has not completed ({row['status']}, "
                f"{row['check_status']}): checks that never run cannot take it out"
            )
        elif row["status"].startswith("DOWN") and unreachable(row["check_status"]):
            seen.append(
                f"{host} {row['status']} ({row['check_status']}: nothing answers on its port, "
                "so it left the rotation)"
            )
        elif not row["status"].startswith("UP"):
            problems.append(f"{host} is {row['status']} ({row['check_status']})")
        else:
            seen.append(f"{host} {row['status']} ({row['check_status']})")
    if problems:
        return failed_all(problems)
    return passed("HAProxy's view: " + ", ".join(seen))


def unreachable(check_status: str) -> bool:
    """HAProxy's health check found no server at the address and port it sends requests to
    (refused or timed out): a server down that the check rightly took out of the rotation."""
    return check_status.lstrip("* ").startswith(("L4CON", "L4TOUT"))


@leaves("a blackhole route to a balancer on a web server")
def _no_blackhole_routes(topology) -> str:
    balancers = " ".join(quote(h.address) for h in topology.with_role("lb"))
    return f"for lb in {balancers}; do ip route del blackhole $lb/32 2>/dev/null; done"


def failover(lab, victim: str) -> Failover:
    """Make victim unable to answer the balancer (a blackhole route to it on victim) and time
    how long until HAProxy stops sending it requests, then how long until it takes it back."""
    balancer = lab.name("lb")
    route = f"ip route {{}} blackhole {quote(lab.address(balancer))}/32"
    what = f"blackhole route on {victim}"
    hostnames, domain = probes.web_hostnames(lab), lab.topology.domain

    def by_victim(answer) -> bool:
        return probes.names_host(answer["served_by"], (hostnames.get(victim) or victim,), domain)

    lab.on_cleanup(what, lambda: lab.sh(victim, route.format("del"), sudo=True, check=False))
    lab.sh(victim, route.format("replace"), sudo=True)
    started = time.monotonic()
    left = _first_streak(lab, lambda a: a["served_by"] is not None and not by_victim(a), started)
    lab.done_with(what)
    recovered = time.monotonic()
    back = _first_streak(lab, by_victim, recovered, streak=1)
    return {
        "host": victim,
        "lb": balancer,
        "left_after": None if left is None else round(left - started, 1),
        "back_after": None if back is None else round(back - recovered, 1),
    }


def _first_streak(lab, good, since: float, streak: int = 4):
    """When answers through the balancer first satisfied good() streak times in a row."""
    run, first = 0, None
    for _ in Deadline(LEAVE_WINDOW, start=since).ticks(0.1):
        try:
            answer = through_lb(lab, timeout=1.5)
        except CheckError:
            answer = {"status": 0, "served_by": None}
        if answer["status"] == 200 and good(answer):
            run, first = run + 1, first or time.monotonic()
            if run >= streak:
                return first
        else:
            run, first = 0, None
    return None
