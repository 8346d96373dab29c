"""Firewall: incoming traffic denied by default on every host, each port open only to whom needs it.

Graded by connecting, from this machine and from every other host, never by reading ufw's rules:
an nftables or iptables firewall passes alike. Every port probed has something listening on it
for the moment of the probe (the real service, or a listener of the grader's own), so a silent
port is a blocked port, not an idle one, provided the same source reached the target's SSH (the
control probe of each connection): a probe whose source could not reach the host at all, or whose
answer was lost, decides nothing and is reported as such. What must be closed is tried at each of
a host's addresses, over IPv4 and (from the other hosts) IPv6; default deny over TCP and UDP,
with a free port in every range of BLOCK ports, so that no hole that size or larger goes unseen.
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import asdict, dataclass
from typing import Literal, TypedDict

from checks.base import Check, CheckError, Verdict, failed, passed
from lab.core.topology import Topology
from lab.facts import ipaddr
from lab.observe.live import attempts
from lab.remote.quoting import perl, quote
from lab.remote.quoting import pid as valid_pid

MACHINE = "this machine"
BLOCK = 512  # every port range of this many ports holds one free port the grader listens on
SAMPLED = tuple(f"{low}-{min(low + BLOCK - 1, 65535)}" for low in range(1, 65536, BLOCK))
FREE = "a free port the grader listened on"
FREE_PORTS = "free ports the grader listened on"
# ports no host of the design serves, that students and distributions open: whatever answers
# there (a service, or the grader's listener) must not answer others
APPS = (3000, 5000, 8000, 8080, 8443, 8888, 9000)
UNDESIGNED = (
    (873, "rsync's port, in no host's design", "tcp"),
    (2222, "a second SSH's port, in no host's design", "tcp"),
    *((p, "a port applications are often served on, in no host's design", "tcp") for p in APPS),
)
PROBE_TIMEOUT = 2  # seconds a connection may take before it counts as dropped
LISTEN_SECONDS = 30  # the grader's listeners end by themselves after this, whatever happens
SSH, HTTP, HTTPS, DNS, MYSQL, NODE_EXPORTER = 22, 80, 443, 53, 3306, 9100
STATS, HAPROXY_EXPORTER, PROMETHEUS = 8404, 8405, 9090  # on the load balancers
CONTROL = SSH  # open to every source in the design: a probe's control (the target is reachable)
DATABASE_ROLES = ("db-primary", "db-replica")
# never drawn as a free port: a port some host of the design (or a fix) may open
DESIGNED = (SSH, DNS, HTTP, HTTPS, MYSQL, STATS, HAPROXY_EXPORTER, PROMETHEUS, NODE_EXPORTER)

# On a target: first its addresses (`ip -o addr show`), then, for each asked port, is a TCP
# service answering on the host's address (connecting from the host itself)? If not, listen
# there, on every IPv4 address and (IPv6 only) on every IPv6 one (not at a port of the design,
# DESIGNED: there IPv6 is tried only where a service listens), for the probes; one process
# of the grader's serves every listener: it accepts and closes TCP connections and sends UDP
# datagrams back. An asked port: PORT (TCP), PORT? (counts only when a service runs), LOW-HIGH
# (a free port drawn at random in that range, none of the asked or skipped ones), a `u` in
# front for UDP. Prints "ASKED STATUS PORT PID" per port, and "ASKED/6 ..." for IPv6.
# perl-base (with IO::Socket::IP) is on every Debian/Ubuntu. ReuseAddr: the connections a
# previous run's listener accepted and closed leave the port in TIME_WAIT for a minute, which
# is no service (a listening socket still refuses the bind).
LISTEN = r"""
use strict; use IO::Socket::IP; use IO::Select; use POSIX ();
$| = 1;
my ($addr, $life, $skip, @asked) = @ARGV;
my %skip = map { $_ => 1 } split /,/, $skip;
my (%served, @lines, @sockets);
for my $arg (@asked) {
    my ($port) = $arg =~ /^(\d+)\??$/ or next;
    next if exists $served{$port};
    $served{$port} = IO::Socket::IP->new(PeerHost => $addr, PeerPort => $port, Proto => "tcp",
                                         Timeout => 1) ? 1 : 0;
}
sub bound {
    my ($proto, $host, $port) = @_;
    my $s = IO::Socket::IP->new(LocalHost => $host, LocalPort => $port, Proto => $proto,
                                ReuseAddr => 1, ($proto eq "tcp" ? (Listen => 16) : ()),
                                ($host eq "::" ? (V6Only => 1) : ()));
    return ($s, $s ? "grader" : $!{EADDRINUSE} ? "service" : "failed");
}
for my $arg (@asked) {
    my ($u, $spec) = $arg =~ /^(u?)(.+)$/ or next;
    my $proto = $u ? "udp" : "tcp";
    my ($port, $s4, $status) = (0, undef, "failed");
    if (my ($low, $high) = $spec =~ /^(\d+)-(\d+)$/) {
        for (1 .. 50) {
            my $try = $low + int(rand($high - $low + 1));
            next if $skip{$try} or $served{$try};
            ($s4, $status) = bound($proto, "0.0.0.0", $try);
            if ($s4) { $port = $try; last }
        }
        $status = "failed" if !$s4;
    } else {
        ($port, my $only) = $spec =~ /^(\d+)(\??)$/ or next;
        if ($proto eq "tcp" and $served{$port}) { $status = "service" }
        elsif ($only) { $status = "none" }
        else {  # on every address; else (a service holds another one) on the host's own
            ($s4, $status) = bound($proto, "0.0.0.0", $port);
            ($s4, $status) = bound($proto, $addr, $port) if !$s4 and $status eq "service";
        }
    }
    push @lines, [$arg, $status, $port];
    push @sockets, [$proto, $s4] if $s4;
    next if !$port or $status eq "none";
    my ($s6, $status6) = bound($proto, "::", $port);
    if ($s6 and $skip{$port} and $spec !~ /-/) {  # a design's port: only its service is tried
        close $s6; ($s6, $status6) = (undef, "none");
    }
    push @lines, ["$arg/6", $status6 eq "failed" ? "none" : $status6, $port];
    push @sockets, [$proto, $s6] if $s6;
}
my $pid = @sockets ? fork : 0;
if (!defined $pid or $pid or !@sockets) {
    print join(" ", @$_, $_->[1] eq "grader" && $pid ? $pid : 0), "\n" for @lines;
    exit 0;
}
POSIX::setsid();
open STDIN, "<", "/dev/null"; open STDOUT, ">", "/dev/null"; open STDERR, ">", "/dev/null";
alarm $life;
my $select = IO::Select->new(map { $_->[1] } @sockets);
my %udp = map { ($_->[1] => 1) } grep { $_->[0] eq "udp" } @sockets;
while (1) {
    for my $s ($select->can_read) {
        if ($udp{$s}) { my $from = $s->recv(my $data, 512); $s->send($data, 0, $from) if $from }
        else { my $c = $s->accept; close $c if $c }
    }
}
"""
ADDRESSES_END = "-- addresses end --"
# The listeners run in a transient scope of a random name (systemd-run --scope), not in the
# cgroup of the SSH session that starts them: a ruleset keyed on the cgroup of the socket a
# connection is for cannot tell the grader's listeners apart from a service's.
OWN_SCOPE = (
    "if [ -d /run/systemd/system ] && command -v systemd-run >/dev/null; then "
    'set -- systemd-run --scope --quiet --collect --; else set --; fi; "$@"'
)

# On a source: every PROTO/PORT/ADDRESS at once (TCP: a connection; UDP: a datagram, open when
# one comes back), for at most WAIT seconds; prints "PROTO/PORT/ADDRESS STATE" for each.
PROBE = r"""
use strict; use Socket qw(:addrinfo SOCK_STREAM SOCK_DGRAM SOL_SOCKET SO_ERROR);
use IO::Select; use Fcntl qw(F_GETFL F_SETFL O_NONBLOCK); use Errno ();
my ($wait, @targets) = @ARGV;
my (%state, %of);
my ($writing, $reading) = (IO::Select->new, IO::Select->new);
sub word { $_[0] == Errno::ECONNREFUSED ? "refused"
          : ($_[0] == Errno::EPERM or $_[0] == Errno::EACCES) ? "unsent" : "unreachable" }
for my $t (@targets) {
    my ($proto, $port, $addr) = split m{/}, $t, 3;
    my ($err, $ai) = getaddrinfo($addr, $port, {flags => AI_NUMERICHOST,
        socktype => $proto eq "udp" ? SOCK_DGRAM : SOCK_STREAM});
    my $s;
    if ($err or !$ai or !socket($s, $ai->{family}, $ai->{socktype}, $ai->{protocol})) {
        $state{$t} = "unknown"; next;  # not tried: no address, or no socket (out of files)
    }
    fcntl($s, F_SETFL, fcntl($s, F_GETFL, 0) | O_NONBLOCK);
    $of{fileno $s} = $t;
    if (connect($s, $ai->{addr})) {
        if ($proto eq "tcp") { $state{$t} = "open" }
        elsif (send($s, join("", map { chr(int(rand(256))) } 1 .. 8 + int(rand(56))), 0)) {
            $reading->add($s);
        }
        else { $state{$t} = word($! + 0) }
    } elsif ($!{EINPROGRESS}) { $writing->add($s) }
    else { $state{$t} = word($! + 0) }
}
my $deadline = time + $wait;
while (($writing->count or $reading->count) and (my $left = $deadline - time) > 0) {
    my ($r, $w) = IO::Select->select($reading, $writing, undef, $left);
    for my $s (@{$w || []}) {
        my $e = unpack("i", getsockopt($s, SOL_SOCKET, SO_ERROR));
        $state{$of{fileno $s}} = $e ? word($e) : "open"; $writing->remove($s);
    }
    for my $s (@{$r || []}) {
        $state{$of{fileno $s}} = defined(recv($s, my $data, 64, 0)) ? "open" : word($! + 0);
        $reading->remove($s);
    }
}
print "$_ ", $state{$_} // "silent", "\n" for @targets;
"""


Kind = Literal["deny", "public", "internal", "closed"]  # which firewall check grades a try
Proto = Literal["tcp", "udp"]
# what a try gave: a TCP connection (open, refused, silent, unreachable), a datagram answered
# (open), refused, or not (silent), a DNS question over UDP (open, no-answer), one the source's
# own firewall kept from going out (unsent: EPERM, EACCES), or nothing known
# (unknown: the probe's answer was lost, or none was made)
State = Literal["open", "refused", "silent", "unreachable", "unsent", "no-answer", "unknown"]
# what answered on the port for the try: a service, the grader's listener, nothing (a port
# graded only while its service runs, or IPv6 the host does not have), or the grader could not
# listen there
ListenerStatus = Literal["service", "grader", "none", "failed"]
Target = tuple[str, str, int]  # (proto, address, port) of a try


class Listening(TypedDict):
    """What answers on one asked port of a host (LISTEN's line)."""

    status: ListenerStatus
    port: int
    pid: str  # the grader's listener's, "0" for none


class Connection(TypedDict):
    """One connection tried (Expect's fields), what listened there and what the try gave."""

    check: Kind
    source: str  # a host name, or MACHINE
    target: str
    port: int  # the port tried (the one drawn for a free port)
    open: bool
    why: str
    proto: Proto
    if_running: bool
    address: str  # the address tried: the target's lab address, another of its own, or IPv6
    family: int  # 4 or 6
    control: State  # what the target's SSH, at its lab address, gave the same source
    listener: ListenerStatus
    state: State


@dataclass(frozen=True)
class Expect:
    """One connection the design decides: from source to target's port, open or closed."""

    check: Kind  # which firewall check grades it
    source: str  # a host name, or MACHINE
    target: str
    port: int | str  # a port, or a range ("LOW-HIGH") a free port is drawn from
    open: bool
    why: str
    proto: Proto = "tcp"
    if_running: bool = False  # graded only when a service of the target listens there


def expectations(topology: Topology) -> list[Expect]:
    """Every connection the firewall checks try at each host's lab address, decided by the
    hosts' roles (observe_all also tries the closed ones at the hosts' other addresses)."""
    hosts = topology.hosts
    found: list[Expect] = []
    for host in hosts:
        others = [h for h in hosts if h.name != host.name]
        balancers = [h.name for h in others if "lb" in h.roles]
        rest = [h.name for h in others if "lb" not in h.roles]
        sources = [MACHINE, *(h.name for h in others)]
        for source in sources:
            for proto in ("tcp", "udp"):
                found += [Expect("deny", source, host.name, r, False, FREE, proto) for r in SAMPLED]
            found += [
                Expect("deny", source, host.name, port, False, why, proto)
                for port, why, proto in UNDESIGNED
            ]
        found.append(Expect("public", MACHINE, host.name, SSH, True, "SSH"))
        if "lb" in host.roles:
            found.append(Expect("public", MACHINE, host.name, HTTP, True, "HTTP"))
            found.append(Expect("public", MACHINE, host.name, HTTPS, True, "HTTPS"))
            # the balancer's own pages: reached through SSH, never from the user's side (8405
            # may stay open to the other balancers, whose Prometheus may scrape it: not graded)
            found += [
                Expect("closed", MACHINE, host.name, port, False, why)
                for port, why in (
                    (STATS, "HAProxy stats"),
                    (HAPROXY_EXPORTER, "HAProxy exporter"),
                    (PROMETHEUS, "Prometheus"),
                )
            ]
        if "dns" in host.roles:
            found.append(Expect("public", MACHINE, host.name, DNS, True, "DNS"))
            found.append(Expect("public", MACHINE, host.name, DNS, True, "DNS", proto="udp"))
        if "web" in host.roles and "lb" not in host.roles:
            found += [Expect("internal", b, host.name, HTTP, True, "Nginx") for b in balancers]
            found += [
                Expect("closed", s, host.name, HTTP, False, "Nginx") for s in [MACHINE, *rest]
            ]
        if set(DATABASE_ROLES) & set(host.roles):
            # the replica connects to the primary (replication, and its host's writes); the
            # primary never connects to the replica: that direction is not graded either way
            peers = [h.name for h in others if set(DATABASE_ROLES) & set(h.roles)]
            if "db-primary" in host.roles:
                replicas = [h.name for h in others if "db-replica" in h.roles]
                found += [
                    Expect("internal", r, host.name, MYSQL, True, "replication") for r in replicas
                ]
            outsiders = [MACHINE] + [h.name for h in others if h.name not in peers]
            found += [Expect("closed", s, host.name, MYSQL, False, "MariaDB") for s in outsiders]
        found += [
            Expect("internal", b, host.name, NODE_EXPORTER, True, "node exporter", if_running=True)
            for b in balancers
        ]
        found.append(Expect("closed", MACHINE, host.name, NODE_EXPORTER, False, "node exporter"))
    return found


# -- observing ------------------------------------------------------------------------------------
def parse_listen(output: str) -> dict[str, Listening]:
    """LISTEN's lines: asked port → {status, port, pid}."""
    found: dict[str, Listening] = {}
    for line in output.splitlines():
        fields = line.split()
        if len(fields) == 4 and fields[2].isdigit():
            found[fields[0]] = {"status": fields[1], "port": int(fields[2]), "pid": fields[3]}
    return found


def parse_probes(output: str) -> dict[Target, State]:
    """PROBE's lines: (proto, address, port) → state."""
    found: dict[Target, State] = {}
    for line in output.splitlines():
        target, _, state = line.partition(" ")
        proto, _, rest = target.partition("/")
        port, _, address = rest.partition("/")
        if proto in ("tcp", "udp") and port.isdigit() and address and state:
            found[(proto, address, int(port))] = state.strip()
    return found


def asked(expect: Expect) -> str:
    """How LISTEN is asked for expect's port."""
    udp = "u" if expect.proto == "udp" else ""
    return f"{udp}{expect.port}{'?' if expect.if_running else ''}"


def listen(lab, host: str, ports: list[str]) -> tuple[list[ipaddr.Address], dict[str, Listening]]:
    """host's addresses, and what answers on each asked port of host; the grader's listeners
    end at cleanup."""
    command = (
        f"{ipaddr.ADDRESSES}; echo {quote(ADDRESSES_END)}; ulimit -n 16384 2>/dev/null; "
        f"{OWN_SCOPE} {perl(LISTEN)} {quote(lab.address(host))} {LISTEN_SECONDS} "
        f"{','.join(map(str, DESIGNED))} " + " ".join(quote(p) for p in ports)
    )
    addresses, _, listened = lab.sh(host, command, sudo=True, check=False).partition(ADDRESSES_END)
    found = parse_listen(listened)
    pids = {p["pid"] for p in found.values() if p["status"] == "grader" and valid_pid(p["pid"])}
    if pids:
        stop = f"kill {' '.join(sorted(pids))} 2>/dev/null; true"
        lab.on_cleanup("firewall listeners", lambda: lab.sh(host, stop, sudo=True, check=False))
    return ipaddr.parse(addresses), found


def probe_from(lab, source: str, targets: list[Target]) -> dict[Target, State]:
    """TCP connections and UDP datagrams from source (a host or this machine) to each target
    at once."""
    if not targets:
        return {}
    if source == MACHINE:
        hidden = sorted({a for _, a, _ in targets if lab.tunnelled(a)})
        if hidden:  # the class file says so: nothing may be sent there from here
            raise CheckError(
                f"this machine cannot reach {', '.join(hidden)} (the servers are reached over "
                "SSH at other addresses), so their firewall cannot be probed from outside"
            )
        return attempts(controls_last(targets), PROBE_TIMEOUT)
    ordered = controls_last(targets)
    tries = " ".join(quote(f"{proto}/{port}/{address}") for proto, address, port in ordered)
    script = f"ulimit -n 16384 2>/dev/null; {perl(PROBE)} {PROBE_TIMEOUT} {tries}"
    return parse_probes(lab.sh(source, script, check=False))


def controls_last(targets: list[Target]) -> list[Target]:
    """targets in random order, the SSH controls last: no ruleset can count on which port a
    probe tries first, nor open up after a control (a port knock)."""
    rest = [t for t in targets if t[2] != CONTROL]
    random.shuffle(rest)
    return rest + [t for t in targets if t[2] == CONTROL]


def dns_answers(lab, host: str) -> State:
    """Whether host answers a DNS question over UDP from this machine: open or no-answer."""
    try:
        lab.dns_query(lab.address(host), lab.topology.domain, "SOA")
    except CheckError:
        return "no-answer"
    return "open"


def widened(
    expects: list[Expect],
    lab_address: dict[str, str],
    own: dict[str, list[ipaddr.Address]],
    subnet: ipaddress.IPv4Network,
    hidden: frozenset[str] = frozenset(),
):
    """(expect, address, family) for each try: every connection at the target's lab address
    (''), and each closed one also at the target's other IPv4 addresses on the lab's network
    (not from this machine to hidden hosts, which it must not contact) and, from the other
    hosts (this machine has no IPv6 on the lab's network), at its IPv6 ones
    (ipaddr.ipv6_addresses). Never at an address the source holds itself."""
    for e in expects:
        yield e, "", 4
        if e.open or e.if_running:
            continue
        held = {a.address for a in own.get(e.source, [])}
        extra = [
            a.address
            for a in own[e.target]
            if a.family == "4"
            and a.address not in held | {lab_address[e.target]}
            and ipaddress.ip_address(a.address) in subnet
        ]
        if e.source != MACHINE or e.target not in hidden:
            yield from ((e, address, 4) for address in extra)
        if e.source != MACHINE:
            scope = ipaddr.interface_of(own[e.source], lab_address[e.source]) or "eth0"
            for address in ipaddr.ipv6_addresses(own[e.target], lab_address[e.target]):
                if address not in held:
                    yield e, f"{address}%{scope}" if address.startswith("fe80:") else address, 6


def answered_dns(e: Expect) -> bool:
    """Whether e is tried as a DNS question (public DNS over UDP), not as a datagram echoed."""
    return e.proto == "udp" and e.port == DNS


def _listener(listened: dict[str, Listening], e: Expect, family: int) -> Listening:
    """What listened for e's try over family (IPv6: nothing, unless the grader said)."""
    if answered_dns(e):
        return {"status": "service", "port": DNS, "pid": "0"}
    missing: Listening = {"status": "none" if family == 6 else "failed", "port": 0, "pid": "0"}
    found = listened.get(asked(e) + ("/6" if family == 6 else ""), missing)
    return found if found["port"] or not isinstance(e.port, int) else {**found, "port": e.port}


def observe_all(lab) -> list[Connection]:
    """Every expected connection tried, with what listened on the port and what the try gave."""
    expects = expectations(lab.topology)
    names = lab.topology.names
    ports = {h: sorted({asked(e) for e in expects if e.target == h}) for h in names}
    lab_address = {h: lab.address(h) for h in names}
    hidden = frozenset(h for h in names if lab.tunnelled(lab_address[h]))
    try:
        listened = lab.on_each(names, lambda h: listen(lab, h, ports[h]))
        own = {h: addresses for h, (addresses, _) in listened.items()}
        tries = [
            (e, address, family, _listener(listened[e.target][1], e, family))
            for e, address, family in widened(
                expects, lab_address, own, lab.topology.subnet, hidden
            )
        ]
        targets: dict[str, set[Target]] = {}
        for e, address, _, seen in tries:
            batch = targets.setdefault(e.source, set())
            batch.add(("tcp", lab_address[e.target], CONTROL))
            if not answered_dns(e) and seen["status"] != "none" and seen["port"]:
                batch.add((e.proto, address or lab_address[e.target], seen["port"]))
        states = lab.on_each(list(targets), lambda s: probe_from(lab, s, sorted(targets[s])))
        dns = {e.target: dns_answers(lab, e.target) for e in expects if answered_dns(e)}
    finally:
        lab.done_with("firewall listeners")
    rows: list[Connection] = []
    for e, address, family, seen in tries:
        tried = states.get(e.source, {})
        reached = (e.proto, address or lab_address[e.target], seen["port"])
        state = dns[e.target] if answered_dns(e) else tried.get(reached)
        row = {
            **asdict(e),
            "port": seen["port"],
            "address": address,
            "family": family,
            "control": tried.get(("tcp", lab_address[e.target], CONTROL), "unknown"),
            "listener": seen["status"],
            "state": state or "unknown",
        }
        rows.append(row)
    return rows


# -- judging --------------------------------------------------------------------------------------
STATE_WORDS = {
    "open": "answers",
    "refused": "refused",
    "silent": f"dropped (no answer within {PROBE_TIMEOUT} s)",
    "unreachable": "rejected",
    "unsent": "not sent: the source's own firewall keeps it from going out (the design lets "
    "outgoing connections out)",
    "no-answer": "no DNS answer (blocked, or no DNS server runs there)",
    "unknown": "not tried (the probe's answer was lost)",
}
BLOCKED = ("refused", "silent", "unreachable")
SHOWN_PORTS = 5  # a line names this many ports of a kind, then how many more
LISTENERS = {"grader": " (the grader listened there)", "service": " (a service listens there)"}
CONTROL_WORDS = {**STATE_WORDS, "unknown": "not tried"}


def at(row: Connection) -> str:
    """Where a row tried beyond its port, in words: '' at the host's lab address."""
    if row["family"] == 6:
        return " over IPv6"
    return f" at {row['address']}" if row["address"] else ""


def where(row: Connection, ports: list[int] | None = None) -> str:
    """The port a row tried (or ports of the same kind), in words, without the source."""
    ports = ports or [row["port"]]
    shown = ", ".join(map(str, ports[:SHOWN_PORTS]))
    more = f" and {len(ports) - SHOWN_PORTS} more" if len(ports) > SHOWN_PORTS else ""
    why = FREE_PORTS if len(ports) > 1 and row["why"] == FREE else row["why"]
    proto = "/udp" if row["proto"] == "udp" else ""
    return f"{row['target']}:{shown}{more}{proto}{at(row)} ({why})"


def finding(row: Connection) -> str | None:
    """How one connection differs from the design, in words without its source; None when it
    is as designed."""
    state, words = row["state"], STATE_WORDS.get(row["state"], row["state"])
    if row["listener"] == "failed":
        return "the grader could not listen there to try it"
    if state == "unknown" or (row["open"] and state != "open"):
        return f"{words}{LISTENERS.get(row['listener'], '')}"
    if not row["open"] and state not in BLOCKED:
        said = "open" if state == "open" else words
        return f"{said}{' (a service listens there)' if row['listener'] == 'service' else ''}"
    if not row["open"] and state != "refused" and row.get("control") != "open":
        return (
            f"{words}, but {row['target']}:{CONTROL} (SSH, open to every host in the design) "
            f"did not answer either ({CONTROL_WORDS.get(row.get('control'), 'not tried')}): "
            "whether it is blocked is unknown"
        )
    return None


def problems(rows: list[Connection], everything: list[Connection] | None = None) -> list[str]:
    """What differs from the design in rows, one line per finding with every source it
    concerns (free ports the grader listened on that were found alike from the same sources:
    one line for them all): blocked where it must be open, open where it must not be, and then
    who may (from everything observed, rows when not given)."""
    found: dict[tuple, dict[int, list[str]]] = {}  # (kind of port, words, who) → port → sources
    example: dict[tuple, Connection] = {}
    for row in rows:
        words = None if row["listener"] == "none" else finding(row)
        if not words:  # a port graded only while its service runs is left out
            continue
        who = "" if row["open"] else admitted(everything or rows, row)
        free = row["why"] == FREE
        kind = (row["target"], at(row), row["proto"], row["why"], 0 if free else row["port"])
        key = (kind, words, who)
        found.setdefault(key, {}).setdefault(row["port"], []).append(row["source"])
        example.setdefault(key, row)
    lines = []
    for key, sources_of in found.items():
        _, words, who = key
        ports_of: dict[tuple[str, ...], list[int]] = {}
        for port, sources in sources_of.items():
            ports_of.setdefault(tuple(dict.fromkeys(sources)), []).append(port)
        for sources, ports in ports_of.items():
            said = who.replace(" it ", " them ") if len(ports) > 1 else who
            lines.append(f"{where(example[key], ports)} from {', '.join(sources)}: {words}{said}")
    return lines


def admitted(rows: list[Connection], closed: Connection) -> str:
    """Who the design lets reach a closed row's port, as the end of the line that found it
    answering others ("" when the rows do not say)."""
    port = (closed["target"], closed["port"], closed["proto"])
    sources = [
        r["source"] for r in rows if r["open"] and (r["target"], r["port"], r["proto"]) == port
    ]
    if sources:
        return f"; the design opens it to {', '.join(dict.fromkeys(sources))} only"
    return "; the design opens it to no one" if closed["check"] == "deny" else ""


def blocked_by_a_firewall(row: Connection) -> bool:
    """Whether a row shows a ruleset at work: something listened, yet the connection was
    refused, or dropped while the same source reached the host's SSH."""
    return (
        row["listener"] in ("grader", "service")
        and row["state"] in BLOCKED
        and (row["state"] == "refused" or row.get("control") == "open")
    )


def unshaped(rows: list[Connection], hosts) -> list[str]:
    """Hosts (among hosts) on which nothing the grader tried was blocked: what answers there
    answers because nothing is in its way, not because a firewall lets it through."""
    shaped = {
        r["target"]
        for r in rows
        if not r["open"] and not r["address"] and r["family"] == 4 and blocked_by_a_firewall(r)
    }
    return [h for h in dict.fromkeys(hosts) if h not in shaped]


def judged(
    rows: list[Connection],
    summary: str,
    hint: str = "",
    also=(),
    everything: list[Connection] | None = None,
) -> Verdict:
    """Failed with every problem (one a line), or passed with summary and how many connections
    were tried."""
    found = problems(rows, everything) + list(also)
    if found:
        return failed("\n".join(found), hint)
    tried = [r for r in rows if r["listener"] != "none"]
    return passed(f"{summary} ({len(tried)} connections tried)")


class _Firewall:
    """What every firewall check shares: one observation of every connection, made once."""

    section = "firewall"
    points = 5
    needs = ("servers.reachable",)
    exclusive = True  # the grader's listeners must not show up in other checks' observations
    kind = ""

    def observe(self, lab) -> list[Connection]:
        return lab.memo("firewall", lambda: observe_all(lab))

    def mine(self, rows: list[Connection]) -> list[Connection]:
        """The rows this check grades (the observation holds every connection tried)."""
        return [r for r in rows if r["check"] == self.kind]

    def no_firewall(self, rows: list[Connection]) -> list[str]:
        """An open port proves a firewall right only where a firewall blocks something: the
        hosts this check grades on which nothing the grader tried was blocked, in words."""
        hosts = unshaped(rows, [r["target"] for r in self.mine(rows)])
        return [
            f"{h}: nothing the grader tried was blocked (ports the design closes answered too): "
            "no firewall decides what answers there"
            for h in hosts
        ]


class DefaultDeny(_Firewall, Check):
    id = "firewall.default-deny"
    design = "firewall"
    kind = "deny"
    title = "Incoming connections are denied by default on every host"
    requirement = (
        "Issue of the design: no firewall. On every host, incoming traffic is denied: free ports "
        "the grader listens on (one in every 512, over TCP and UDP) and the ports no host of the "
        "design serves (873, 2222, ports applications are often served on such as 8080), "
        "whatever listens there, answer neither this machine nor any other host, at any of the "
        "host's addresses, over IPv4 or IPv6."
    )
    hint = (
        "Turn a firewall on on every host with incoming traffic denied by default: "
        "`sudo ufw default deny incoming`, allow SSH, then `sudo ufw --force enable`."
    )

    def judge(self, rows: list[Connection]):
        rows = self.mine(rows)
        hosts = sorted({r["target"] for r in rows})
        return judged(
            rows,
            f"free ports the grader listened on (one in every {BLOCK}, TCP and UDP) and ports no "
            f"host of the design serves (873, 2222, 8080, ...) "
            f"are closed on {', '.join(hosts)} to every other host and this machine",
        )


class PublicOpen(_Firewall, Check):
    id = "firewall.public"
    design = "firewall-public"
    kind = "public"
    title = "SSH on every host, and HTTP, HTTPS and DNS on the load balancer are open"
    requirement = (
        "The load balancer admits 22, 80, 443 and 53; every host admits SSH (22), through a "
        "firewall that blocks what the design closes (with no firewall, nothing is admitted: "
        "everything merely answers)."
    )
    hint = (
        "Allow what the outside needs before denying the rest: `sudo ufw allow 22/tcp` everywhere; "
        "on the load balancer also `sudo ufw allow 80/tcp`, `443/tcp` and `53`."
    )

    def judge(self, rows: list[Connection]):
        mine = self.mine(rows)
        summary = "reachable from this machine, through a firewall: " + _listing(mine)
        absent = self.no_firewall(rows)
        return judged(mine, summary, DefaultDeny.hint if absent else "", also=absent)


class InternalOpen(_Firewall, Check):
    id = "firewall.internal"
    design = "firewall-internal"
    kind = "internal"
    title = "The servers still reach what they need: Nginx from the balancer, replication"
    requirement = (
        "The web servers admit 80 from the load balancer; the primary database admits 3306 "
        "from the replica (replication, and web-02's writes; the other direction is not "
        "graded); node exporter (9100) admits the load balancer; each through a firewall that "
        "blocks what the design closes."
    )
    hint = (
        "On each web server allow the load balancer to port 80 "
        "(`sudo ufw allow from LB to any port 80 proto tcp`), and on the primary the replica "
        "to 3306."
    )

    def judge(self, rows: list[Connection]):
        rows, everything = self.mine(rows), rows
        absent = self.no_firewall(everything)
        blocked = any(f":{MYSQL} " in problem for problem in problems(rows))
        hint = (
            "Replication is blocked: the replica connects to the primary's port 3306. "
            "Allow it: `sudo ufw allow from REPLICA to any port 3306 proto tcp` on the primary."
            if blocked
            else (DefaultDeny.hint if absent else "")
        )
        summary = "open to the hosts that need them, through a firewall: " + _listing(rows)
        return judged(rows, summary, hint, also=absent)


class ClosedToOthers(_Firewall, Check):
    id = "firewall.closed"
    design = "firewall-closed"
    kind = "closed"
    title = "Nginx, MariaDB, node exporter and the balancer's own pages are closed to others"
    requirement = (
        "The web servers admit 80 from the load balancer only and 3306 from the database "
        "hosts only; node exporter (9100) does not answer this machine; on the load balancer "
        "HAProxy's stats page (8404), its exporter (8405) and Prometheus (9090) do not answer "
        "this machine (reach them through SSH; 8405 may stay open to the other balancers)."
    )
    hint = (
        "Allow the internal ports only from the hosts that need them "
        "(`ufw allow from ADDRESS to any port N proto tcp`), never from anywhere; open no "
        "port of the load balancer beyond 22, 80, 443 and 53 to everyone."
    )

    def judge(self, rows: list[Connection]):
        mine = self.mine(rows)
        return judged(mine, "closed to others: " + _listing(mine), everything=rows)


def _listing(rows: list[Connection]) -> str:
    """target:port per distinct port tried, in order (the evidence of a pass)."""
    seen: list[str] = []
    for row in rows:
        if row["listener"] == "none":
            continue
        item = f"{row['target']}:{row['port']}{'/udp' if row['proto'] == 'udp' else ''}"
        if item not in seen:
            seen.append(item)
    return ", ".join(seen)
