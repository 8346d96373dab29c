"""No single point of failure at the load balancer: a virtual address that VRRP moves between two
balancers carrying the same HAProxy configuration."""

from __future__ import annotations

import time
from typing import NotRequired, TypedDict

from checks.base import Check, CheckError, failed, passed
from checks.dns import follow, resolve_www
from lab.core import wait
from lab.core.wait import Deadline
from lab.facts import haproxy, proc, ss, vrrp
from lab.observe import probes
from lab.observe.probes import BalancerServer
from lab.remote.quoting import pid as valid_pid
from lab.remote.quoting import quote

FAILOVER_WINDOW = 10.0  # seconds the site may be gone when the active balancer dies (seen: 3-4)
RESTORE_WINDOW = 20.0  # seconds the restored balancer has to settle (one holder again)
STREAK = 3  # answers in a row that count as "the site answers again"
SETTLE = 8.0  # seconds a restarted balancer gets to take the address back (seen: 5-6)
ONE_BALANCER = (
    "this lab has one load balancer and no virtual address: the ha section grades a lab made "
    "from lab-ha.yml (`lab --topology lab-ha.yml up --provision`)"
)


class VrrpView(TypedDict):
    """A balancer's hold on the virtual address, and who speaks VRRP there."""

    holds: str | None  # "ADDRESS/PREFIX dev INTERFACE", None when it does not hold it
    speakers: list[tuple[str, int]]  # [program, pid] of each process with a VRRP socket


class OneHolderObservation(TypedDict):
    virtual_address: str
    balancers: dict[str, VrrpView]


class SiteAnswer(TypedDict):
    """One request for the site: its status and which web server answered."""

    status: int
    served_by: str | None  # the first X-Served-By value


class Resolved(TypedDict):
    """Where www leads, and the web servers' own names to tell an answer from."""

    virtual_address: str
    name: str  # www's name, as asked (ending in a dot)
    addresses: list[str]  # where its CNAMEs end
    web: list[str]
    hostnames: dict[str, str]  # each web server's hostname ("" when it could not be read)
    domain: str


class SiteAnswered(Resolved, SiteAnswer):
    """The site at the virtual address answered."""


class SiteUnanswered(Resolved):
    """The site at the virtual address did not answer: why."""

    error: str


SiteObservation = SiteAnswered | SiteUnanswered


class HaproxySummary(TypedDict):
    """What HAProxy on a balancer does, in terms that do not depend on names."""

    running: bool
    config_ok: bool
    config_error: str  # haproxy -c's first alert, "" when none
    ports: list[int]
    servers: list[str]  # server_summary() of each, sorted


class SameConfigurationObservation(TypedDict):
    balancers: dict[str, HaproxySummary]


class FailoverObservation(TypedDict):
    virtual_address: str
    victim: str  # the balancer that held it, taken down
    units: list[str]  # the services stopped there
    left_up: list[str]  # what still ran on it (the failover was not tried when any)
    answered_after: float | None  # seconds until the site answered again at the address
    takeover: list[str]  # the holders of the address while the victim was down
    # once the victim was back (not when it could not be taken down):
    restored: NotRequired[bool]  # the balancers settled on one holder that answers
    holder_after: NotRequired[list[str]]
    restore_seconds: NotRequired[float]


def virtual_address(lab) -> str:
    """The topology's virtual address, or the CheckError saying this lab has none."""
    if not lab.topology.virtual_address or len(lab.balancers()) < 2:
        raise CheckError(ONE_BALANCER)
    return lab.topology.virtual_address


def vrrp_view(lab, host: str) -> VrrpView:
    """A balancer's addresses (does it hold the virtual address, on which interface?) and the
    processes that speak VRRP there."""
    vip = lab.topology.virtual_address
    held = vrrp.holds(vrrp.parse_addresses(lab.sh(host, vrrp.ADDRESSES)), vip)
    speakers = vrrp.vrrp_speakers(lab.sh(host, vrrp.RAW_SOCKETS, sudo=True, check=False))
    return {
        "holds": f"{held.address}/{held.prefixlen} dev {held.interface}" if held else None,
        "speakers": [[name, pid] for name, pid in speakers],
    }


def site_at(lab, address: str, timeout: float = 2) -> SiteAnswer:
    """One request for the site at address: its status and which web server answered."""
    reply = lab.http(f"http://{address}/", timeout=timeout)
    by = probes.served_by(reply)
    return {"status": reply.status_code, "served_by": by[0] if by else None}


class OneHolder(Check):
    id = "ha.one-holder"
    design = "ha-vrrp"
    section = "ha"
    title = "Exactly one load balancer holds the site's address; every balancer speaks VRRP"
    requirement = (
        "Issues: single point of failure: a second load balancer stands by, ready to take the "
        "site's address over (VRRP)."
    )
    points = 5
    hint = (
        "Run keepalived on every load balancer with one vrrp_instance: same virtual_router_id "
        "and password, unicast_src_ip/unicast_peer, the virtual address, priorities that differ."
    )

    def observe(self, lab) -> OneHolderObservation:
        vip = virtual_address(lab)
        return {
            "virtual_address": vip,
            "balancers": lab.on_each(lab.balancers(), lambda host: vrrp_view(lab, host)),
        }

    def judge(self, o: OneHolderObservation):
        vip, balancers = o["virtual_address"], o["balancers"]
        holders = [host for host, view in balancers.items() if view["holds"]]
        silent = [host for host, view in balancers.items() if not view["speakers"]]
        if len(holders) > 1:
            return failed(
                f"{' and '.join(holders)} all hold {vip} (split brain): they do not hear each "
                "other's VRRP adverts",
                "Both need the same virtual_router_id and password, and each must name the "
                "other in unicast_peer (multicast does not cross this network).",
            )
        if not holders:
            return failed(f"no load balancer holds {vip}: the site's address answers nowhere")
        if silent:
            return failed(
                f"{holders[0]} holds {vip}, but nothing speaks VRRP on {', '.join(silent)} "
                "(no socket for IP protocol 112): "
                + ("nobody would take the address over" if holders[0] not in silent else "")
                + ("" if holders[0] not in silent else "a fixed address moves nowhere"),
                "Start keepalived on every load balancer (`systemctl enable --now keepalived`).",
            )
        speakers = ", ".join(
            f"{host} ({', '.join(sorted({n for n, _ in view['speakers']}))})"
            for host, view in balancers.items()
        )
        return passed(f"{holders[0]} holds {balancers[holders[0]]['holds']}; VRRP on {speakers}")


class SiteAtVirtualAddress(Check):
    id = "ha.site"
    design = "ha-site"
    section = "ha"
    title = "www.foobar.com points at the virtual address, and the site answers there"
    requirement = (
        "Issues: single point of failure: users reach the site at an address that does not "
        "belong to one load balancer."
    )
    points = 5
    hint = (
        "Point www (or the name its CNAME leads to) at the virtual address in the zone, and let "
        "HAProxy listen on every address (`bind *:80`) so it answers there."
    )

    def observe(self, lab) -> SiteObservation:
        vip = virtual_address(lab)
        answer = resolve_www(lab)
        _, addresses, _ = follow(answer["records"], answer["name"])
        o = {"virtual_address": vip, "name": answer["name"], "addresses": addresses}
        try:
            o.update(site_at(lab, vip, timeout=5))
        except CheckError as exc:
            o["error"] = str(exc)
        o["web"] = lab.web_hosts()
        o["hostnames"] = lab.on_each(
            o["web"], lambda host: lab.sh(host, proc.HOSTNAME, check=False).strip()
        )
        o["domain"] = lab.topology.domain
        return o

    def judge(self, o: SiteObservation):
        vip, name = o["virtual_address"], o["name"].rstrip(".")
        if o["addresses"] != [vip]:
            found = ", ".join(o["addresses"]) or "no address"
            return failed(f"{name} resolves to {found}, not the virtual address {vip}")
        if "error" in o:
            return failed(f"{name} → {vip}, but {o['error']}")
        host = probes.served_by_host(o["served_by"], o["hostnames"], o["web"], o.get("domain", ""))
        if o["status"] != 200 or host is None:
            return failed(
                f"http://{name}/ at {vip} answered HTTP {o['status']}, X-Served-By "
                f"{o['served_by']}: not a page from a web server"
            )
        return passed(f"{name} → {vip}: HTTP 200 from {o['served_by']}")


def server_summary(server: BalancerServer, balance: str, maint: bool = False) -> str:
    """A server as HAProxy runs it, by address and port: balancing and health-check options,
    with inter and fall as HAProxy reads them (2000 = 2s; 2 s and 3 when not given)."""
    addresses = ",".join(sorted(server["addresses"])) or server["host"]
    fall = int(server["fall"]) if (server["fall"] or "").isdigit() else 3
    health = ["check", f"inter {haproxy.seconds(server['inter'], 2.0):g}s", f"fall {fall}"]
    options = [
        f"balance {balance}",
        *(health if server["check"] else []),
        *(["backup"] if server["backup"] else []),
        *(["disabled"] if server["disabled"] or maint else []),
    ]
    return f"{addresses}:{server['port']} ({', '.join(options)})"


def haproxy_summary(lab, host: str) -> HaproxySummary:
    """What HAProxy on host does, in terms that do not depend on names: the ports it listens
    on and each server (by address and port) with its balancing and health-check options."""
    o = probes.balancer(lab, host)
    ports = sorted(
        {item.port for item in probes.listeners(lab, host) if "haproxy" in item.names and item.port}
    )
    stat = o["stat"] or {}
    by_address = {a: h for h, a in o["web"].items()}
    servers = []
    for server in o["servers"]:
        web_host = next((by_address[a] for a in server["addresses"] if a in by_address), None)
        running = (o["algorithms"] or {}).get(server["backend"]) or server["balance"]
        maint = (stat.get(web_host) or {}).get("status", "").startswith("MAINT")
        servers.append(server_summary(server, running, maint))
    return {
        "running": o["running"],
        "config_ok": o["config_ok"],
        "config_error": o["config_error"],
        "ports": ports,
        "servers": sorted(servers),
    }


class SameConfiguration(Check):
    id = "ha.same-config"
    design = "ha-same-config"
    section = "ha"
    title = "Both load balancers carry the same HAProxy configuration"
    requirement = (
        "Issues: single point of failure: the standby balancer must do what the active one does "
        "the moment it takes over."
    )
    points = 5
    hint = (
        "Give every load balancer the same haproxy.cfg (copy it, or build both from one "
        "template), check it with `haproxy -c -f`, and reload HAProxy on both."
    )

    def observe(self, lab) -> SameConfigurationObservation:
        virtual_address(lab)
        return {"balancers": {host: haproxy_summary(lab, host) for host in lab.balancers()}}

    def judge(self, o: SameConfigurationObservation):
        balancers = o["balancers"]
        for host, view in balancers.items():
            if not view["running"]:
                return failed(f"HAProxy does not run on {host}: it cannot take the site over")
            if not view["config_ok"]:
                why = view["config_error"] or "no detail"
                return failed(f"{host}: haproxy -c fails ({why}): what runs is not what is on disk")
        (first, reference), *others = balancers.items()
        for host, view in others:
            for key, what in (("servers", "server"), ("ports", "port")):
                missing = [x for x in reference[key] if x not in view[key]]
                extra = [x for x in view[key] if x not in reference[key]]
                parts = [f"{host} lacks {what} {x} that {first} has" for x in missing[:1]]
                parts += [f"{host} has {what} {x} that {first} lacks" for x in extra[:1]]
                if parts:
                    return failed("; ".join(parts))
        servers = "; ".join(reference["servers"]) or "no servers"
        ports = ", ".join(map(str, reference["ports"]))
        return passed(
            f"{', '.join(balancers)}: the same servers ({servers}) and ports ({ports}), "
            "haproxy -c ok on each"
        )


def services_to_stop(processes: dict[int, tuple[int, str, str]], pids) -> list[str]:
    """The systemd services that run the processes pids (VRRP speakers, the server on port 80).

    A process outside any service, or a service whose main process is another program (such as
    docker.service behind a docker-proxy), is a CheckError: the grader stops nothing it cannot
    bring back exactly."""
    wanted = sorted({p for p in pids if valid_pid(p) and p in processes})
    names = {processes[p][2] for p in wanted}
    units: set[str] = set()
    for pid in wanted:
        _, unit, name = processes[pid]
        if not unit.endswith(".service") or not unit.isprintable() or "/" in unit:
            raise CheckError(
                f"{name} (pid {pid}) runs outside any systemd service: the grader stops "
                "services only, so it cannot take this balancer down and bring it back"
            )
        units.add(unit)
    for unit in sorted(units):
        members = {p for p, (_, u, _) in processes.items() if u == unit}
        mains = sorted({processes[p][2] for p in members if processes[p][0] not in members})
        if not mains or any(m not in names for m in mains):
            runs, expected = ", ".join(mains) or "nothing", ", ".join(sorted(names))
            raise CheckError(
                f"{unit} runs {runs}, not only {expected}: the grader does not stop a service "
                "that carries other programs, so it cannot take this balancer down"
            )
    return sorted(units)


def left_up(view: VrrpView, web: list) -> list[str]:
    """What still runs on a balancer the grader took down: the address, VRRP, port 80."""
    found = [f"it still holds {view['holds']}"] if view["holds"] else []
    if view["speakers"]:
        found.append(f"{', '.join(sorted({n for n, _ in view['speakers']}))} still speaks VRRP")
    if web:
        found.append(f"{', '.join(sorted(web))} still listens on port 80")
    return found


def down_view(lab, host: str) -> list[str]:
    """left_up() on host as it is now (not from the run's memo)."""
    port80 = ss.on_port(ss.parse(lab.sh(host, ss.LISTENING, sudo=True)), 80)
    return left_up(vrrp_view(lab, host), [n for item in port80 for n, _ in item.processes])


def start_again(lab, host: str, names: str) -> None:
    """Start the stopped services (registered as a cleanup: when this fails, the end of the
    run tries again)."""
    start = f"systemctl start {names} || {{ sleep 2; systemctl start {names}; }}"
    lab.sh(host, start, sudo=True, timeout=60)


def kill_active(lab, vip: str) -> FailoverObservation:
    """Make the balancer holding vip die as a crash would (its VRRP speaker and the server on
    port 80 killed, the address gone with them), time until the site answers again at vip, and
    bring it back."""
    holders = lab.holders()
    if len(holders) != 1:
        raise CheckError(f"{len(holders)} balancers hold {vip}; the failover needs exactly one")
    victim = holders[0]
    view = vrrp_view(lab, victim)
    web_pids = {p for item in ss.on_port(probes.listeners(lab, victim), 80) for p in item.pids}
    processes = proc.parse_units(lab.sh(victim, proc.UNITS, check=False))
    units = services_to_stop(processes, {pid for _, pid in view["speakers"]} | web_pids)
    if not units:
        raise CheckError(f"{victim}: no service found behind VRRP and port 80 to stop")
    names = " ".join(quote(u) for u in units)
    address, _, interface = (view["holds"] or f"{vip} dev lo").partition(" dev ")
    what = f"services on {victim}"
    lab.on_cleanup(what, lambda: start_again(lab, victim, names))
    observed = {"virtual_address": vip, "victim": victim, "units": units}
    try:
        lab.sh(
            victim,
            f"systemctl kill --signal=SIGKILL {names}; systemctl stop {names}; "
            f"ip addr del {quote(address)} dev {quote(interface)} 2>/dev/null; true",
            sudo=True,
        )
        killed = time.monotonic()
        observed["left_up"] = down_view(lab, victim)
        if observed["left_up"]:
            return {**observed, "answered_after": None, "takeover": lab.holders()}
        answered = _answers_again(lab, vip, killed, FAILOVER_WINDOW + 5)
        observed["takeover"] = lab.holders()
    finally:
        lab.done_with(what)
    started = time.monotonic()
    back = wait.until(lambda: vrrp_view(lab, victim)["speakers"], RESTORE_WINDOW, 0.5)
    if back:  # a preferred balancer takes the address back after a few adverts: let it
        wait.until(lambda: lab.holders() == [victim], SETTLE, 0.5)
    settled = back and wait.until(
        lambda: len(lab.holders()) == 1 and _answers(lab, vip), RESTORE_WINDOW, 0.5
    )
    return {
        **observed,
        "answered_after": None if answered is None else round(answered - killed, 1),
        "restored": bool(settled),
        "holder_after": lab.holders(),
        "restore_seconds": round(time.monotonic() - started, 1),
    }


def _answers(lab, vip: str) -> bool:
    try:
        return site_at(lab, vip, timeout=1)["status"] == 200
    except CheckError:
        return False


def _answers_again(lab, vip: str, since: float, seconds: float) -> float | None:
    """When the site first answered STREAK times in a row at vip (monotonic), or None."""
    run, first = 0, None
    for _ in Deadline(seconds, start=since).ticks(0.1):
        if _answers(lab, vip):
            run, first = run + 1, first or time.monotonic()
            if run >= STREAK:
                return first
        else:
            run, first = 0, None
    return None


class Failover(Check):
    id = "ha.failover"
    design = "ha-failover"
    section = "ha"
    title = "When the active load balancer dies, the other takes the address and the site answers"
    requirement = (
        "Issues: single point of failure: when the load balancer fails, the site stays up: "
        f"another takes over within {FAILOVER_WINDOW:.0f} seconds."
    )
    points = 5
    hint = (
        "Give keepalived a vrrp_script that fails when HAProxy stops answering, and make sure "
        "the standby balancer runs keepalived and HAProxy, ready to take the address."
    )
    needs = ("ha.one-holder", "ha.site")
    exclusive = True  # the site is down for a few seconds on purpose
    waits = FAILOVER_WINDOW + 5 + 2 * RESTORE_WINDOW + SETTLE

    def observe(self, lab) -> FailoverObservation:
        return kill_active(lab, virtual_address(lab))

    def judge(self, o: FailoverObservation):
        vip, victim = o["virtual_address"], o["victim"]
        killed = f"with {' and '.join(o['units'])} killed on {victim} (the holder)"
        others = [h for h in o["takeover"] if h != victim]
        if o["left_up"]:
            return failed(
                f"could not take {victim} down: after stopping {' and '.join(o['units'])}, "
                f"{'; '.join(o['left_up'])} (something restarts it or runs beside its services)",
            )
        if o["answered_after"] is None:
            who = ", ".join(others) or "nobody"
            return failed(
                f"{killed}, the site at {vip} did not answer again for "
                f"{FAILOVER_WINDOW + 5:.0f} s; {who} held the address"
            )
        if not others:
            return failed(
                f"{killed}, the site at {vip} answered again after {o['answered_after']} s, but "
                f"no other balancer took the address over (holders: "
                f"{', '.join(o['takeover']) or 'none'}): {victim} came back by itself",
                "The standby's keepalived must take the address when the holder falls silent: "
                "same virtual_router_id and password, unicast_peer naming the other balancer.",
            )
        if o["answered_after"] > FAILOVER_WINDOW:
            return failed(
                f"{killed}, the site at {vip} answered again only after {o['answered_after']} s "
                f"(at most {FAILOVER_WINDOW:.0f} s)",
                "Lower advert_int (1 s) so the standby notices the silence sooner.",
            )
        if not o["restored"]:
            return failed(
                f"{killed}, {', '.join(others)} took {vip} over in {o['answered_after']} s, but "
                f"once {victim} was restarted the balancers did not settle on one holder "
                f"(holders: {', '.join(o['holder_after']) or 'none'})"
            )
        return passed(
            f"{killed}, {', '.join(others)} took {vip} over and the site answered again after "
            f"{o['answered_after']} s (limit {FAILOVER_WINDOW:.0f} s); once {victim} was "
            f"restarted, {', '.join(o['holder_after'])} held it"
        )
