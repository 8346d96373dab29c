"""Firewall: incoming traffic denied by default on every host, each port open only to whom needs it.

Graded by connecting, from this machine and from the hosts, never by reading ufw's rules: an
nftables or iptables firewall passes alike. Every port probed has something listening on it for
the moment of the probe (the real service, or a listener of the grader's own), so a silent port
is a blocked port, not an idle one, provided the same source reached the target's SSH (the
control probe of each connection): a probe whose source could not reach the host at all, or whose
answer was lost, decides nothing and is reported as such.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Literal, TypedDict

from checks.base import Check, CheckError, Verdict, failed, passed
from lab.core.topology import Topology
from lab.observe.live import connect_state
from lab.remote.quoting import pid as valid_pid
from lab.remote.quoting import quote

MACHINE = "this machine"
UNUSED = 0  # stands for a free (ephemeral, >= 32768) port the grader listens on (default deny)
FREE = "a free port the grader listened on"
UNUSED_LOW = -1  # stands for a free port in LOW_RANGE the grader listens on (default deny)
LOW_RANGE = (1024, 32767)
FREE_LOW = "a free port below 32768 the grader listened on"
UNUSED_WELL_KNOWN = -2  # stands for a free port below 1024 the grader listens on (default deny)
WELL_KNOWN_RANGE = (1, 1023)
FREE_WELL_KNOWN = "a free port below 1024 the grader listened on"
# ports no host of the design serves, that students and distributions open: whatever answers
# there (a service, or the grader's listener) must not answer others
UNDESIGNED = (
    (873, "rsync's port, in no host's design"),
    (2222, "a second SSH's port, in no host's design"),
)
SAMPLE = ((UNUSED, FREE), (UNUSED_LOW, FREE_LOW), (UNUSED_WELL_KNOWN, FREE_WELL_KNOWN), *UNDESIGNED)
RANGES = {UNUSED_LOW: LOW_RANGE, UNUSED_WELL_KNOWN: WELL_KNOWN_RANGE}
PROBE_TIMEOUT = 2  # seconds a connection may take before it counts as dropped
LISTEN_SECONDS = 30  # the grader's listeners end by themselves after this, whatever happens
SSH, HTTP, HTTPS, DNS, MYSQL, NODE_EXPORTER = 22, 80, 443, 53, 3306, 9100
STATS, HAPROXY_EXPORTER, PROMETHEUS = 8404, 8405, 9090  # on the load balancers
CONTROL = SSH  # open to every source in the design: a probe's control (the target is reachable)
DATABASE_ROLES = ("db-primary", "db-replica")

# On a target: for each port, is a service answering on the host's address (connecting from
# the host itself)? If not, listen there for the probe (a port marked "?" only counts when a
# service runs; LOW-HIGH: a free port drawn at random in that range, none of the asked ones).
# Prints "ASKED STATUS PORT PID" per port. perl-base is on every Debian/Ubuntu. ReuseAddr: the
# connections a previous run's listener accepted and closed leave the port in TIME_WAIT for a
# minute, which is no service (a listening socket still refuses the bind).
LISTEN = r"""
use strict; use IO::Socket::INET; use POSIX ();
$| = 1;
my ($addr, $life, @asked) = @ARGV;
my %served;
for my $arg (@asked) {
    my ($port) = $arg =~ /^(\d+)\??$/ or next;
    next if !$port or exists $served{$port};
    $served{$port} = IO::Socket::INET->new(PeerAddr => $addr, PeerPort => $port,
                                           Proto => "tcp", Timeout => 1) ? 1 : 0;
}
sub bound { IO::Socket::INET->new(Listen => 16, LocalAddr => $addr, LocalPort => $_[0],
                                  Proto => "tcp", ReuseAddr => 1) }
for my $arg (@asked) {
    my $s;
    if (my ($low, $high) = $arg =~ /^(\d+)-(\d+)$/) {
        for (1 .. 50) {
            my $port = $low + int(rand($high - $low + 1));
            next if exists $served{$port};
            last if $s = bound($port);
        }
        if (!$s) { print "$arg failed 0 0\n"; next }
    } else {
        my ($port, $only) = $arg =~ /^(\d+)(\??)$/ or next;
        if ($served{$port}) { print "$arg service $port 0\n"; next }
        if ($only) { print "$arg none $port 0\n"; next }
        $s = bound($port);
        if (!$s) { print "$arg ", ($!{EADDRINUSE} ? "service" : "failed"), " $port 0\n"; next }
    }
    my $pid = fork;
    if (!defined $pid) { print "$arg failed ", $s->sockport, " 0\n"; next }
    if ($pid) { print "$arg grader ", $s->sockport, " $pid\n"; close $s; next }
    POSIX::setsid();
    open STDIN, "<", "/dev/null"; open STDOUT, ">", "/dev/null"; open STDERR, ">", "/dev/null";
    alarm $life;
    while (my $c = $s->accept) { close $c }
    exit 0;
}
"""

# On a source: connect to each ADDRESS PORT pair at once; prints "ADDRESS PORT EXIT MESSAGE".
PROBE = (
    'probe() { out=$(timeout {seconds} bash -c "exec 3<>/dev/tcp/$1/$2" 2>&1); rc=$?; '
    'echo "$1 $2 $rc $(printf %s "$out" | tail -n 1)"; }; '
)


Kind = Literal["deny", "public", "internal", "closed"]  # which firewall check grades a try
Proto = Literal["tcp", "udp"]
# what a try gave: a TCP connection (open, refused, silent, unreachable), a DNS question over UDP
# (open, no-answer), or nothing known (unknown: the probe's answer was lost, or none was made)
State = Literal["open", "refused", "silent", "unreachable", "no-answer", "unknown"]
# what answered on the port for the try: a service, the grader's listener, nothing (a port
# graded only while its service runs), or the grader could not listen there
ListenerStatus = Literal["service", "grader", "none", "failed"]


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
    control: State  # what the target's SSH gave the same source
    listener: ListenerStatus
    state: State


@dataclass(frozen=True)
class Expect:
    """One connection the design decides: from source to target's port, open or closed."""

    check: Kind  # which firewall check grades it
    source: str  # a host name, or MACHINE
    target: str
    port: int
    open: bool
    why: str
    proto: Proto = "tcp"
    if_running: bool = False  # graded only when a service of the target listens there


def expectations(topology: Topology) -> list[Expect]:
    """Every connection the firewall checks try, decided by the hosts' roles."""
    hosts = topology.hosts
    found: list[Expect] = []
    for i, host in enumerate(hosts):
        others = [h for h in hosts if h.name != host.name]
        balancers = [h.name for h in others if "lb" in h.roles]
        rest = [h.name for h in others if "lb" not in h.roles]
        sources = [MACHINE, hosts[(i + 1) % len(hosts)].name] if others else [MACHINE]
        for unused, why in SAMPLE:
            found += [Expect("deny", s, host.name, unused, False, why) for s in sources]
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


def probe_state(exit_code: str, message: str) -> State:
    """A connection attempt from a host as a word: open, refused, silent or unreachable."""
    if exit_code == "0":
        return "open"
    if exit_code == "124":
        return "silent"
    if "refused" in message.lower():
        return "refused"
    return "unreachable"


def parse_probes(output: str) -> dict[tuple[str, int], State]:
    """PROBE's lines: (address, port) → state."""
    found: dict[tuple[str, int], State] = {}
    for line in output.splitlines():
        fields = line.split(maxsplit=3)
        if len(fields) >= 3 and fields[1].isdigit():
            found[(fields[0], int(fields[1]))] = probe_state(fields[2], " ".join(fields[3:]))
    return found


def _asked(expect: Expect) -> str:
    if expect.port in RANGES:
        return "{}-{}".format(*RANGES[expect.port])
    return f"{expect.port}{'?' if expect.if_running else ''}"


def listen(lab, host: str, asked: list[str]) -> dict[str, Listening]:
    """What answers on each asked port of host; the grader's listeners end at cleanup."""
    command = f"perl -e {quote(LISTEN)} {quote(lab.address(host))} {LISTEN_SECONDS} " + " ".join(
        quote(a) for a in asked
    )
    found = parse_listen(lab.sh(host, command, sudo=True, check=False))
    pids = [p["pid"] for p in found.values() if p["status"] == "grader" and valid_pid(p["pid"])]
    if pids:
        stop = f"kill {' '.join(pids)} 2>/dev/null; true"
        lab.on_cleanup("firewall listeners", lambda: lab.sh(host, stop, sudo=True, check=False))
    return found


def probe_from(lab, source: str, targets: list[tuple[str, int]]) -> dict[tuple[str, int], State]:
    """TCP connections from source (a host or this machine) to each (address, port) at once."""
    if not targets:
        return {}
    if source == MACHINE:
        hidden = sorted({a for a, _ in targets if lab.tunnelled(a)})
        if hidden:  # the class file says so: nothing may be sent there from here
            raise CheckError(
                f"this machine cannot reach {', '.join(hidden)} (the servers are reached over "
                "SSH at other addresses), so their firewall cannot be probed from outside"
            )
        with ThreadPoolExecutor(max_workers=len(targets)) as pool:
            states = pool.map(lambda t: connect_state(t[0], t[1], PROBE_TIMEOUT), targets)
            return dict(zip(targets, states, strict=True))
    script = PROBE.replace("{seconds}", str(PROBE_TIMEOUT)) + " ".join(
        f"probe {quote(a)} {int(p)} &" for a, p in targets
    )
    return parse_probes(lab.sh(source, script + " wait", check=False))


def dns_answers(lab, host: str) -> State:
    """Whether host answers a DNS question over UDP from this machine: open or no-answer."""
    try:
        lab.dns_query(lab.address(host), lab.topology.domain, "SOA")
    except CheckError:
        return "no-answer"
    return "open"


def observe_all(lab) -> list[Connection]:
    """Every expected connection tried, with what listened on the port and what the try gave."""
    expects = expectations(lab.topology)
    tcp = [e for e in expects if e.proto == "tcp"]
    asked = {h: sorted({_asked(e) for e in tcp if e.target == h}) for h in lab.topology.names}
    try:
        listening = lab.on_each(list(asked), lambda h: listen(lab, h, asked[h]))
        targets: dict[str, set[tuple[str, int]]] = {}
        for e in tcp:
            port = listening[e.target].get(_asked(e), {}).get("port", e.port)
            batch = targets.setdefault(e.source, set())
            batch |= {(lab.address(e.target), port), (lab.address(e.target), CONTROL)}
        states = lab.on_each(list(targets), lambda s: probe_from(lab, s, sorted(targets[s])))
        udp = {e.target: dns_answers(lab, e.target) for e in expects if e.proto == "udp"}
    finally:
        lab.done_with("firewall listeners")
    rows: list[Connection] = []
    for e in expects:
        row = asdict(e)
        row["control"] = states.get(e.source, {}).get((lab.address(e.target), CONTROL), "unknown")
        if e.proto == "udp":
            row.update(listener="service", state=udp[e.target])
        else:
            seen = listening[e.target].get(_asked(e), {"status": "failed", "port": e.port})
            row.update(listener=seen["status"], port=seen["port"])
            row["state"] = states[e.source].get((lab.address(e.target), seen["port"]), "unknown")
        rows.append(row)
    return rows


# -- judging --------------------------------------------------------------------------------------
STATE_WORDS = {
    "open": "answers",
    "refused": "refused",
    "silent": f"dropped (no answer within {PROBE_TIMEOUT} s)",
    "unreachable": "rejected",
    "no-answer": "no DNS answer (blocked, or no DNS server runs there)",
    "unknown": "not tried (the probe's answer was lost)",
}
BLOCKED = ("refused", "silent", "unreachable")
LISTENERS = {"grader": " (the grader listened there)", "service": " (a service listens there)"}
CONTROL_WORDS = {**STATE_WORDS, "unknown": "not tried"}


def where(row: Connection) -> str:
    """The port a row tried, in words (without the source)."""
    proto = "/udp" if row["proto"] == "udp" else ""
    return f"{row['target']}:{row['port']}{proto} ({row['why']})"


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
    """What differs from the design in rows, one line per port and finding with every source
    it concerns: blocked where it must be open, open where it must not be, and then who may
    (from everything observed, rows when not given)."""
    found: dict[tuple, list[str]] = {}
    for row in rows:
        words = None if row["listener"] == "none" else finding(row)
        if words:  # a port graded only while its service runs is left out
            key = (where(row), words, "" if row["open"] else admitted(everything or rows, row))
            found.setdefault(key, []).append(row["source"])
    return [
        f"{port} from {', '.join(sources)}: {words}{who}"
        for (port, words, who), sources in found.items()
    ]


def admitted(rows: list[Connection], closed: Connection) -> str:
    """Who the design lets reach a closed row's port, as the end of the line that found it
    answering others ("" when the rows do not say)."""
    port = (closed["target"], closed["port"], closed["proto"])
    sources = [
        r["source"] for r in rows if r["open"] and (r["target"], r["port"], r["proto"]) == port
    ]
    if sources:
        return f"; the design opens it to {', '.join(sources)} only"
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
    shaped = {r["target"] for r in rows if not r["open"] and blocked_by_a_firewall(r)}
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
        "Issue of the design: no firewall. On every host, incoming traffic is denied: a free "
        "port (one above 32767, one below, one below 1024) and the ports no host of the design "
        "serves (873, 2222), whatever listens there, answer neither this machine nor another "
        "host."
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
            f"ports the grader listened on (below 1024, below 32768, above, 873, 2222) are "
            f"closed on {', '.join(hosts)} to others",
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
