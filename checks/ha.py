"""No single point of failure at the load balancer: a virtual address that VRRP moves between two
balancers carrying the same HAProxy configuration."""

from __future__ import annotations

import time

from checks import probes
from checks.base import Check, CheckError, failed, passed
from checks.dns import follow, resolve_www
from facts import ss, vrrp
from lab.remote import pid as valid_pid
from lab.remote import quote

FAILOVER_WINDOW = 10.0  # seconds the site may be gone when the active balancer dies (seen: 3-4)
RESTORE_WINDOW = 20.0  # seconds the restored balancer has to settle (one holder again)
STREAK = 3  # answers in a row that count as "the site answers again"
SETTLE = 8.0  # seconds a restarted balancer gets to take the address back (seen: 5-6)
ONE_BALANCER = (
    "this lab has one load balancer and no virtual address: the ha section grades a lab made "
    "from lab-ha.yml (`lab --topology lab-ha.yml up --provision`)"
)


def virtual_address(lab) -> str:
    """The topology's virtual address, or the CheckError saying this lab has none."""
    if not lab.topology.virtual_address or len(lab.balancers()) < 2:
        raise CheckError(ONE_BALANCER)
    return lab.topology.virtual_address


def vrrp_view(lab, host: str) -> dict:
    """A balancer's addresses (does it hold the virtual address, on which interface?) and the
    processes that speak VRRP there."""
    vip = lab.topology.virtual_address
    held = vrrp.holds(vrrp.parse_addresses(lab.sh(host, vrrp.ADDRESSES)), vip)
    speakers = vrrp.vrrp_speakers(lab.sh(host, vrrp.RAW_SOCKETS, sudo=True, check=False))
    return {
        "holds": f"{held.address}/{held.prefixlen} dev {held.interface}" if held else None,
        "speakers": [[name, pid] for name, pid in speakers],
    }


def site_at(lab, address: str, timeout: float = 2) -> dict:
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

    def observe(self, lab):
        vip = virtual_address(lab)
        return {
            "virtual_address": vip,
            "balancers": lab.on_each(lab.balancers(), lambda host: vrrp_view(lab, host)),
        }

    def judge(self, o):
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

    def observe(self, lab):
        vip = virtual_address(lab)
        answer = resolve_www(lab)
        _, addresses, _ = follow(answer["records"], answer["name"])
        o = {"virtual_address": vip, "name": answer["name"], "addresses": addresses}
        try:
            o.update(site_at(lab, vip, timeout=5))
        except CheckError as exc:
            o["error"] = str(exc)
        o["web"] = lab.web_hosts()
        return o

    def judge(self, o):
        vip, name = o["virtual_address"], o["name"].rstrip(".")
        if o["addresses"] != [vip]:
            found = ", ".join(o["addresses"]) or "no address"
            return failed(f"{name} resolves to {found}, not the virtual address {vip}")
        if "error" in o:
            return failed(f"{name} → {vip}, but {o['error']}")
        if o["status"] != 200 or o["served_by"] not in o["web"]:
            return failed(
                f"http://{name}/ at {vip} answered HTTP {o['status']}, X-Served-By "
                f"{o['served_by']}: not a page from a web server"
            )
        return passed(f"{name} → {vip}: HTTP 200 from {o['served_by']}")


def haproxy_summary(lab, host: str) -> dict:
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
        addresses = ",".join(sorted(server["addresses"])) or server["host"]
        web_host = next((by_address[a] for a in server["addresses"] if a in by_address), None)
        running = (o["algorithms"] or {}).get(server["backend"]) or server["balance"]
        maint = (stat.get(web_host) or {}).get("status", "").startswith("MAINT")
        options = [
            f"balance {running}",
            *(["check"] if server["check"] else []),
            *(["backup"] if server["backup"] else []),
            *(["disabled"] if server["disabled"] or maint else []),
            *([f"inter {server['inter']}"] if server["inter"] else []),
            *([f"fall {server['fall']}"] if server["fall"] else []),
        ]
        servers.append(f"{addresses}:{server['port']} ({', '.join(options)})")
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

    def observe(self, lab):
        virtual_address(lab)
        return {"balancers": {host: haproxy_summary(lab, host) for host in lab.balancers()}}

    def judge(self, o):
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


def units_of(lab, host: str, pids) -> list[str]:
    """The systemd services the processes pids run in (the grader stops those)."""
    wanted = sorted({p for p in pids if valid_pid(p)})
    if not wanted:
        return []
    out = lab.sh(host, f"ps -o unit= -p {','.join(map(str, wanted))}", check=False)
    return sorted({u for u in out.split() if u.endswith(".service") and u.isprintable()})


def kill_active(lab, vip: str) -> dict:
    """Make the balancer holding vip die as a crash would (its VRRP speaker and the server on
    port 80 killed, the address gone with them), time until the site answers again at vip, and
    bring it back."""
    holders = lab.holders()
    if len(holders) != 1:
        raise CheckError(f"{len(holders)} balancers hold {vip}; the failover needs exactly one")
    victim = holders[0]
    view = vrrp_view(lab, victim)
    web_pids = {p for item in ss.on_port(probes.listeners(lab, victim), 80) for p in item.pids}
    units = units_of(lab, victim, {pid for _, pid in view["speakers"]} | web_pids)
    if not units:
        raise CheckError(f"{victim}: no service found behind VRRP and port 80 to stop")
    names = " ".join(quote(u) for u in units)
    address, _, interface = (view["holds"] or f"{vip} dev lo").partition(" dev ")
    what = f"services on {victim}"
    lab.on_cleanup(what, lambda: lab.sh(victim, f"systemctl start {names}", sudo=True))
    lab.sh(
        victim,
        f"systemctl kill --signal=SIGKILL {names}; systemctl stop {names}; "
        f"ip addr del {quote(address)} dev {quote(interface)} 2>/dev/null; true",
        sudo=True,
    )
    killed = time.monotonic()
    answered = _answers_again(lab, vip, killed, FAILOVER_WINDOW + 5)
    takeover = lab.holders()
    lab.done_with(what)
    started = time.monotonic()
    back = probes.poll(lambda: vrrp_view(lab, victim)["speakers"], RESTORE_WINDOW, 0.5)
    if back:  # a preferred balancer takes the address back after a few adverts: let it
        probes.poll(lambda: lab.holders() == [victim], SETTLE, 0.5)
    settled = back and probes.poll(
        lambda: len(lab.holders()) == 1 and _answers(lab, vip), RESTORE_WINDOW, 0.5
    )
    return {
        "virtual_address": vip,
        "victim": victim,
        "units": units,
        "answered_after": None if answered is None else round(answered - killed, 1),
        "takeover": takeover,
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
    while time.monotonic() - since < seconds:
        if _answers(lab, vip):
            run, first = run + 1, first or time.monotonic()
            if run >= STREAK:
                return first
        else:
            run, first = 0, None
        time.sleep(0.1)
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

    def observe(self, lab):
        return kill_active(lab, virtual_address(lab))

    def judge(self, o):
        vip, victim = o["virtual_address"], o["victim"]
        killed = f"with {' and '.join(o['units'])} killed on {victim} (the holder)"
        others = [h for h in o["takeover"] if h != victim]
        if o["answered_after"] is None:
            who = ", ".join(others) or "nobody"
            return failed(
                f"{killed}, the site at {vip} did not answer again for "
                f"{FAILOVER_WINDOW + 5:.0f} s; {who} held the address"
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
