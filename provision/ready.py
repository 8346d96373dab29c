"""One readiness step: a command that builds or restores services returns when they answer.

"Ready" is what the grader will observe: HAProxy serving through every web server it balances,
Nginx and the application answering on each web server, the replica replicating and caught up,
the databases and the DNS server answering. Each probe looks only at a service that is installed
on its host, so a lab holding part of the design is ready when that part is.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from lab.core.errors import LabError
from lab.core.topology import Host, Topology
from lab.core.wait import Deadline
from lab.facts import haproxy
from lab.facts import mysql as mysql_facts
from lab.remote.connection import Fleet, describe, fan_out
from provision.app import APP_BIND
from provision.app import UNIT as APP_UNIT
from provision.engine import HostRun, StepFailed
from provision.lb import ADMIN_SOCKET

READY_SECONDS = 90.0  # MariaDB's first start after a restore and a replica's catch-up included
POLL_SECONDS = 0.25


@dataclass(frozen=True)
class Probe:
    """What one component needs to answer on the hosts of a role; problems, or [] when ready."""

    component: str
    role: str
    look: Callable[[HostRun, Host, Topology], list[str]]


NOT_INSTALLED = 3  # the exit status of `given` when the program is not there


def given(hr: HostRun, paths: tuple[str, ...], command: str):
    """command on the host when one of paths is there (one round trip), else None."""
    present = " || ".join(f"test -e {path}" for path in paths)
    result = hr.sh(f"{{ {present}; }} || exit {NOT_INSTALLED}; {command}", check=False)
    return None if result.exited == NOT_INSTALLED else result


def http_status(url: str) -> str:
    """A command printing the HTTP status a request from the host itself gets (000: none)."""
    return f"curl -s -o /dev/null -m 3 -w '%{{http_code}}' {url}"


DATABASES = ("/usr/sbin/mariadbd", "/usr/sbin/mysqld")


def database_answers(hr: HostRun, host: Host, topology: Topology) -> list[str]:
    result = given(hr, DATABASES, "mysqladmin --silent ping")
    return [] if result is None or result.ok else ["MariaDB does not answer yet"]


def replica_caught_up(hr: HostRun, host: Host, topology: Topology) -> list[str]:
    result = given(hr, DATABASES, f"mysqladmin --silent ping && {mysql_facts.REPLICA_STATUS}")
    if result is None:
        return []
    if not result.ok:
        return ["MariaDB does not answer yet"]
    status = mysql_facts.replica_status(result.stdout)
    if not status.configured:
        return []  # not a replica (yet): nothing to wait for
    if not status.running:
        why = status.last_error or f"io={status.io_running or '-'} sql={status.sql_running or '-'}"
        return [f"replication is not running ({why})"]
    if status.seconds_behind != 0:
        return [f"the replica is {status.seconds_behind} s behind the primary"]
    return []


def web_answers(hr: HostRun, host: Host, topology: Topology) -> list[str]:
    result = given(hr, ("/usr/sbin/nginx",), http_status("http://127.0.0.1/"))
    if result is None or result.stdout.strip() not in ("", "000"):
        return []
    return ["Nginx does not answer yet"]


def app_answers(hr: HostRun, host: Host, topology: Topology) -> list[str]:
    """The reference application server answers on its address (any status: without the
    database, its pages fail, and the database has a probe of its own)."""
    result = given(hr, (APP_UNIT,), http_status(f"http://{APP_BIND}/api/status"))
    if result is None or result.stdout.strip() not in ("", "000"):
        return []
    return ["the application server does not answer yet"]


def balancer_serves(hr: HostRun, host: Host, topology: Topology) -> list[str]:
    fence = "@@ site"
    command = f"{haproxy.runtime_api('show stat', ADMIN_SOCKET)}; echo '{fence}'; "
    result = given(hr, ("/usr/sbin/haproxy",), command + http_status(f"http://{host.address}/"))
    if result is None:
        return []
    stat, _, code = result.stdout.partition(f"{fence}\n")
    addresses = {web.name: web.address for web in topology.with_role("web")}
    rows = haproxy.servers_at(haproxy.parse_show_stat(stat), addresses)
    down = [name for name, row in rows.items() if not haproxy.server_up(row)]
    if down:
        return [f"HAProxy does not see {', '.join(sorted(down))} up yet"]
    code = code.strip() or "000"
    return [] if code not in ("000", "503") else [f"the site answers / with HTTP {code}"]


def dns_answers(hr: HostRun, host: Host, topology: Topology) -> list[str]:
    result = given(hr, ("/usr/sbin/nsd",), "systemctl is-active --quiet nsd")
    return [] if result is None or result.ok else ["NSD is not up"]


PROBES = (
    Probe("database", "db-primary", database_answers),
    Probe("database", "db-replica", replica_caught_up),
    Probe("app", "app", app_answers),
    Probe("web", "web", web_answers),
    Probe("lb", "lb", balancer_serves),
    Probe("dns", "dns", dns_answers),
)


def not_ready(topology: Topology, fleet: Fleet, components: Iterable[str]) -> dict[str, list[str]]:
    """What is not ready yet, per host (hosts in parallel; each probe once per host)."""
    wanted = set(components)
    probes: dict[str, list[Probe]] = {}
    for probe in PROBES:
        if probe.component in wanted:
            for host in topology.with_role(probe.role):
                chosen = probes.setdefault(host.name, [])
                if all(p.look is not probe.look for p in chosen):
                    chosen.append(probe)

    def look(name: str) -> list[str]:
        host = topology.host(name)
        hr = HostRun(host.name, host.address, fleet[name])
        return [problem for probe in probes[name] for problem in probe.look(hr, host, topology)]

    found = {}
    for name, outcome in fan_out(list(probes), look).items():
        if outcome.error:
            error = outcome.error
            found[name] = [error.detail if isinstance(error, StepFailed) else describe(error)]
        elif outcome.value:
            found[name] = outcome.value
    return found


def wait_until_ready(
    topology: Topology,
    fleet: Fleet,
    components: Iterable[str],
    seconds: float = READY_SECONDS,
) -> float:
    """Poll until every built service answers; the seconds it took, or LabError naming what
    is still not ready when the deadline passes."""
    components, started = list(components), time.monotonic()
    problems = {}
    for _ in Deadline(seconds, start=started).ticks(POLL_SECONDS):
        problems = not_ready(topology, fleet, components)
        if not problems:
            return time.monotonic() - started
    raise LabError(
        f"not ready after {seconds:.0f} s: "
        + "; ".join(f"{host}: {', '.join(what)}" for host, what in sorted(problems.items())),
        hint="`lab check` says why; `lab provision` builds it again",
    )


# What serves through a component: rebuilding it (Nginx reloaded, MariaDB restarted) shakes
# what stands in front of it, HAProxy's health checks first.
SERVED_THROUGH = {"database": ("app",), "app": ("web",), "web": ("lb",)}


def in_front(components) -> list[str]:
    """The components and everything that serves through them, in the given order first."""
    found = list(dict.fromkeys(components))
    for name in found:  # grows while it is walked: the chain database → app → web → lb
        found += [c for c in SERVED_THROUGH.get(name, ()) if c not in found]
    return found


def settle(
    topology: Topology, specs, components, progress, seconds: float = READY_SECONDS
) -> float:
    """wait_until_ready, for the components and what serves through them, as a step of its
    own (the lab's Fleet opened for it)."""
    components = in_front(components)
    if not components:
        return 0.0
    with progress.step("services answering") as step, Fleet(specs) as fleet:
        waited = wait_until_ready(topology, fleet, components, seconds)
        step.done("each service built answers as it will be graded")
    return waited
