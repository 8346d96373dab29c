"""Observations several checks share, made once per run from facts: Nginx and what it forwards
to, HAProxy and its servers, and a value written through the front door."""

from __future__ import annotations

import contextlib
import json
import posixpath
import re
import secrets
import time
from typing import Any, NotRequired, TypedDict

from lab.core.wait import Deadline, until
from lab.facts import dns as dns_facts
from lab.facts import haproxy, ipaddr, mysql, nat, nginx, proc, ss, systemd
from lab.facts import http as host_http
from lab.facts import programs as program_facts
from lab.observe import CheckError, visitor
from lab.observe.live import (
    PAUSED,
    SCRATCH_DB,
    TOKEN_PREFIX,
    WEB_PORT,
    LiveLab,
    json_object,
    leaves,
)
from lab.remote.connection import fan_out
from lab.remote.quoting import pid as valid_pid
from lab.remote.quoting import quote

WAIT = 5.0  # seconds a write may take to reach a replica or a read


# -- on any host ------------------------------------------------------------------------------
def listeners(lab: LiveLab, host: str) -> list[ss.Listener]:
    return lab.memo(("ss", host), lambda: _listening(lab, host))


def _listening(lab: LiveLab, host: str) -> list[ss.Listener]:
    return ss.parse(lab.sh(host, ss.LISTENING, sudo=True))


def programs_on_port(lab: LiveLab, host: str, port: int) -> list[str]:
    """The programs holding host's TCP port, by the name of what each process runs
    (/proc/PID/exe: a script named nginx is its interpreter) when the system vouches for it
    (programs.name: a packaged file's bytes, or a build that names itself; an interpreter
    copied as nginx is named with why it is not Nginx), else by its process name."""
    held = ss.on_port(listeners(lab, host), port)
    pids = sorted({pid for item in held for pid in item.pids})
    found = running(lab, host, pids)
    names = {
        program_facts.name(found[pid], name) if pid in found else name
        for item in held
        for name, pid in item.processes
    }
    return sorted(names)


def running(lab: LiveLab, host: str, pids) -> dict[int, program_facts.Program]:
    """pid → the program each process runs, as the kernel, dpkg and the bytes say (one
    command for all pids)."""
    if not pids:
        return {}
    said = lab.sh(host, program_facts.identify(pids), sudo=True, check=False)
    return program_facts.parse_identify(said)


def resolve(lab: LiveLab, host: str, names) -> dict[str, list[str]]:
    """name → addresses as host resolves them (addresses stand for themselves)."""
    names = set(names)
    found = {n: [dns_facts.plain(n)] for n in names if dns_facts.is_address(n)}
    found.update({n: ["127.0.0.1", "::1"] for n in names if n == "localhost"})
    rest = sorted(names - set(found))
    if rest:
        found.update(dns_facts.parse_getent(lab.sh(host, dns_facts.getent(rest), check=False)))
    return found


def processes(lab: LiveLab, host: str, pids) -> dict[int, proc.Process]:
    return proc.parse_ps(lab.sh(host, proc.ps(pids), check=False))


# -- Nginx and the application server behind it -------------------------------------------------
def nginx_dump(lab: LiveLab, host: str) -> str:
    return lab.memo(("nginx -T", host), lambda: lab.sh(host, nginx.DUMP, sudo=True, check=False))


def holders(lab: LiveLab, host: str, target: nginx.Target) -> list[ss.Listener]:
    """The listening sockets on host that a forwarding target reaches."""
    sockets = listeners(lab, host)
    if target.path:
        return [s for s in sockets if s.kind == "unix" and s.address == target.path]
    ips = resolve(lab, host, [target.host]).get(target.host, [])
    return [
        s
        for s in sockets
        if s.kind == "tcp" and s.port == target.port and (s.address == "*" or s.address in ips)
    ]


class StatusReply(TypedDict):
    """An answer to GET /api/status."""

    status: int
    json: dict[str, Any] | None  # the application's JSON object, free-form (None: not one)


class DirectReply(TypedDict):
    """GET /api/status straight from the socket Nginx forwards to (_ask_directly)."""

    target: str
    status: int  # 0: no answer
    json: dict[str, Any] | None  # the application's JSON object, free-form (None: not one)
    error: str  # why no answer came ('' when one did)


class Master(TypedDict):
    """The eldest process holding the application's socket."""

    pid: int
    name: str
    args: str


class Application(TypedDict):
    """What Nginx on a host forwards to, who holds it and what it answers (application())."""

    targets: list[str]  # every proxy_pass/upstream target of nginx -T
    target: str | None  # the one serving /api/status (None: none is held)
    holders: dict[str, list[tuple[str, int]]]  # target → (program, pid) holding it
    sockets: list[str]  # where the master process listens
    local_only: bool
    replies: list[StatusReply]
    front_door: bool  # something listens on the web port (else: the application asked directly)
    direct: DirectReply | None  # None: the target is not proxy_pass (or there is none)
    nginx_pids: list[int]
    master: Master | None


def application(lab: LiveLab, host: str) -> Application:
    """What Nginx on host forwards to, which processes hold it, and what they answer."""
    return lab.memo(("application", host), lambda: _application(lab, host))


def front_door_shut(lab: LiveLab, host: str) -> bool:
    """Whether nothing listens on host's web port: its site has no front door (Nginx stopped),
    so that its application can only be asked directly (site_request)."""
    return not ss.on_port(listeners(lab, host), WEB_PORT)


def app_socket(lab: LiveLab, host: str) -> str:
    """The socket of host's application server as Nginx's configuration on disk names it
    (nginx -T: what it forwards HTTP to), where a process listens; '' when none."""
    for target in nginx.targets(nginx_dump(lab, host)):
        if target.protocol == "proxy_pass" and holders(lab, host, target):
            return str(target)
    return ""


def reachable_directly(lab: LiveLab, host: str) -> bool:
    """Whether host's application is observed directly: no front door, but an application
    server listening where Nginx's configuration forwards to."""
    return front_door_shut(lab, host) and bool(app_socket(lab, host))


def site_request(lab: LiveLab, host: str, path: str, method: str = "GET", body=None):
    """path through host's front door (its web port, as the balancer sends it); when nothing
    listens there, straight to its application server, from host itself over SSH."""
    if not front_door_shut(lab, host):
        return lab.web(host, path, method, **({} if body is None else {"json": body}))
    target = app_socket(lab, host)
    if not target:
        raise CheckError(
            f"{host}: nothing listens on port {WEB_PORT}, and no application server listens "
            "where Nginx's configuration forwards to"
        )
    data = "" if body is None else json.dumps(body)
    request = host_http.request(target, method, path, lab.site, data)
    raw = lab.sh(host, request + " 2>&1", sudo=True, check=False)
    reply = host_http.parse_reply(raw)
    if not reply.status:
        said = (raw.strip().splitlines() or ["no answer"])[0]
        raise CheckError(f"{host}: {method} {path} at {target} (from {host}): {said}")
    return reply


STARTING_SECONDS = 5.0  # how long an application server nothing holds yet may take to listen


def _held(lab: LiveLab, host: str, targets: list[nginx.Target]) -> dict[str, list[ss.Listener]]:
    """The sockets each target reaches. When none is held, host's listeners are read again for
    a few seconds: an application server (re)started a moment ago binds its socket later."""
    held = {str(t): holders(lab, host, t) for t in targets}
    if targets and not any(held.values()):
        until(lambda: any(_read_again(lab, host, targets).values()), STARTING_SECONDS, 0.25)
        held = {str(t): holders(lab, host, t) for t in targets}
    return held


def _read_again(
    lab: LiveLab, host: str, targets: list[nginx.Target]
) -> dict[str, list[ss.Listener]]:
    """The sockets each target reaches, host's listeners read anew for the rest of the run."""
    lab.refresh(("ss", host), lambda: _listening(lab, host))
    return {str(t): holders(lab, host, t) for t in targets}


def _application(lab: LiveLab, host: str) -> Application:
    targets = nginx.targets(nginx_dump(lab, host))
    held = _held(lab, host, targets)
    replies = []
    for _ in range(2):
        reply = site_request(lab, host, "/api/status")
        replies.append({"status": reply.status_code, "json": json_object(reply)})
    answered = {int(p) for r in replies if r["json"] and (p := valid_pid(r["json"].get("pid")))}

    def pids(target) -> set[int]:
        return {pid for sockets in held[str(target)] for pid in sockets.pids}

    if answered - {pid for t in targets for pid in pids(t)}:
        # processes that hold no socket Nginx forwards to, as the listeners were read: workers
        # forked since (a server (re)started a moment ago forks one after another, slowly on a
        # busy machine), or another program; read them again
        held = _read_again(lab, host, targets)

    # the target that serves /api/status: the one the answering process holds
    target = (
        next((t for t in targets if pids(t) & answered), None)
        or next((t for t in targets if held[str(t)] and t.protocol == "proxy_pass"), None)
        or next((t for t in targets if held[str(t)]), None)
    )
    direct = (
        _ask_directly(lab, host, target) if target and target.protocol == "proxy_pass" else None
    )
    owners = pids(target) - {1} if target else set()  # pid 1: systemd holding an activated socket
    master = proc.eldest(processes(lab, host, owners)) if owners else None
    own = [s for s in listeners(lab, host) if master and master.pid in s.pids]
    nginx_pids = sorted(
        {p for s in ss.on_port(listeners(lab, host), 80) for n, p in s.processes if n == "nginx"}
    )
    return {
        "targets": [str(t) for t in targets],
        "target": str(target) if target else None,
        "holders": {
            t: [[n, p] for s in sockets for n, p in s.processes] for t, sockets in held.items()
        },
        "sockets": [str(s) for s in own],
        "local_only": all(s.local_only for s in own),
        "replies": replies,
        "front_door": not front_door_shut(lab, host),  # else: asked directly (site_request)
        "direct": direct,
        "nginx_pids": nginx_pids,
        "master": {"pid": master.pid, "name": master.name, "args": master.args} if master else None,
    }


WEB_PORTS = (80, 443)
# Servers of the distribution that never relay HTTP themselves, at the ports they serve (None:
# every port): not asked, since a database counts each half-open handshake against the asking
# host (max_connect_errors), a newer sshd penalises a source that does not log in, and a DNS
# server over TCP waits for the rest of a query that "GET " announces as 18,245 bytes long. sshd
# at another port than 22 is asked: a remote forward (`ssh -R` with GatewayPorts) is sshd
# listening there for the application.
SSHD = "/usr/sbin/sshd"
NOT_RELAYS = {
    SSHD: (22,),  # the daemon's own sockets (sessions_of_sshd: a login's are asked)
    "/usr/sbin/mariadbd": None,
    "/usr/sbin/mysqld": None,
    "/usr/sbin/nsd": None,
    "/usr/sbin/named": None,
    "/usr/sbin/unbound": None,
    "/usr/sbin/dnsmasq": None,
}

# Servers of the distribution that take datagrams for a protocol of their own (addresses, time,
# names, logs), never passing HTTP on: their UDP ports are not asked.
NOT_DATAGRAM_RELAYS = {
    *(path for path, ports in NOT_RELAYS.items() if ports is None),
    "/usr/sbin/dhclient",
    "/usr/lib/systemd/systemd-networkd",
    "/usr/lib/systemd/systemd-resolved",
    "/usr/sbin/chronyd",
    "/usr/sbin/ntpd",
    "/usr/sbin/avahi-daemon",
    "/usr/sbin/rsyslogd",
    "/usr/sbin/snmpd",
    "/usr/sbin/rpcbind",
}

# An answer of the application's from outside its host (outside()), at another port than the
# web ports (a relay) or at its own socket beyond loopback (exposed).
Relay = TypedDict(
    "Relay",
    {
        "socket": str,  # ADDRESS:PORT ([ADDRESS]:PORT for IPv6)
        "programs": list[str],  # what listens there ([]: nothing: a port forward)
        "from": str,  # where it was asked from and answered: this machine, lb-01, ...
        "status": int | None,
        "pid": int | None,  # the pid the answer named (None: one the grader does not see)
        "host": NotRequired[str],  # the lab host the socket is on, when not the application's
        # how Nginx passes requests there to the application, as its configuration says: a
        # relay a source outside the host connected to, whatever it was answered
        "configured": NotRequired[str],
    },
)


class Outside(TypedDict):
    """What reaches host's application from outside host (outside())."""

    relays: list[Relay]  # other ports than the web ports that lead to it
    exposed: list[Relay]  # its own sockets beyond loopback, where it answered a visitor
    # the sources that asked: this machine, then the other lab hosts (absent from observations
    # recorded before the grader asked from every one)
    asked_from: NotRequired[list[str]]


def ipv6_addresses(lab: LiveLab, host: str) -> list[str]:
    """host's IPv6 addresses another lab host may connect to (ipaddr.ipv6_addresses): the
    link-local one on the lab network, then the global ones."""
    return ipaddr.ipv6_addresses(lab.addresses(host), lab.address(host))


def outside(lab: LiveLab, host: str) -> Outside:
    """What reaches host's application from outside host: the ports relay_candidates names,
    and the application's own sockets beyond loopback (public_sockets), each asked for
    /api/status from this machine and from every other lab host (a firewall may admit one
    source only), over IPv4 and IPv6 as the socket takes them; the answers that came from the
    application (answered_by_application), with every source that got one."""
    return lab.memo(("outside", host), lambda: _outside(lab, host))


def _outside(lab: LiveLab, host: str) -> Outside:
    app = application(lab, host)
    sources = lab.outside_sources(host)
    if not app["target"]:
        return {"relays": [], "exposed": [], "asked_from": sources}
    pids = {pid for _, pid in app["holders"].get(app["target"], [])}
    said = next((r["json"] for r in app["replies"] if r["json"]), None) or {}
    sockets = listeners(lab, host)
    address = lab.address(host)
    v6 = ipv6_addresses(lab, host) if any(s.over_ipv6 and not s.local_only for s in sockets) else []
    own = public_sockets(sockets, pids, address, v6)
    relays: dict[tuple, Relay] = {}  # (host, address, port), and "udp" for a UDP port
    for where_host in [host, *(h for h in lab.topology.names if h != host)]:
        try:
            candidates, answers, configured, doors = relay_answers(lab, where_host)
            datagrams, replies = datagram_answers(lab, where_host)
        except CheckError:
            if where_host == host:
                raise
            continue  # a host that cannot be read leads nowhere the grader can show
        elsewhere = where_host != host
        doors = doors if elsewhere else set()
        for where, relay in by_application(answers, candidates, pids, said, doors).items():
            if elsewhere:
                relay["host"] = where_host
            relays[(where_host, *where)] = relay
        if not elsewhere:  # its own Nginx's other servers, by its configuration
            for where, relay in configured_relays(answers, candidates, configured).items():
                relays.setdefault((host, *where), relay)
        for where, relay in by_application(replies, datagrams, pids, said).items():
            relay["socket"] += "/udp"
            if elsewhere:
                relay["host"] = where_host
            relays[(where_host, *where, "udp")] = relay
    exposed = by_application(ask_everywhere(lab, own, sources), own, pids, said)
    return {
        "relays": list(relays.values()),
        "exposed": [relay for where, relay in exposed.items() if (host, *where) not in relays],
        "asked_from": sources,
    }


def relay_answers(lab: LiveLab, host: str):
    """The ports of host that may relay an application (relay_candidates: its own, when host is
    a web server, or another's: a balancer's SSH local forward), what each answered
    /api/status from every source outside host, and the ports where host's Nginx passes
    requests to host's own application (nginx_relays): (candidates, answers, configured), once
    per run."""
    return lab.memo(("relay answers", host), lambda: _relay_answers(lab, host))


def _relay_answers(lab: LiveLab, host: str):
    sockets = listeners(lab, host)
    address = lab.address(host)
    app = application(lab, host) if host in every_web_address(lab) else None
    target = (app or {}).get("target") or ""
    pids = {pid for _, pid in (app or {}).get("holders", {}).get(target, [])}
    v6 = ipv6_addresses(lab, host) if any(s.over_ipv6 and not s.local_only for s in sockets) else []
    held = sorted({pid for s in sockets if s.kind == "tcp" for pid in s.pids})
    paths = {  # only where the system vouches for the name: a copy of socat as mysqld is asked
        pid: program.path
        for pid, program in running(lab, host, held).items()
        if program_facts.name(program) == posixpath.basename(program.path)
    }
    for pid in sessions_of_sshd(lab, host, paths):  # a remote forward, even at port 22
        del paths[pid]
    others = other_nginx_instances(lab, host, paths)  # asked at every port, by their own reading
    for pid in {pid for instance in others.values() for pid in instance}:
        del paths[pid]
    candidates = relay_candidates(
        sockets, paths, address, target, pids, v6, balancing_only(lab, host, sockets, paths)
    )
    forwards = nat.forwarded_ports(lab.sh(host, nat.RULES, sudo=True, check=False))
    for port in set(forwards) - set(WEB_PORTS):  # port forwards: nothing listens, yet they lead in
        candidates.setdefault((address, port), ["a NAT port forward"])
    for where, programs in namespace_listeners(lab, host).items():
        candidates.setdefault(where, programs)
    dumps = {pid: dump for dump, instance in others.items() for pid in instance}
    asked = {  # a second Nginx server may pass on only what a location's prefix leads to
        (at, port): nginx.asked_paths(dumps.get(holder, nginx_dump(lab, host)), port)
        for (at, port), programs in candidates.items()
        if "nginx" in programs
        for holder in [next(iter(port_holders(sockets, port)), 0)]
    }
    answers = ask_everywhere(lab, candidates, lab.outside_sources(host), asked)
    configured = nginx_relays(lab, host, pids, list(others)) if target else {}
    doors = {where for where in candidates if web_front_door(lab, host, sockets, paths, where[1])}
    return candidates, answers, configured, doors


def web_front_door(lab: LiveLab, host: str, sockets, paths: dict[int, str], port: int) -> bool:
    """Whether what answers at host's port may come through a web server's front door, so
    that an answer Nginx sent (its Server header) is not a relay: the port is held by the
    distribution's HAProxy alone, or by its Nginx alone where, as Nginx reads its
    configuration, every server at that port passes requests to web servers' web ports. A
    header from anything else proves nothing."""
    held = port_holders(sockets, port)
    programs = {posixpath.basename(paths.get(pid, "")) for pid in held}
    if programs == {"haproxy"}:
        return True
    if programs != {"nginx"}:
        return False
    web = set(every_web_address(lab).values())
    for passing in nginx.passing_servers(nginx_dump(lab, host)):
        if port not in passing.ports:
            continue
        target = passing.target
        addresses = resolve(lab, host, [target.host]).get(target.host, []) if target.host else []
        if not addresses or not set(addresses) <= web or target.port not in (None, *WEB_PORTS):
            return False
    return True


NAMESPACE_FENCE = "@@ addresses"


def namespace_listeners(lab: LiveLab, host: str) -> dict[tuple[str, int], list[str]]:
    """(address, port) → programs: the TCP listeners beyond loopback in host's other network
    namespaces (a relay in one of its own, with an address of its own on a macvlan or a veth,
    is out of sight of ss in the host's), each at that namespace's global addresses."""
    found: dict[tuple[str, int], set[str]] = {}
    for pid in ss.other_namespaces(lab.sh(host, ss.NAMESPACES, sudo=True, check=False)):
        both = f"{ss.LISTENING}; echo '{NAMESPACE_FENCE}'; {ipaddr.ADDRESSES}"
        said = lab.sh(host, ss.in_namespace(pid, both), sudo=True, check=False)
        listening, _, addresses = said.partition(NAMESPACE_FENCE)
        usable = [
            a
            for a in ipaddr.parse(addresses)
            if a.scope == "global" and not a.flags & ipaddr.UNUSABLE
        ]
        for item in ss.parse(listening):
            if item.kind != "tcp" or item.local_only or item.port is None:
                continue
            ats = (
                [item.address.partition("%")[0]]
                if item.address != "*"
                else [
                    a.address
                    for a in usable
                    if (a.family == "4" and item.over_ipv4) or (a.family == "6" and item.over_ipv6)
                ]
            )
            for at in ats:
                found.setdefault((at, item.port), set()).update(item.names)
    return {where: sorted(programs) for where, programs in found.items()}


def port_holders(sockets: list[ss.Listener], port: int) -> list[int]:
    """The pids holding a TCP port beyond loopback, lowest first."""
    return sorted({pid for s in ss.on_port(sockets, port) if not s.local_only for pid in s.pids})


def other_nginx_instances(lab: LiveLab, host: str, paths: dict[int, str]) -> dict[str, set[int]]:
    """`nginx -T` of each Nginx master on host that runs a configuration of its own (-c) beside
    the one `nginx -T` reads (the site's: a lone master with -c is the site's itself) → the
    pids of that master and its workers, among paths (pid → the program vouched for)."""
    ours = [pid for pid, path in paths.items() if posixpath.basename(path) == "nginx"]
    seen = processes(lab, host, ours) if ours else {}
    masters = {
        pid: nginx.instance_options(process.args)
        for pid, process in seen.items()
        if process.ppid not in seen
    }
    if None not in masters.values():
        return {}
    found: dict[str, set[int]] = {}
    for pid, options in masters.items():
        if options is None:  # the site's own Nginx
            continue
        dump = lab.sh(host, nginx.dump_of(options), sudo=True, check=False)
        found.setdefault(dump, set()).update(
            {pid} | {p for p, child in seen.items() if child.ppid == pid}
        )
    return found


def datagram_answers(lab: LiveLab, host: str):
    """The UDP ports of host beyond loopback that may relay an application (datagram
    candidates) and what each sent back to GET /api/status in a datagram from every source
    outside host: (candidates, answers), once per run. A relay may carry the request from
    datagrams to the application's TCP socket and its answer back."""
    return lab.memo(("datagram answers", host), lambda: _datagram_answers(lab, host))


def _datagram_answers(lab: LiveLab, host: str):
    sockets = [s for s in ss.parse(lab.sh(host, ss.BOUND_UDP, sudo=True)) if s.kind == "udp"]
    sockets = [s for s in sockets if not s.local_only and s.port is not None]
    if not sockets:
        return {}, {}
    held = sorted({pid for s in sockets for pid in s.pids})
    paths = {
        pid: program.path
        for pid, program in running(lab, host, held).items()
        if program_facts.name(program) == posixpath.basename(program.path)
    }
    v6 = ipv6_addresses(lab, host) if any(s.over_ipv6 for s in sockets) else []
    candidates = datagram_candidates(sockets, paths, lab.address(host), v6)
    asks = [(where, source) for where in candidates for source in lab.outside_sources(host)]
    asked = fan_out(asks, lambda ask: lab.datagram_from_outside(ask[1], *ask[0], "/api/status"))
    answers: Answers = {}
    for key, outcome in asked.items():
        if outcome.error:
            raise outcome.error
        answers[key] = outcome.value
    return candidates, answers


def datagram_candidates(
    sockets: list[ss.Listener], exe_paths: dict[int, str], address: str, v6: list[str] = ()
) -> dict[tuple[str, int], list[str]]:
    """(address, port) → programs: the UDP sockets beyond loopback, but those of servers the
    system vouches for that speak a protocol of their own (NOT_DATAGRAM_RELAYS), each at the
    addresses a visitor sends to (asked_at)."""
    found: dict[tuple[str, int], set[str]] = {}
    for item in sockets:
        if item.kind != "udp" or item.local_only or item.port is None:
            continue
        programs = {exe_paths.get(pid) or name for name, pid in item.processes}
        if programs and programs <= NOT_DATAGRAM_RELAYS:
            continue
        for at in asked_at(item, address, v6):
            found.setdefault((at, item.port), set()).update(posixpath.basename(p) for p in programs)
    return {key: sorted(programs) for key, programs in found.items()}


def sessions_of_sshd(lab: LiveLab, host: str, paths: dict[int, str]) -> list[int]:
    """The pids among paths running the distribution's sshd that are not the daemon systemd
    started (pid 1 its parent) but a login's session: what such a process listens on is a
    remote forward (`ssh -R`), asked at any port."""
    sshd = [pid for pid, path in paths.items() if path == SSHD]
    parents = processes(lab, host, sshd) if sshd else {}
    return [pid for pid in sshd if pid not in parents or parents[pid].ppid != 1]


def nginx_relays(
    lab: LiveLab, host: str, app_pids: set[int], others: list[str] = ()
) -> dict[int, str]:
    """port → how: the ports besides the web ports where host's Nginx, as it reads its
    configuration, passes requests to the application (its processes app_pids hold the
    target), whatever request it takes to get there (a server name, a path, TLS); and every
    port where another instance of Nginx does (others: their `nginx -T`)."""
    found: dict[int, str] = {}
    for dump in [nginx_dump(lab, host), *others]:
        for passing in nginx.passing_servers(dump):
            if not any(s.pids & app_pids for s in holders(lab, host, passing.target)):
                continue
            named = f", server {passing.names[0]}" if passing.names else ""
            for port in passing.ports:
                if port not in WEB_PORTS or dump in others:
                    found.setdefault(port, passing.how + named)
    return found


def configured_relays(answers: Answers, candidates: dict, configured: dict[int, str]) -> dict:
    """(address, port) → Relay: the candidates at a port Nginx passes to the application
    (configured) that a source outside the host connected to, whatever it was answered."""
    found: dict[tuple[str, int], Relay] = {}
    for where in candidates:
        if where[1] not in configured:
            continue
        sources = [source for (at, source), answer in answers.items() if at == where and answer]
        if sources:
            found[where] = {
                "socket": socket_name(*where),
                "programs": candidates[where],
                "from": " and ".join(filter(None, [", ".join(sources[:-1]), sources[-1]])),
                "status": None,
                "pid": None,
                "configured": configured[where[1]],
            }
    return found


def balancing_only(lab: LiveLab, host: str, sockets, paths: dict[int, str]) -> set[int]:
    """The pids of HAProxy on host when it is the distribution's, runs the configuration the
    grader read (a second instance of HAProxy is asked like any other program), and every
    server it sends requests to, as it reads that configuration, is a web server's web port:
    what it answers comes through that web server's front door, so its ports are not asked."""
    instance = haproxy.instance_pids(haproxy_processes(lab, host))
    haproxies = {
        pid
        for s in sockets
        if s.kind == "tcp" and not s.local_only
        for pid in s.pids
        if posixpath.basename(paths.get(pid, "")) == "haproxy" and pid in instance
    }
    if not haproxies:
        return set()
    seen = balancer(lab) if host == lab.name("lb") else balancer(lab, host)
    return haproxies if leads_to_web_servers(seen["servers"], every_web_address(lab)) else set()


def every_web_address(lab: LiveLab) -> dict[str, str]:
    """Every web server of the topology → its address, also those a per-host run leaves out
    (lab.web_addresses() holds only the graded ones)."""
    return {h.name: lab.address(h.name) for h in lab.topology.with_role("web")}


def leads_to_web_servers(servers, web: dict[str, str]) -> bool:
    """Whether every server a balancer sends requests to is a web server (web: host → address)
    at a web port (or the port a request came to): the servers that take requests while one of
    them is up, that is, those not disabled, and the backups only where there is no other."""
    addresses = set(web.values())
    taking = [s for s in servers if not s["disabled"]]
    active = [s for s in taking if not s["backup"]] or taking
    return bool(active) and all(
        s["addresses"] and set(s["addresses"]) <= addresses and s["port"] in (None, *WEB_PORTS)
        for s in active
    )


Answers = dict[tuple[tuple[str, int], str], dict | None]  # (where, source) → from_outside


def ask_everywhere(lab: LiveLab, wanted, sources: list[str], paths=None) -> Answers:
    """GET /api/status (or the paths that lead to it there: paths[where]) at each (address,
    port) wanted, from each source at once (a port that drops packets costs its wait once);
    this machine asks the lab's addresses alone. The answer that brought a JSON object, else
    the first."""
    paths = paths or {}
    asks = [
        (where, source, path)
        for where in wanted
        for source in sources
        for path in paths.get(where, ["/api/status"])
    ]
    answers = fan_out(asks, lambda ask: lab.from_outside(ask[1], *ask[0], ask[2]))
    found: Answers = {}
    for (where, source, _), outcome in answers.items():
        if outcome.error:
            raise outcome.error
        key, answer = (where, source), outcome.value
        if key not in found or (brought_json(answer) and not brought_json(found[key])):
            found[key] = answer
    return found


def through_nginx(answer: dict) -> bool:
    """Whether Nginx sent the answer (it puts its own Server header on what it passes on)."""
    return answer.get("server", "").lower().startswith("nginx")


def brought_json(answer: dict | None) -> bool:
    return bool(answer and answer["json"] is not None)


def by_application(
    answers: Answers, programs: dict, pids: set[int], said: dict, doors: set = frozenset()
) -> dict:
    """(address, port) → Relay: where the application of pids (said: its own answer) answered,
    with every source that got it, in the order programs names the places. doors: the places
    on another host where an answer Nginx sent (its Server header) came through a web server's
    front door (web_front_door: a balancer's leftover server elsewhere does not make its port 80 a
    relay)."""
    found: dict[tuple[str, int], Relay] = {}
    reached: dict[tuple[str, int], list[str]] = {}
    for (where, source), answer in answers.items():
        pid = answered_by_application(answer["json"], pids, said) if answer else None
        if pid is None or (where in doors and through_nginx(answer)):
            continue
        reached.setdefault(where, []).append(source)
        found.setdefault(
            where,
            {
                "socket": socket_name(*where),
                "programs": programs.get(where, []),
                "from": source,
                "status": answer["status"],
                "pid": pid or None,
            },
        )
    for where, by in reached.items():
        found[where]["from"] = " and ".join(filter(None, [", ".join(by[:-1]), by[-1]]))
    return {where: found[where] for where in programs if where in found}


def socket_name(address: str, port: int) -> str:
    """ADDRESS:PORT, [ADDRESS]:PORT for IPv6."""
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def asked_at(item: ss.Listener, address: str, v6: list[str]) -> list[str]:
    """The addresses a visitor outside the host connects to for a TCP listener beyond
    loopback: a wildcard at the host's lab address over IPv4 (0.0.0.0, ss's *) and at each of
    its IPv6 addresses v6 ([::], ss's *: an IPv6 socket that takes IPv4 too), one address at
    itself (a link-local one without its scope: the asking host's own is put there)."""
    if item.address != "*":
        return [item.address.partition("%")[0]]
    return ([address] if item.over_ipv4 else []) + (list(v6) if item.over_ipv6 else [])


def public_sockets(
    sockets: list[ss.Listener], app_pids: set[int], address: str, v6: list[str] = ()
) -> dict[tuple[str, int], list[str]]:
    """(address, port) → programs: where the application's own sockets beyond loopback are
    asked from outside (asked_at)."""
    found: dict[tuple[str, int], list[str]] = {}
    for item in sockets:
        if item.kind != "tcp" or item.local_only or item.port is None:
            continue
        if item.pids & app_pids:
            for at in asked_at(item, address, v6):
                found.setdefault((at, item.port), item.names)
    return found


def relay_candidates(
    sockets: list[ss.Listener],
    exe_paths: dict[int, str],
    address: str,
    target: str,
    app_pids: set[int] = frozenset(),
    v6: list[str] = (),
    balancing: set[int] = frozenset(),
) -> dict[tuple[str, int], list[str]]:
    """(address, port) → programs: the TCP ports a host listens on beyond loopback (but its
    web ports where Nginx alone holds them, the distribution's SSH and database servers at
    theirs, and the application's own sockets, judged by themselves: public_sockets), each at
    the addresses a visitor connects to (asked_at: IPv4 and IPv6, v6 being the host's IPv6
    addresses), and the application's own port at the host's address when nothing listens
    there beyond loopback: a port forward may open it. balancing: the pids of a balancer whose
    ports lead to the web servers alone (balancing_only), not asked."""
    found: dict[tuple[str, int], set[str]] = {}
    public = {s.port for s in sockets if s.kind == "tcp" and not s.local_only}
    for item in sockets:
        if item.kind != "tcp" or item.local_only or item.port is None:
            continue
        if item.pids & app_pids or (item.pids and item.pids <= balancing):
            continue
        if item.port in WEB_PORTS and served_by_nginx(item, exe_paths):
            continue
        programs = {exe_paths.get(pid) or name for name, pid in item.processes}
        if programs and all(serves_itself(program, item.port) for program in programs):
            continue
        for at in asked_at(item, address, v6):
            found.setdefault((at, item.port), set()).update(posixpath.basename(p) for p in programs)
    port = target.rpartition(":")[2]
    if target and not target.startswith("unix:") and port.isdigit() and int(port) not in public:
        found.setdefault((address, int(port)), set())
    return {key: sorted(programs) for key, programs in found.items()}


def served_by_nginx(item: ss.Listener, exe_paths: dict[int, str]) -> bool:
    """Whether a web port's socket is held by Nginx alone, as the system vouches for it (a
    socat on 443 is asked like any other relay)."""
    return bool(item.pids) and all(
        posixpath.basename(exe_paths.get(pid, "")) == "nginx" for pid in item.pids
    )


def serves_itself(program: str, port: int) -> bool:
    """Whether program (a path the system vouches for) at port is a server NOT_RELAYS leaves
    unasked."""
    ports = NOT_RELAYS.get(program, ())
    return ports is None or port in ports


def answered_by_application(body: dict | None, pids: set[int], said: dict) -> int | None:
    """The pid an answer names when the application gave it (0: its own answer, by the host
    and a request_id as through Nginx, from a process the grader does not see holding the
    socket), or None when it is not the application's /api/status."""
    if not isinstance(body, dict):
        return None
    if said.get("host") and body.get("host") not in (None, said["host"]):
        return None  # another host's application (pids repeat from host to host)
    pid = valid_pid(body.get("pid"))
    if pid is not None and int(pid) in pids:
        return int(pid)
    if said.get("host") and body.get("host") == said.get("host") and "request_id" in body:
        return int(pid) if pid else 0
    return None


def _ask_directly(lab: LiveLab, host: str, target) -> DirectReply:
    """GET /api/status straight from the socket Nginx forwards to, inside host."""
    request = host_http.get(str(target), "/api/status", lab.site)
    raw = lab.sh(host, request + " 2>&1", sudo=True, check=False)
    reply = host_http.parse_reply(raw)
    body = reply.json()
    return {
        "target": str(target),
        "status": reply.status,
        "json": body if isinstance(body, dict) else None,
        "error": "" if reply.status else (raw.strip().splitlines() or ["no answer"])[0],
    }


# -- HAProxy ------------------------------------------------------------------------------------
class BalancerServer(haproxy.ServerRow):
    """A server of the balancer, with the addresses its names resolve to on the balancer."""

    addresses: list[str]  # of host
    check_addresses: list[str]  # of check_addr
    inter: str | None  # its `inter` in the configuration on disk (None: not given)
    check_via: NotRequired[str]  # the proxy its checks go through, on disk ('': none)


class StatRow(TypedDict):
    """A web server's `show stat` row (STAT_FIELDS)."""

    pxname: str
    svname: str
    status: str
    check_status: str
    check_fall: str
    bck: str
    addr: str
    stot: str


class ProxyRules(TypedDict):
    """What haproxy.cfg says of a backend beside its servers (Balancer's rules)."""

    routed: bool  # a frontend can send requests to it (default_backend, use_backend, listen)
    connects: list[tuple[str, int]]  # where its health checks connect: (addr, port), ''/0 own
    chooses: list[str]  # its `use-server` rules


class Balancer(TypedDict):
    """HAProxy on a load balancer (balancer())."""

    host: str
    running: bool
    files: list[str]  # its -f arguments (files or directories)
    config_ok: bool  # `haproxy -c` passed
    config_error: str  # its first [ALERT] ('' none)
    config_warnings: list[str]
    sockets: list[str]  # the stats sockets its configuration names
    servers: list[BalancerServer]
    reading: str  # who read the configuration: "runtime API", "a private copy", "" (the grader)
    stat: dict[str, StatRow] | None  # web host → its row on the runtime API (None: no answer)
    algorithms: dict[str, str]  # backend → balance algorithm, as HAProxy reads them
    rules: NotRequired[dict[str, ProxyRules]]  # backend → its routing and check rules (files)
    web: dict[str, str]  # web host → address
    loaded: float | None  # when the running configuration was loaded (seconds since the epoch)
    mtimes: dict[str, float]  # configuration file → when it last changed


def balancer(lab: LiveLab, lb: str | None = None) -> Balancer:
    """HAProxy on a load balancer (the active one by default): running, its configuration (on
    disk, valid?), its servers."""
    if lb is None:
        return lab.memo("haproxy", lambda: _balancer(lab, lab.name("lb")))
    return lab.memo(("haproxy", lb), lambda: _balancer(lab, lb))


def haproxy_processes(lab: LiveLab, host: str) -> str:
    """host's HAProxy processes (haproxy.PROCESSES), read once per run."""
    return lab.memo(("haproxy ps", host), lambda: lab.sh(host, haproxy.PROCESSES, check=False))


def _balancer(lab: LiveLab, lb: str) -> Balancer:
    ps_out = haproxy_processes(lab, lb)
    files = haproxy.config_files(ps_out)
    pids = haproxy.process_ids(ps_out)
    # the files as HAProxy reads them, its runtime view, its test, its age: asked at once
    (config, runtime), test, (loaded, mtimes) = lab.together(
        lambda: _config_and_runtime(lab, lb, files),
        lambda: lab.sh(lb, haproxy.check_config(files), sudo=True, check=False),
        lambda: config_times(lab, lb, pids, files),
    )
    config_ok = test.rstrip().endswith("exit=0")
    rows, state, reading = runtime
    stat = None
    if rows is not None:
        found = haproxy.servers_at(rows, lab.web_addresses())
        stat = {h: {k: r.get(k, "") for k in STAT_FIELDS} for h, r in found.items()}
    if rows is None and config_ok:  # no stats socket: a private copy says how it reads the files
        private = haproxy.private_reading(files, config.sockets)
        sections = haproxy.parse_reading(lab.sh(lb, private, sudo=True, check=False))
        if sections.get("show stat", "").startswith("# pxname"):
            rows = haproxy.parse_show_stat(sections["show stat"])
            state = haproxy.parse_servers_state(sections.get("show servers state", ""))
            reading = "a private copy"
    on_disk = {(b.name, s.name): s for b in config.backends for s in b.servers}
    if rows is not None:
        servers = haproxy.running_servers(rows, state)
    else:  # HAProxy could not say: the grader's own reading of the files
        servers = haproxy.configured_servers(config)
    addresses = resolve(
        lab, lb, {s["host"] for s in servers} | {s["check_addr"] for s in servers} - {""}
    )
    for server in servers:
        server["addresses"] = addresses.get(server["host"], [])
        server["check_addresses"] = addresses.get(server["check_addr"], [])
        written = on_disk.get((server["backend"], server["name"]))
        server["inter"] = written.option("inter") if written else None
        server["check_via"] = written.check_via if written else ""
    algorithms = {r["pxname"]: r.get("algo", "") for r in rows or [] if r["svname"] == "BACKEND"}
    return {
        "host": lb,
        "running": bool(ps_out.strip()),
        "files": files,
        "config_ok": config_ok,
        "config_error": haproxy.first_alert(test),
        "config_warnings": haproxy.warnings(test),
        "sockets": config.sockets,
        "servers": servers,
        "reading": reading,  # who read the configuration: HAProxy (how), or "" (the grader)
        "stat": stat,
        "algorithms": algorithms,  # as HAProxy reads them (show stat), by backend
        "rules": {
            b.name: {"routed": config.routed(b), "connects": b.check_connects, "chooses": b.chooses}
            for b in config.backends
        },
        "web": lab.web_addresses(),
        "loaded": loaded,  # when the running configuration was loaded (its youngest process)
        "mtimes": mtimes,  # when each configuration file last changed
    }


def _config_and_runtime(lab: LiveLab, lb: str, files: list[str]):
    """HAProxy's configuration as read from files, and its runtime view through the first
    stats socket that answers: (config, (show stat rows or None, servers state, reading))."""
    config = haproxy.parse_config(lab.sh(lb, haproxy.cat_config(files), sudo=True, check=False))
    for socket in config.sockets:
        asked = [haproxy.runtime_api(q, socket) for q in ("show stat", "show servers state")]
        stat, state = lab.on_each(
            asked, lambda command: lab.sh(lb, command, sudo=True, check=False)
        ).values()
        if stat.startswith("# pxname"):
            rows = haproxy.parse_show_stat(stat)
            return config, (rows, haproxy.parse_servers_state(state), "runtime API")
    return config, (None, [], "")


def config_times(lab: LiveLab, host: str, pids, paths) -> tuple[float | None, dict[str, float]]:
    """When a service's running configuration was loaded (its youngest process started) and
    when each of its configuration files last changed (seconds since the epoch)."""
    if not pids or not paths:
        return None, {}
    out = lab.sh(host, proc.loaded_and_changed(pids, paths), check=False)
    started, mtimes = proc.parse_loaded_and_changed(out)
    return (max(started.values()) if started else None), mtimes


STAT_FIELDS = ("pxname", "svname", "status", "check_status", "check_fall", "bck", "addr", "stot")


def stat_rows(lab: LiveLab, lb: str, socket: str) -> list[dict[str, str]] | None:
    """HAProxy's `show stat` on its runtime API, a dict per row; None without an answer."""
    out = lab.sh(lb, haproxy.runtime_api("show stat", socket), sudo=True, check=False)
    return haproxy.parse_show_stat(out) if out.startswith("# pxname") else None


def server_rows(lab: LiveLab, lb: str, socket: str, web=None) -> dict[str, dict] | None:
    """HAProxy's own view of the web servers (matched by address; web: {host: address}, the
    lab's by default), or None without an answer."""
    rows = stat_rows(lab, lb, socket)
    return None if rows is None else haproxy.servers_at(rows, web or lab.web_addresses())


def backend_sessions(lab: LiveLab, lb: str, socket: str) -> dict[str, int]:
    """Sessions (stot) each of HAProxy's backends has taken, by its name ({} without an answer)."""
    return haproxy.backend_sessions(stat_rows(lab, lb, socket) or [])


def web_servers_in_balancer(observation: dict) -> dict[str, BalancerServer]:
    """The balancer's server entries that are the web hosts (matched by address, never name)."""
    found = {}
    for host, address in observation["web"].items():
        for server in observation["servers"]:
            if address in server["addresses"]:
                found.setdefault(host, server)
    return found


# -- a value written through the front door -----------------------------------------------------
def roles(lab: LiveLab) -> tuple[str, str]:
    return lab.name("db-primary"), lab.name("db-replica")


def admin_sql(lab: LiveLab, host: str, statements: str, check: bool = True) -> str:
    """SQL as the database's administrator (`sudo mysql`, socket authentication)."""
    try:
        return lab.sh(host, mysql.command(statements), sudo=True, check=check)
    except CheckError as exc:
        if "Access denied for user 'root'" in str(exc):
            raise CheckError(
                f"{host}: the grader cannot log in as the MySQL administrator with `sudo mysql` "
                "(root must keep socket authentication, or /root/.my.cnf must hold its password)"
            ) from None
        raise


class AppError(TypedDict):
    """Why the application on a host failed, in its own words (app_error())."""

    unit: str  # the systemd unit running it ('' when none was found)
    line: str  # the last error of its journal ('' none)
    database: str  # the database host whose accounts were looked at
    unloaded: list[str]  # the refused user's accounts in the grant tables, not loaded


class PostEntry(TypedDict):
    """An entry signed through a web server (post_entry())."""

    token: str
    status: int
    json: bool  # the answer was a JSON object
    said: str  # the error the answer gave ('' none)
    error: NotRequired[AppError]  # when the write failed (front_door())


def post_entry(lab: LiveLab, host: str) -> PostEntry:
    """Sign the guestbook through host's web server with a random token as the message."""
    token = TOKEN_PREFIX + secrets.token_hex(8)
    reply = site_request(
        lab, host, "/api/guestbook", "POST", {"name": "lab-check", "message": token}
    )
    body = json_object(reply)
    return {
        "token": token,
        "status": reply.status_code,
        "json": body is not None,
        "said": said_error(body),
    }


def said_error(body: dict | None) -> str:
    """The error an application put in its JSON answer ("error", or the database's), or ''."""
    if not body:
        return ""
    database = body.get("database")
    for error in (body.get("error"), database.get("error") if isinstance(database, dict) else None):
        if isinstance(error, str) and error.strip():
            return error.strip()[: systemd.LONGEST]
    return ""


class ReadReply(TypedDict):
    """The guestbook as a web server reads it (read_reply())."""

    status: int | None  # None: no answer
    text: str
    said: str  # the error the answer gave, or why no answer came ('' none)


def read_reply(lab: LiveLab, host: str) -> ReadReply:
    """The guestbook as host's web server reads it: its status (None: no answer) and text."""
    try:
        reply = site_request(lab, host, "/api/guestbook")
    except CheckError as exc:
        return {"status": None, "text": "", "said": str(exc)}
    return {"status": reply.status_code, "text": reply.text, "said": said_error(json_object(reply))}


def read_entries(lab: LiveLab, host: str) -> str:
    """The guestbook as host's web server reads it (raw text: tokens are searched in it)."""
    return read_reply(lab, host)["text"]


def app_error(lab: LiveLab, host: str, database: str) -> AppError:
    """Why the application on host failed, in its own words: the last error in the journal of
    the systemd unit that runs the process Nginx forwards to. When that error is a refused
    database account, the accounts of that user in database's grant tables that its server
    has not loaded."""
    try:
        master = application(lab, host)["master"]
    except CheckError:  # the server behind Nginx cannot be found: its status and words say why
        master = None
    unit = line = ""
    if master:
        unit = systemd.parse_unit(lab.sh(host, systemd.unit_of(master["pid"]), check=False))
    if unit:  # the last minute only: an older error may be one already fixed
        command = systemd.journal(unit, 200, "-60s")

        def last_error() -> str:
            return systemd.app_error(lab.sh(host, command, sudo=True, check=False))

        line = until(last_error, 2.0, 0.25) or ""  # the journal may lag a moment behind
    user, unloaded = mysql.denied_user(line), []
    if user is not None:
        unloaded = mysql.unloaded_accounts(admin_sql(lab, database, mysql.ACCOUNTS, False), user)
    return {"unit": unit, "line": line, "database": database, "unloaded": unloaded}


def text_columns(lab: LiveLab, host: str) -> list[mysql.Column]:
    """The text columns of host's databases (the grader's scratch database left out)."""
    return mysql.parse_columns(admin_sql(lab, host, mysql.text_columns((SCRATCH_DB,))))


def find_tokens(lab: LiveLab, host: str, tokens: list[str], columns=None) -> dict[str, str]:
    """token → schema.table.column where host's database holds it."""
    if columns is None:
        columns = text_columns(lab, host)
    if not columns or not tokens:
        return {}
    return mysql.parse_found(admin_sql(lab, host, mysql.search(columns, tokens)))


def forget_tokens(lab: LiveLab, primary: str, replica: str, on_primary: dict, on_replica: dict):
    """Delete the grader's entries: on the primary (the deletion replicates), and on the replica
    whatever was written there directly (unlogged, so that the replica stays consistent)."""
    stray = {t: w for t, w in on_replica.items() if t not in on_primary}
    for host, found, prefix in (
        (primary, on_primary, ""),
        (replica, stray, "SET SESSION sql_log_bin = 0; "),
    ):
        statements = []
        for token, where in found.items():
            schema, table, column = where.split(".", 2)
            statements.append(
                f"USE {mysql.ident(schema)}; DELETE FROM {mysql.ident(schema)}."
                f"{mysql.ident(table)} WHERE {mysql.ident(column)} LIKE "
                f"{mysql.literal('%' + token + '%')};"
            )
        if statements:
            admin_sql(lab, host, prefix + " ".join(statements), check=False)


def forget_stale_entries(lab: LiveLab) -> list[mysql.Column]:
    """Delete the entries a killed run left on the primary, once per run and before this run
    writes any; returns the primary's text columns."""

    def forget() -> list[mysql.Column]:
        primary, replica = roles(lab)
        columns = text_columns(lab, primary)
        stale = find_tokens(lab, primary, [TOKEN_PREFIX], columns)
        forget_tokens(lab, primary, replica, stale, {})
        return columns

    return lab.memo("stale entries", forget)


def forget_at_the_end(lab: LiveLab, on_primary: dict, on_replica: dict) -> None:
    """Have the run's cleanup delete these entries of the grader's (the dicts as they are by
    then), with every other one, in one command per database."""
    lab.memo("entries to forget", lambda: _forget_entries_at_cleanup(lab)).append(
        (on_primary, on_replica)
    )


def _forget_entries_at_cleanup(lab: LiveLab) -> list[tuple[dict, dict]]:
    primary, replica = roles(lab)
    found: list[tuple[dict, dict]] = []

    def forget() -> None:
        on_primary = {t: w for p, _ in found for t, w in p.items()}
        on_replica = {t: w for _, r in found for t, w in r.items()}
        forget_tokens(lab, primary, replica, on_primary, on_replica)

    lab.on_cleanup("the grader's entries", forget)
    return found


def columns_of(found: dict[str, str]) -> list[mysql.Column] | None:
    """The columns find_tokens found tokens in (None: none, search them all)."""
    return [mysql.Column(*w.split(".", 2)) for w in sorted(set(found.values()))] or None


class ReadAnswer(TypedDict):
    """The last answer to a read of the guestbook through a web server."""

    status: int | None  # None: no answer
    said: str
    error: NotRequired[AppError]  # when it failed


class FrontDoor(TypedDict):
    """Entries written through each web server, followed to both databases (front_door())."""

    primary: str
    replica: str
    asked_directly: list[str]  # web servers with no front door: the application asked directly
    posts: dict[str, PostEntry]  # by web server
    on_primary: dict[str, str]  # token → schema.table.column
    on_replica: dict[str, str]  # token → schema.table.column
    replica_engines: dict[str, str]  # schema.table.column → storage engine
    replicated_after: float  # seconds
    reads: dict[str, list[str]]  # web server → the tokens its site shows
    read_answers: dict[str, ReadAnswer]


def front_door(lab: LiveLab) -> FrontDoor:
    """Entries written through each web server: did they reach the primary, the replica, reads?"""
    return lab.memo("front door", lambda: _front_door(lab))


def _front_door(lab: LiveLab) -> FrontDoor:
    """Write through each server, follow the entries to both databases, read them back."""
    primary, replica = roles(lab)
    web = lab.web_hosts()
    columns = forget_stale_entries(lab)
    posts, replica_columns = lab.together(
        lambda: lab.on_each(web, lambda host: post_entry(lab, host)),
        lambda: _columns_if_any(lab, replica),  # meanwhile: not changed by a pause
    )
    tokens = [p["token"] for p in posts.values() if p["status"] in (200, 201)]
    on_primary = find_tokens(lab, primary, tokens, columns)
    if len(on_primary) < len(tokens):  # perhaps in a table the writes made
        on_primary = find_tokens(lab, primary, tokens)
    on_replica: dict[str, str] = {}
    forget_at_the_end(lab, on_primary, on_replica)
    lab.once_running("replica")  # written while paused by another check: read once it runs
    replicated_after = _follow_to_replica(lab, replica, tokens, on_primary, on_replica)
    answers: dict[str, dict] = {}
    engines, shown = lab.together(
        lambda: _replica_engines(lab, replica, on_replica, replica_columns),
        lambda: lab.on_each(
            web, lambda host: _read_back(lab, host, posts[host]["token"], tokens, answers)
        ),
    )
    read_errors = _why_failed(lab, primary, posts, answers)
    return {
        "primary": primary,
        "replica": replica,
        "asked_directly": [h for h in web if front_door_shut(lab, h)],  # no front door there
        "posts": posts,
        "on_primary": on_primary,
        "on_replica": on_replica,
        "replica_engines": engines,
        "replicated_after": replicated_after,
        "reads": shown,
        "read_answers": {
            host: {
                "status": answer["status"],
                "said": answer["said"],
                **({"error": read_errors[host]} if host in read_errors else {}),
            }
            for host, answer in answers.items()
        },
    }


def _follow_to_replica(
    lab: LiveLab, replica: str, tokens: list[str], on_primary: dict, on_replica: dict
) -> float:
    """Wait until the replica holds every token the primary holds (found into on_replica);
    returns the seconds waited."""
    started = time.monotonic()
    stray = len(on_primary) < len(tokens)  # written elsewhere: search the replica everywhere
    columns = None if stray else columns_of(on_primary)

    def replica_has_all() -> bool:
        on_replica.update(find_tokens(lab, replica, tokens, columns))
        return set(on_primary) <= set(on_replica)

    if tokens:
        until(replica_has_all, WAIT)
    return round(time.monotonic() - started, 2)


def _columns_if_any(lab: LiveLab, host: str) -> list[mysql.Column] | None:
    """text_columns(), or None where the database cannot say (asked again when needed)."""
    try:
        return text_columns(lab, host)
    except CheckError:
        return None


def _replica_engines(
    lab: LiveLab, replica: str, on_replica: dict, known: list[mysql.Column] | None = None
) -> dict[str, str]:
    """schema.table.column → storage engine, for each of the replica's columns holding a token
    (from its columns known already, when they include every one of those)."""
    if not on_replica:
        return {}
    held = set(on_replica.values())
    if known is None or not held <= {str(c) for c in known}:
        known = text_columns(lab, replica)
    return {str(c): c.engine for c in known if str(c) in held}


def _read_back(lab: LiveLab, host: str, own: str, tokens: list[str], answers: dict) -> list[str]:
    """The tokens host's site shows once it shows its own entry (its last answer into answers)."""

    def shows_own():
        answers[host] = read_reply(lab, host)
        return own in answers[host]["text"]

    until(shows_own, WAIT)
    return [token for token in tokens if token in answers[host]["text"]]


def _why_failed(lab: LiveLab, primary: str, posts: dict, answers: dict) -> dict[str, AppError]:
    """What went wrong, in the application's own words, where an answer failed: into each
    failed post; returned for each failed read."""
    writes_failed = [h for h, p in posts.items() if p["status"] not in (200, 201)]
    reads_failed = [h for h, a in answers.items() if a["status"] != 200]
    write_errors = lab.on_each(writes_failed, lambda host: app_error(lab, host, primary))
    read_errors = lab.on_each(reads_failed, lambda host: app_error(lab, host, host))
    for host, error in write_errors.items():
        posts[host]["error"] = error
    return read_errors


PAUSED_WAIT = 1.0  # seconds after it was written that an entry written while the replica is
# paused may turn up there anyway (copied by a trigger, a second write, a loop)


class PausedWrite(TypedDict):
    """An entry written while the replica's SQL thread was paused (paused_write())."""

    through: str  # the web server it was written through
    status: int
    stored: str  # schema.table.column on the primary ('' not found)
    primary_read: bool
    on_replica_paused: str  # where the replica had it while paused ('' nowhere)
    replica_read_paused: bool
    on_replica_later: str  # where the replica had it once resumed ('' nowhere)
    arrived_after: float  # seconds after resuming
    replica_read_later: bool


def paused_write(lab: LiveLab) -> PausedWrite:
    """An entry written through the primary's site while the replica's SQL thread is paused:
    where it is, and whether the replica's database and site have it, paused and once resumed.
    Only replication stops with that thread; a copy made any other way arrives anyway."""
    return lab.memo("paused write", lambda: _paused_write(lab))


class ReplicaPause:
    """A pause of the replica's SQL thread: SQL to run on the replica just before it starts
    again (one command with the start), and the rows it returned."""

    def __init__(self):
        self.last_look = ""
        self.seen = ""


@contextlib.contextmanager
def _replica_paused(lab: LiveLab, replica: str):
    """The replica's SQL thread stopped while inside, started again after (also when the run is
    interrupted: its cleanup is registered first); checks that read the replica wait."""
    what = f"replication paused on {replica}"
    pause = ReplicaPause()

    def resume() -> None:
        start = f"{mysql.command('START REPLICA SQL_THREAD')} && rm -f {PAUSED}"
        look = f"{mysql.command(pause.last_look)}; " if pause.last_look else ""
        pause.seen = lab.sh(replica, look + start, sudo=True, check=False)

    with lab.pausing("replica"):
        lab.on_cleanup(what, resume)
        lab.sh(replica, f"touch {PAUSED} && {mysql.command('STOP REPLICA SQL_THREAD')}", sudo=True)
        try:
            yield pause
        finally:
            lab.done_with(what)


@leaves("a replica whose SQL thread the grader paused")
def _resume_replica(topology) -> str:
    sql = mysql.CLIENT
    return f"if [ -e {PAUSED} ]; then {sql} -e 'START REPLICA SQL_THREAD' && rm -f {PAUSED}; fi"


def _paused_write(lab: LiveLab) -> PausedWrite:
    primary, replica = roles(lab)
    forget_stale_entries(lab)
    with _replica_paused(lab, replica) as pause:
        # the primary's own site, unless the check looks through the other web servers only
        through = primary if primary in lab.web_hosts() else lab.web_hosts()[0]
        post = post_entry(lab, through)
        window = Deadline(PAUSED_WAIT)
        token = post["token"]
        found = find_tokens(lab, primary, [token], forget_stale_entries(lab))
        if not found:  # perhaps in a table the write made
            found = find_tokens(lab, primary, [token])
        forget_at_the_end(lab, found, {})
        columns = columns_of(found)
        primary_read = bool(until(lambda: token in read_entries(lab, primary), 2.0))
        replica_read_paused = token in read_entries(lab, replica)

        def on_replica() -> str:
            return find_tokens(lab, replica, [token], columns).get(token, "")

        if found:  # a copy made by other means (a trigger, a second write) has its moment
            time.sleep(window.left())  # to arrive: looked for as the pause ends
            pause.last_look = mysql.search(columns, [token])
    replica_paused = mysql.parse_found(pause.seen).get(token, "")
    started = time.monotonic()
    replica_later = until(on_replica, WAIT) if found else ""
    arrived_after = round(time.monotonic() - started, 2)
    replica_read_later = bool(until(lambda: token in read_entries(lab, replica), WAIT))
    return {
        "through": through,
        "status": post["status"],
        "stored": found.get(token, ""),
        "primary_read": primary_read,
        "on_replica_paused": replica_paused or "",
        "replica_read_paused": replica_read_paused,
        "on_replica_later": replica_later or "",
        "arrived_after": arrived_after,
        "replica_read_later": replica_read_later,
    }


# -- the site's page and its static files -----------------------------------------------------
ASSET = re.compile(r"""(?:href|src)\s*=\s*["']([^"'#?]+)""", re.IGNORECASE)


def page_assets(html: str, limit: int = 2) -> list[str]:
    """Same-site static files a page references (stylesheets, scripts, images), as paths."""
    found = []
    for ref in ASSET.findall(html):
        if re.match(r"^[a-z][a-z0-9+.-]*:|^//", ref, re.IGNORECASE) or "/api/" in ref:
            continue
        path = posixpath.normpath(posixpath.join("/", ref))
        if path != "/" and path not in found:
            found.append(path)
    return found[:limit]


def served_by(reply) -> list[str]:
    """Every X-Served-By header of a reply (a header sent twice shows twice)."""
    values = reply.raw.headers.getlist("X-Served-By") if reply.raw is not None else []
    return [v.strip() for value in values for v in value.split(",")]


def names_host(value: str | None, names, domain: str = "") -> bool:
    """Whether a value (an X-Served-By header, a hostname) names the host known by names: by
    one's short name or fully qualified name (in the lab's domain or as given), in any case."""
    said = (value or "").strip().rstrip(".").lower()
    if not said:
        return False
    for name in filter(None, names):
        name = name.strip().rstrip(".").lower()
        short = name.split(".")[0]
        if said in (name, short) or (domain and said == f"{short}.{domain.lower()}"):
            return True
    return False


def served_by_host(value: str | None, hostnames: dict, web, domain: str = "") -> str | None:
    """The web server (its name in the topology) an X-Served-By value names by its hostname
    (its name in the topology when its hostname could not be read), or None when it names none
    of them, or more than one."""
    found = [h for h in web if names_host(value, (hostnames.get(h) or h,), domain)]
    return found[0] if len(found) == 1 else None


def web_hostnames(lab: LiveLab) -> dict[str, str]:
    """Each web server's own hostname (what `add_header X-Served-By $hostname` sends), for those
    that answer over SSH."""

    def hostname(host: str) -> str:
        with contextlib.suppress(CheckError):
            return lab.memo(("hostname", host), lambda: lab.sh(host, proc.HOSTNAME).strip())
        return ""

    found = lab.on_each(lab.web_hosts(), hostname)
    return {host: name for host, name in found.items() if name}


def log_marks(lab: LiveLab, host: str) -> dict[str, int] | None:
    """Where host's Nginx access logs end now; None: the site's block logs to no file."""
    # every access log, not only that block's: a probe is found in whichever log received it,
    # so a block chosen otherwise than Nginx would choose it cannot hide the probe
    dump = nginx_dump(lab, host)
    if not nginx.site_access_logs(dump, lab.site, address=lab.address(host)):
        return None
    logs = nginx.access_log_files(dump)
    files = " ".join(quote(f) for f in logs)
    out = lab.sh(
        host,
        f'for f in {files}; do printf "%s\\t" "$f"; stat -c %s -- "$f" 2>/dev/null || echo 0; done',
        sudo=True,
    )
    marks = {}
    for line in out.splitlines():
        path, _, size = line.rpartition("\t")
        if path in logs and size.isdigit():
            marks[path] = int(size)
    return marks


LOGGED_WITHIN = 2.0  # seconds: Nginx writes a request's log line once it has sent the answer


def logged_by_each(lab: LiveLab, web: list[str], marks: dict, sent: int) -> dict[str, int | None]:
    """How many of the grader's GET / requests each web server's Nginx logged after its marks
    (logged_since; None: no log to tell, or the host could not be read), read again for a
    moment while all of them tell and hold fewer than the sent requests: the answer to the
    last one may arrive before its line is written."""
    deadline = Deadline(LOGGED_WITHIN)

    def count(host: str) -> int | None:
        try:
            return logged_since(lab, host, marks.get(host))
        except CheckError:  # a host that cannot be read (down) is not this count's business
            return None

    while True:
        counts = lab.on_each(web, count)
        known = [n for n in counts.values() if n is not None]
        if len(known) < len(counts) or sum(known) >= sent or deadline.passed:
            return counts
        time.sleep(0.2)


def logged_since(lab: LiveLab, host: str, marks: dict | None, path: str = "/") -> int | None:
    """How many GET path requests of the grader's (a browser's User-Agent, from this machine or
    through a balancer) host's Nginx logged after marks (log_marks), in the log that holds the
    most (a request goes to each log of its server block once); None: no log to tell."""
    if not marks:
        return None
    fence = f"lab-log-{secrets.token_hex(8)}"
    parts = [
        f"echo {fence}; tail -c +{int(size) + 1} -- {quote(f)} 2>/dev/null | head -c 1000000"
        for f, size in marks.items()
    ]
    text = lab.sh(host, "; ".join(parts) + "; true", sudo=True)
    clients = [lab.client_address(), *(h.address for h in lab.topology.with_role("lb"))]
    if lab.topology.virtual_address:
        clients.append(lab.topology.virtual_address)
    counts = [
        nginx.count_requests(log, "GET", path, visitor.USER_AGENT, clients)
        for log in text.split(f"{fence}\n")[1:]
    ]
    known = [n for n in counts if n is not None]
    return max(known) if known else None
