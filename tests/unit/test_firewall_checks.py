"""The firewall: the reference's ufw rules, what the checks try and how they judge it, and how
the grader reaches web servers a firewall keeps this machine away from."""

from __future__ import annotations

import copy
import errno
import ipaddress
import itertools
import socket
import threading
from types import SimpleNamespace

import pytest
import requests

from checks import firewall
from checks.base import CheckError
from lab.core.topology import PACKAGED, Host, Topology, load
from lab.facts import ipaddr
from lab.observe import live
from lab.observe.live import HTTP_TIMEOUT, attempts, carry, connect_state, forwarded
from provision import firewall as reference
from tests.helpers import judge, recorded

REFERENCE = load(PACKAGED)
HA = Topology(  # lab-ha.yml's hosts: a second balancer (its virtual address plays no part here)
    "ha",
    "auto",
    "foobar.com",
    ipaddress.IPv4Network("192.168.58.0/24"),
    (
        Host("lb-01", "192.168.58.10", ("lb", "dns")),
        Host("lb-02", "192.168.58.13", ("lb",)),
        Host("web-01", "192.168.58.11", ("web", "app", "db-primary")),
        Host("web-02", "192.168.58.12", ("web", "app", "db-replica")),
    ),
)

# `sudo ufw show added` on web-01 of a lab after `lab provision firewall` (subnet 192.168.71)
SHOW_ADDED = """Added user rules (see 'ufw status' for running firewall):
ufw allow 22/tcp
ufw allow from 192.168.71.10 to any port 80 proto tcp
ufw allow from 192.168.71.12 to any port 3306 proto tcp
ufw allow from 192.168.71.10 to any port 9100 proto tcp
"""
# LISTEN on web-01 of a firewalled lab (address 192.168.96.11), asked for
# `22 3306 80 9100? 873 1-512 u1-512`
LISTENED = """22 service 22 0
22/6 service 22 0
3306 service 3306 0
3306/6 grader 3306 1684
80 service 80 0
80/6 grader 80 1684
9100? none 9100 0
873 grader 873 1684
873/6 grader 873 1684
1-512 grader 17 1684
1-512/6 grader 17 1684
u1-512 grader 66 1684
u1-512/6 grader 66 1684
"""
# PROBE on lb-01 of that lab, while LISTEN served 1-512 (4) and u1-512 (425) on web-01
# (127.0.0.1 81 and 9: nothing listens there; 192.168.96.99: no host)
PROBED = """tcp/22/192.168.96.11 open
tcp/4/192.168.96.11 silent
udp/425/192.168.96.11 silent
tcp/4/fe80::216:3eff:fe29:965a%eth0 silent
tcp/81/127.0.0.1 refused
udp/9/127.0.0.1 refused
tcp/22/192.168.96.99 silent
"""


# -- the reference: ufw rules ---------------------------------------------------------------------
def test_reference_rules_per_host():
    lb, web1, web2 = REFERENCE.hosts
    assert reference.rules(REFERENCE, lb) == [
        "allow 22/tcp",
        "allow 80/tcp",
        "allow 443/tcp",
        "allow 53",
    ]
    assert reference.rules(REFERENCE, web1) == [
        "allow 22/tcp",
        f"allow from {lb.address} to any port 80 proto tcp",
        f"allow from {web2.address} to any port 3306 proto tcp",
        f"allow from {lb.address} to any port 9100 proto tcp",
    ]
    assert f"allow from {web1.address} to any port 3306 proto tcp" in reference.rules(
        REFERENCE, web2
    )


def test_ha_balancers_admit_each_other():
    lb1, lb2 = HA.with_role("lb")
    rules = reference.rules(HA, lb2)
    assert f"allow from {lb1.address} proto vrrp" in rules
    assert f"allow from {lb1.address} to any port 9100 proto tcp" in rules
    assert "allow 53" not in rules  # lb-02 serves no DNS
    web = HA.host("web-01")
    assert {f"allow from {b.address} to any port 80 proto tcp" for b in (lb1, lb2)} <= set(
        reference.rules(HA, web)
    )


def test_ufw_show_added_spells_rules_as_the_reference_does():
    web1 = REFERENCE.host("web-01")
    recorded = [r.replace("192.168.71.", "192.168.56.") for r in reference.added(SHOW_ADDED)]
    assert recorded == reference.rules(REFERENCE, web1)
    assert (
        reference.added("Added user rules (see 'ufw status' for running firewall):\n(None)\n") == []
    )


def test_default_policies_are_read_from_the_defaults_file():
    text = 'IPV6=yes\nDEFAULT_INPUT_POLICY="DROP"\nDEFAULT_OUTPUT_POLICY="ACCEPT"\n'
    assert reference.policies(text) == {
        "DEFAULT_INPUT_POLICY": "DROP",
        "DEFAULT_OUTPUT_POLICY": "ACCEPT",
    }


# -- what the checks try --------------------------------------------------------------------------
def _tried(topology, check):
    return {
        (e.source, e.target, e.port, e.proto, e.open)
        for e in firewall.expectations(topology)
        if e.check == check
    }


def test_expectations_of_the_reference_lab():
    m = firewall.MACHINE
    public = _tried(REFERENCE, "public")
    assert (m, "lb-01", 53, "udp", True) in public and (m, "web-02", 22, "tcp", True) in public
    assert (m, "web-01", 80, "tcp", True) not in public
    internal = _tried(REFERENCE, "internal")
    assert internal == {  # 3306 only from the replica to the primary: primary→replica ungraded
        ("lb-01", "web-01", 80, "tcp", True),
        ("lb-01", "web-02", 80, "tcp", True),
        ("web-02", "web-01", 3306, "tcp", True),
        ("lb-01", "web-01", 9100, "tcp", True),
        ("lb-01", "web-02", 9100, "tcp", True),
    }
    closed = _tried(REFERENCE, "closed")
    assert {
        (m, "web-01", 80, "tcp", False),
        ("web-02", "web-01", 80, "tcp", False),
        ("lb-01", "web-01", 3306, "tcp", False),
        (m, "web-02", 3306, "tcp", False),
        (m, "web-01", 9100, "tcp", False),
        (m, "lb-01", 8404, "tcp", False),
        (m, "lb-01", 8405, "tcp", False),
        (m, "lb-01", 9090, "tcp", False),
    } <= closed
    assert not [t for t in closed | internal if t[:3] == ("web-01", "web-02", 3306)]
    deny = _tried(REFERENCE, "deny")
    # every host from this machine and from each other host: 128 ranges over TCP and UDP, and
    # the ports no host serves
    assert len(deny) == 3 * 3 * (2 * 128 + len(firewall.UNDESIGNED))
    assert {(s, t) for s, t, *_ in deny} == {
        (s, t) for t in REFERENCE.names for s in (m, *REFERENCE.names) if s != t
    }
    assert {port for _, _, port, _, _ in deny} == {
        *firewall.SAMPLED,
        *(port for port, _, _ in firewall.UNDESIGNED),
    }
    assert {873, 2222, 8080} <= {port for _, _, port, _, _ in deny}
    assert not [e for e in firewall.expectations(REFERENCE) if e.source == e.target]


def test_the_balancers_own_pages_are_closed_to_this_machine_only():
    rows = _tried(HA, "closed") | _tried(HA, "internal")
    pages = {(s, t, p) for s, t, p, _, _ in rows if p in (8404, 8405, 9090)}
    assert pages == {
        (firewall.MACHINE, lb, p) for lb in ("lb-01", "lb-02") for p in (8404, 8405, 9090)
    }  # 8405 between the balancers (one's Prometheus may scrape the other): not graded


def test_node_exporter_counts_from_the_balancer_only_while_it_runs():
    nodes = [e for e in firewall.expectations(REFERENCE) if e.port == firewall.NODE_EXPORTER]
    assert all(e.if_running for e in nodes if e.open)
    assert all(not e.if_running for e in nodes if not e.open)


def test_recorded_listener_and_probe_output_parse():
    listened = firewall.parse_listen(LISTENED)
    assert listened["1-512"] == {"status": "grader", "port": 17, "pid": "1684"}
    assert listened["80"]["status"] == "service" and listened["80/6"]["status"] == "grader"
    assert listened["9100?"]["status"] == "none" and "9100?/6" not in listened
    assert listened["u1-512/6"]["port"] == 66
    udp = firewall.Expect("deny", "x", "y", "1-512", False, "", "udp")
    assert firewall.asked(udp) == "u1-512"
    assert firewall.parse_probes(PROBED) == {
        ("tcp", "192.168.96.11", 22): "open",
        ("tcp", "192.168.96.11", 4): "silent",
        ("udp", "192.168.96.11", 425): "silent",
        ("tcp", "fe80::216:3eff:fe29:965a%eth0", 4): "silent",
        ("tcp", "127.0.0.1", 81): "refused",
        ("udp", "127.0.0.1", 9): "refused",
        ("tcp", "192.168.96.99", 22): "silent",
    }
    assert firewall.parse_probes("perl: not found\n") == {}  # a source without perl: unknown


def test_every_port_lies_within_a_sampled_range_over_tcp_and_udp():
    """A hole of 1023 ports or more anywhere holds a whole range, so one free port the grader
    listens on; 873 and 2222 are tried by name."""
    edges = [tuple(map(int, r.split("-"))) for r in firewall.SAMPLED]
    assert edges[0][0] == 1 and edges[-1][1] == 65535
    assert all(high - low < 512 for low, high in edges)
    assert all(b[0] == a[1] + 1 for a, b in itertools.pairwise(edges))
    asked = {firewall.asked(e) for e in firewall.expectations(REFERENCE) if e.check == "deny"}
    named = {f"{'u' if proto == 'udp' else ''}{p}" for p, _, proto in firewall.UNDESIGNED}
    assert asked == {*firewall.SAMPLED, *(f"u{r}" for r in firewall.SAMPLED), *named}
    assert {"873", "2222", "8080"} <= named


# -- judging -------------------------------------------------------------------------------------
# observe_all on a firewalled reference lab (`lab check firewall`, no monitoring): every
# connection tried, what listened there (the free ports the grader listened on, its stand-ins
# for 8405, 9090 and 9100) and what the try gave
RECORDED_ROWS = recorded("firewall.closed")
FREE = firewall.FREE
FREE_WHYS = (FREE,)


def free_port(why: str, target: str) -> int:
    """The free port the recorded run listened on, on target, for the free ports named why."""
    return next(r["port"] for r in RECORDED_ROWS if r["why"] == why and r["target"] == target)


def free_ports(target: str, proto: str = "tcp") -> list[int]:
    """The free ports the recorded run listened on, on target, in the order rows list them."""
    rows = [
        r for r in RECORDED_ROWS if (r["why"], r["target"], r["proto"]) == (FREE, target, proto)
    ]
    return list(dict.fromkeys(r["port"] for r in rows))


def _rows(state=lambda e: "open" if e.open else "silent", listener=None, control=lambda e: "open"):
    """The recorded observation, with each try's state and control answer from state(row) and
    control(row) (rows read as attributes), and listener, if given, wherever the grader did
    not listen on a free port."""
    rows = copy.deepcopy(RECORDED_ROWS)
    for row in rows:
        e = SimpleNamespace(**row)
        row.update(state=state(e), control=control(e))
        if listener and row["why"] not in FREE_WHYS:
            row["listener"] = listener
    return rows


def _judge(check_class, rows):
    """A check's judgement of the observation every firewall check shares (all the rows)."""
    return judge(check_class.id, rows)


CHECKS = (
    firewall.DefaultDeny,
    firewall.PublicOpen,
    firewall.InternalOpen,
    firewall.ClosedToOthers,
)


@pytest.mark.parametrize("check", CHECKS)
def test_the_reference_firewall_passes(check):
    verdict = _judge(check, _rows())
    assert verdict.passed, verdict.evidence


@pytest.mark.parametrize("state", ["silent", "refused"])  # a dropping or a rejecting firewall
def test_another_firewall_style_passes_too(state):
    rows = _rows(state=lambda e: "open" if e.open else state)
    assert all(_judge(c, rows).passed for c in CHECKS)


def test_no_firewall_fails_default_deny_and_closed():
    rows = _rows(state=lambda e: "open")
    deny = _judge(firewall.DefaultDeny, rows)
    free = ", ".join(str(p) for p in free_ports("lb-01"))
    assert not deny.passed and f"lb-01:{free} (free ports the grader listened on)" in deny.evidence
    closed = _judge(firewall.ClosedToOthers, rows)
    assert not closed.passed
    lines = closed.evidence.splitlines()
    assert (
        "web-01:80 (Nginx) from this machine, web-02: open (a service listens there); "
        "the design opens it to lb-01 only"
    ) in lines
    assert (
        "web-01:3306 (MariaDB) from this machine, lb-01: open (a service listens there); "
        "the design opens it to web-02 only"
    ) in lines
    # what answers on a host with no firewall answers because nothing blocks it: no pass for it
    for check in (firewall.PublicOpen, firewall.InternalOpen):
        verdict = _judge(check, rows)
        assert not verdict.passed
        assert "web-02: nothing the grader tried was blocked" in verdict.evidence
        assert "ufw default deny incoming" in _judge(check, rows).hint


def test_evidence_is_one_line_per_finding_with_every_source_that_reached_it():
    """Read in the report and in `lab exercise check 08`: a line per host and kind of port,
    what was found, from where, and who the design lets in; never one long sentence, and the
    free ports found alike on one line."""
    rows = _rows(state=lambda e: "open")
    for check in (firewall.DefaultDeny, firewall.ClosedToOthers):
        lines = _judge(check, rows).evidence.splitlines()
        assert len(lines) == len(set(lines)) > 1, lines
        assert all(" from " in line for line in lines), lines
    deny = _judge(firewall.DefaultDeny, rows).evidence.splitlines()
    # 3 hosts: TCP and UDP free ports, and each port no host serves, at the lab address and
    # over IPv6
    assert len(deny) == 3 * (2 + len(firewall.UNDESIGNED)) * 2
    ports = ", ".join(str(p) for p in free_ports("lb-01"))
    assert deny[0] == (
        f"lb-01:{ports} (free ports the grader listened on) from this machine, web-01, web-02: "
        "open; the design opens them to no one"
    )
    assert "lb-01:873 over IPv6 (rsync's port, in no host's design) from web-01, web-02: " in (
        "\n".join(deny)
    )


def test_many_ports_alike_are_counted_not_listed():
    row = next(r for r in RECORDED_ROWS if r["why"] == firewall.FREE)
    assert firewall.where(row, list(range(100, 110))) == (
        f"{row['target']}:100, 101, 102, 103, 104 and 5 more (free ports the grader listened on)"
    )


def test_one_port_left_open_fails_closed():
    def state(e):
        return "open" if e.open or (e.port == 3306 and e.source == firewall.MACHINE) else "silent"

    verdict = _judge(firewall.ClosedToOthers, _rows(state=state))
    assert not verdict.passed
    assert verdict.evidence.count("MariaDB") == 2  # both database hosts, nothing else


def test_blocked_replication_fails_internal_with_its_own_hint():
    def state(e):
        return (
            "silent"
            if e.port == 3306 and e.source == "web-02"
            else ("open" if e.open else "silent")
        )

    verdict = _judge(firewall.InternalOpen, _rows(state=state))
    assert not verdict.passed
    assert "web-01:3306 (replication) from web-02: dropped" in verdict.evidence
    assert "(a service listens there)" in verdict.evidence  # blocked, not merely idle
    assert "Replication is blocked" in verdict.hint


def test_ssh_blocked_fails_public():
    def state(e):
        return (
            "silent" if e.port == 22 and e.target == "web-02" else ("open" if e.open else "silent")
        )

    verdict = _judge(firewall.PublicOpen, _rows(state=state))
    assert not verdict.passed and "web-02:22 (SSH) from this machine: dropped" in verdict.evidence


def test_a_port_graded_only_while_its_service_runs_is_left_out():
    rows = _rows(state=lambda e: "silent" if e.if_running else ("open" if e.open else "silent"))
    for row in rows:
        if row["if_running"]:
            row["listener"] = "none"
    verdict = _judge(firewall.InternalOpen, rows)
    assert verdict.passed and "9100" not in verdict.evidence


def test_a_port_the_grader_could_not_listen_on_fails():
    rows = _rows()
    for row in rows:
        if row["check"] == "closed" and row["port"] == 3306:
            row["listener"] = "failed"
    verdict = _judge(firewall.ClosedToOthers, rows)
    assert not verdict.passed and "could not listen" in verdict.evidence


def test_a_try_this_machine_could_not_make_is_unknown_never_blocked(monkeypatch):
    """Out of files (EMFILE): the try was not made, so it proves nothing either way."""

    def no_socket(*args, **kwargs):
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(live.socket, "socket", no_socket)
    assert attempts([("tcp", "127.0.0.1", 9)], 0.1) == {("tcp", "127.0.0.1", 9): "unknown"}


# -- reaching a web server through a balancer ---------------------------------------------------
def test_connect_state_tells_open_from_refused():
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        assert connect_state("127.0.0.1", port, 1) == "open"
    assert connect_state("127.0.0.1", port, 1) == "refused"


class _Transport:
    """A stand-in for paramiko's transport: its channel is one end of a socket pair whose
    other end a tiny HTTP server answers (the web server as the balancer reaches it)."""

    def __init__(self, fail: Exception | None = None):
        self.fail, self.asked = fail, None

    def open_channel(self, kind, destination, origin, timeout):
        if self.fail:
            raise self.fail
        self.asked = (kind, destination)
        channel, server = socket.socketpair()
        threading.Thread(target=self._answer, args=(server,), daemon=True).start()
        return channel

    @staticmethod
    def _answer(server: socket.socket) -> None:
        with server:
            request = b""
            while b"\r\n\r\n" not in request:
                request += server.recv(4096)
            host = [line for line in request.split(b"\r\n") if line.lower().startswith(b"host:")]
            body = host[0].split(b":", 1)[1].strip()
            server.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nX-Served-By: web-01\r\n"
                b"Connection: close\r\n\r\n%s" % (len(body), body)
            )


class _Conn:
    def __init__(self, transport):
        self.transport = transport


def test_forwarded_carries_a_request_through_the_balancers_channel():
    transport = _Transport()
    with forwarded(_Conn(transport), "192.168.56.11", 80, "lb-01") as local:
        reply = requests.get(f"{local}/x", headers={"Host": "www.foobar.com"}, timeout=HTTP_TIMEOUT)
    assert transport.asked == ("direct-tcpip", ("192.168.56.11", 80))
    assert reply.status_code == 200 and reply.text == "www.foobar.com"
    assert reply.headers["X-Served-By"] == "web-01"


def test_carrying_ends_quietly_when_the_channel_is_closed_under_it(monkeypatch):
    """The forward's thread sees the channel closed by the check (a descriptor of -1)."""
    crashed: list = []
    monkeypatch.setattr(threading, "excepthook", crashed.append)
    listener = socket.create_server(("127.0.0.1", 0))
    channel, _ = socket.socketpair()
    channel.close()
    thread = threading.Thread(target=carry, args=(listener, channel, 5.0))
    thread.start()
    with socket.create_connection(listener.getsockname()):
        thread.join(5)
    listener.close()
    assert not thread.is_alive() and crashed == []


def test_a_refused_channel_is_one_clear_line():
    import paramiko

    refused = paramiko.ChannelException(
        paramiko.common.OPEN_FAILED_CONNECT_FAILED, "Connect failed"
    )
    asked = forwarded(_Conn(_Transport(refused)), "192.168.56.11", 80, "lb-01")
    with pytest.raises(CheckError) as caught, asked:
        pass
    assert str(caught.value) == (
        "lb-01 could not connect to 192.168.56.11:80: connection refused or unreachable"
    )


class _Ufw:
    """A host's ufw as converge() sees it through HostRun.sh: rules, policies, active or not."""

    def __init__(self, rules=(), policy="DROP", active=False):
        self.rules, self.policy, self.active = list(rules), policy, active
        self.commands: list[str] = []
        self.changes: list[str] = []

    def sh(self, command: str):
        self.commands.append(command)
        out = ""
        if command == reference.SHOW_ADDED:
            out = "Added user rules:\n" + "".join(f"ufw {r}\n" for r in self.rules)
        elif command.startswith("cat "):
            out = f'DEFAULT_INPUT_POLICY="{self.policy}"\nDEFAULT_OUTPUT_POLICY="ACCEPT"\n'
        elif command == "ufw status":
            out = f"Status: {'active' if self.active else 'inactive'}\n"
        elif command == "ufw --force enable":
            self.active = True
        elif command.startswith("ufw default deny incoming"):
            self.policy = "DROP"
        elif command.startswith("ufw --force delete "):
            self.rules.remove(command.removeprefix("ufw --force delete ").replace("'", ""))
        elif command.startswith("ufw "):
            self.rules.append(command.removeprefix("ufw "))
        return type("Result", (), {"stdout": out})()

    def changed(self, what: str) -> None:
        self.changes.append(what)


def test_converge_adds_rules_before_enabling_and_a_second_run_changes_nothing():
    web1 = REFERENCE.host("web-01")
    wanted = reference.rules(REFERENCE, web1)
    ufw = _Ufw(rules=["allow 3306/tcp"], policy="ACCEPT")
    assert reference.converge(ufw, wanted) is True
    assert ufw.rules == wanted and ufw.policy == "DROP" and ufw.active
    enable = ufw.commands.index("ufw --force enable")
    assert all(ufw.commands.index(f"ufw {r}") < enable for r in wanted)
    assert "ufw: removed allow 3306/tcp" in ufw.changes
    again = _Ufw(rules=wanted, active=True)
    assert reference.converge(again, wanted) is False and again.changes == []


def test_no_dns_answer_over_udp_fails_public():
    def state(e):
        return "no-answer" if e.proto == "udp" else ("open" if e.open else "silent")

    verdict = _judge(firewall.PublicOpen, _rows(state=state))
    assert not verdict.passed
    assert "lb-01:53/udp (DNS) from this machine: no DNS answer" in verdict.evidence


# -- the review's fakes and least-privilege variants ------------------------------------------
def test_a_least_privilege_database_firewall_passes():
    """Only the replica may reach the primary's 3306: the primary reaching the replica's 3306
    is no longer tried, whatever it gives."""
    rows = _rows()
    tried = {(r["source"], r["target"], r["port"]) for r in rows}
    assert ("web-01", "web-02", 3306) not in tried
    assert all(_judge(c, rows).passed for c in CHECKS)
    hint = firewall.InternalOpen.hint
    assert "the replica" in hint and "other web server" not in hint


@pytest.mark.parametrize(
    ("opened", "words"),
    [
        ((8404, 8405), "lb-01:8404 (HAProxy stats) from this machine: open"),
        ((8404, 8405), "lb-01:8405 (HAProxy exporter) from this machine: open"),
        ((9090,), "lb-01:9090 (Prometheus) from this machine: open"),
    ],
)
def test_the_balancers_pages_open_to_everyone_fail_closed(opened, words):
    """`ufw allow 8404:8405/tcp` or `ufw allow 9090` on the balancer, which passed before."""

    def state(e):
        return "open" if e.open or (e.target == "lb-01" and e.port in opened) else "silent"

    verdict = _judge(firewall.ClosedToOthers, _rows(state=state))
    assert not verdict.passed and words in verdict.evidence


def test_with_monitoring_the_real_prometheus_and_exporter_are_probed_and_pass():
    """On a lab with monitoring, Prometheus and HAProxy's exporter listen themselves."""
    rows = _rows(listener="service")
    pages = [r for r in rows if r["port"] in (8404, 8405, 9090)]
    assert pages and all(r["listener"] == "service" for r in pages)
    assert _judge(firewall.ClosedToOthers, rows).passed


def test_low_ports_open_to_everyone_fail_default_deny():
    """`ufw allow 1:32767/tcp` on a host kept its ephemeral ports closed and passed before."""

    def state(e):
        low = e.why == firewall.FREE and e.port < 32768 and e.proto == "tcp"
        return "open" if e.open or (low and e.target == "web-02") else "silent"

    verdict = _judge(firewall.DefaultDeny, _rows(state=state))
    assert not verdict.passed
    low = [p for p in free_ports("web-02") if p < 32768]
    assert low and len(low) < len(free_ports("web-02"))
    lines = verdict.evidence.splitlines()
    why, it = (firewall.FREE_PORTS, "them") if len(low) > 1 else (FREE, "it")
    assert lines[0] == (
        f"web-02:{', '.join(map(str, low))} ({why}) from this machine, lb-01, web-01: open; "
        f"the design opens {it} to no one"
    )
    assert all(str(p) not in verdict.evidence for p in free_ports("web-02") if p >= 32768)


@pytest.mark.parametrize("check", CHECKS)
def test_a_probe_whose_answer_was_lost_fails_either_way(check):
    kind = check().kind
    rows = _rows()
    row = next(r for r in rows if r["check"] == kind and r["listener"] != "none")
    row["state"] = "unknown"
    verdict = _judge(check, rows)
    assert not verdict.passed and "not tried" in verdict.evidence


@pytest.mark.parametrize("control", ["silent", "unreachable", "unknown"])
def test_no_answer_counts_as_blocked_only_when_the_control_answered(control):
    """A source that cannot reach the host at all (or whose probe script fails: exit 127 reads
    as unreachable, its control too) proves nothing about the firewall."""
    failing = [("web-02", "web-01"), (firewall.MACHINE, "web-01")]

    def source_control(e):
        return control if (e.source, e.target) in failing else "open"

    rows = _rows(control=source_control, state=lambda e: "open" if e.open else "unreachable")
    for check in (firewall.DefaultDeny, firewall.ClosedToOthers):
        verdict = _judge(check, rows)
        assert not verdict.passed and "whether it is blocked is unknown" in verdict.evidence
        control = "web-01:22 (SSH, open to every host in the design) did not answer"
        assert control in verdict.evidence
        # only web-01's rows from the two failing sources: the others reached their targets
        assert all(p.startswith("web-01:") for p in verdict.evidence.splitlines())


def test_a_refusal_is_an_answer_whatever_the_control_gave():
    rows = _rows(state=lambda e: "open" if e.open else "refused", control=lambda e: "silent")
    assert all(_judge(c, rows).passed for c in (firewall.ClosedToOthers, firewall.DefaultDeny))


# -- the open grader: a firewall that is not default-deny, a host with no firewall -------------
def _allow_by_default(e, below=1024, port=None):
    """`ufw default allow incoming` with `ufw deny 1024:65535` (or with `ufw allow PORT`)."""
    if e.open or (e.proto == "tcp" and e.port < below) or e.port == port:
        return "open"
    return "silent"


def test_a_firewall_that_allows_by_default_fails_default_deny():
    rows = _rows(state=_allow_by_default)
    for row in rows:
        if row["port"] == 873:  # rsync --daemon answered there
            row["listener"] = "service"
    verdict = _judge(firewall.DefaultDeny, rows)
    assert not verdict.passed
    lines = verdict.evidence.splitlines()
    assert any(
        line.startswith("web-01:873 (rsync's port, in no host's design) from this machine")
        for line in lines
    )
    assert "(a service listens there)" in verdict.evidence  # rsync --daemon answered there
    assert all(str(p) not in verdict.evidence for p in free_ports("lb-01") if p >= 1024)


def test_a_student_script_that_opens_2222_fails_default_deny():
    rows = _rows(state=lambda e: _allow_by_default(e, below=0, port=2222))
    verdict = _judge(firewall.DefaultDeny, rows)
    assert not verdict.passed
    assert (
        "web-02:2222 (a second SSH's port, in no host's design) from this machine, lb-01, "
        "web-01: open" in verdict.evidence
    )
    assert "873" not in verdict.evidence and "free port" not in verdict.evidence


# -- every pair of hosts, UDP, IPv6, every address --------------------------------------------
def test_a_host_open_to_one_other_host_fails_default_deny():
    """`ufw allow from LB-01 to any port 1:3305,3307:65535` on web-01 passed before: only one
    other host tried each host."""

    def state(e):
        from_lb = e.source == "lb-01" and e.target == "web-01" and e.proto == "tcp"
        return "open" if e.open or (from_lb and e.port != 3306) else "silent"

    verdict = _judge(firewall.DefaultDeny, _rows(state=state))
    assert not verdict.passed
    lines = verdict.evidence.splitlines()
    assert lines and all(line.startswith("web-01:") for line in lines)
    assert all(" from lb-01: open" in line for line in lines)


def test_udp_open_to_everyone_fails_default_deny():
    """`ufw allow 1:65535/udp` passed before: UDP was never tried."""
    verdict = _judge(
        firewall.DefaultDeny,
        _rows(
            state=lambda e: (
                "open" if e.open or (e.proto, e.target) == ("udp", "web-02") else "silent"
            )
        ),
    )
    assert not verdict.passed
    assert all(
        line.startswith("web-02:") and "/udp" in line for line in verdict.evidence.splitlines()
    )


def test_ipv6_open_fails_default_deny_and_closed():
    """`ip6tables -I INPUT -j ACCEPT` on lb-01 passed before: IPv6 was never tried."""
    rows = _rows(
        state=lambda e: "open" if e.open or (e.family, e.target) == (6, "lb-01") else "silent"
    )
    verdict = _judge(firewall.DefaultDeny, rows)
    assert not verdict.passed
    lines = verdict.evidence.splitlines()
    assert all(line.startswith("lb-01:") and " over IPv6 " in line for line in lines)
    assert " from web-01, web-02: open" in lines[0]
    # a port of the design is tried over IPv6 where its service listens there ([::]:80)
    web = _rows(
        state=lambda e: "open" if e.open or (e.family, e.target) == (6, "web-01") else "silent"
    )
    assert not [
        r for r in web if r["family"] == 6 and r["check"] == "closed" and r["listener"] != "none"
    ]
    for row in web:
        if (row["family"], row["target"], row["port"]) == (6, "web-01", 80):
            row["listener"] = "service"
    closed = _judge(firewall.ClosedToOthers, web)
    assert "web-01:80 over IPv6 (Nginx) from web-02: open" in closed.evidence


def test_another_address_of_a_host_is_tried_as_well():
    """A second address with `ufw allow to ADDRESS` exposed Nginx there and passed before."""
    rows = _rows()
    extra = [
        {**r, "address": "192.168.71.50", "state": "open"}
        for r in rows
        if r["target"] == "web-01" and not r["open"] and r["family"] == 4 and not r["address"]
    ]
    closed = _judge(firewall.ClosedToOthers, rows + extra)
    assert not closed.passed
    assert "web-01:80 at 192.168.71.50 (Nginx) from this machine, web-02: open" in closed.evidence
    assert not _judge(firewall.DefaultDeny, rows + extra).passed


# `ip -o addr show` on web-01 with a second address, and on web-02 (subnet 192.168.96; each
# line's `valid_lft forever preferred_lft forever` left out)
ADDRESSES = {
    "web-01": """1: lo    inet 127.0.0.1/8 scope host lo\\
1: lo    inet6 ::1/128 scope host \\
2: eth0    inet 192.168.96.11/24 brd 0.0.0.255 scope global eth0\\
2: eth0    inet 192.168.96.50/24 scope global secondary eth0\\
2: eth0    inet6 fe80::216:3eff:fe29:965a/64 scope link \\
""",
    "web-02": """1: lo    inet 127.0.0.1/8 scope host lo\\
2: eth1    inet 192.168.96.12/24 brd 0.0.0.255 scope global eth1\\
2: eth1    inet6 fe80::216:3eff:fe12:3456/64 scope link \\
""",
}


SUBNET = ipaddress.IPv4Network("192.168.96.0/24")


def test_closed_ports_are_tried_at_every_address_and_over_ipv6_from_the_hosts():
    own = {h: ipaddr.parse(text) for h, text in ADDRESSES.items()}
    lab_address = {"web-01": "192.168.96.11", "web-02": "192.168.96.12"}
    closed = firewall.Expect("closed", "web-02", "web-01", 80, False, "Nginx")
    assert list(firewall.widened([closed], lab_address, own, SUBNET)) == [
        (closed, "", 4),
        (closed, "192.168.96.50", 4),
        (closed, "fe80::216:3eff:fe29:965a%eth1", 6),  # scoped by the source's interface
    ]
    machine = firewall.Expect("closed", firewall.MACHINE, "web-01", 80, False, "Nginx")
    assert list(firewall.widened([machine], lab_address, own, SUBNET)) == [
        (machine, "", 4),
        (machine, "192.168.96.50", 4),  # this machine has no IPv6 on the lab's network
    ]
    assert list(firewall.widened([machine], lab_address, own, SUBNET, frozenset({"web-01"}))) == [
        (machine, "", 4)  # a host this machine must not contact: its lab address goes by SSH
    ]
    # an address off the lab's network (a container bridge's) is not the lab's to probe
    docker = ipaddr.parse("3: docker0    inet 172.17.0.1/16 scope global docker0\\\n")
    own_docker = {**own, "web-01": own["web-01"] + docker}
    assert list(firewall.widened([machine], lab_address, own_docker, SUBNET))[2:] == []
    opened = firewall.Expect("internal", "web-02", "web-01", 3306, True, "replication")
    assert list(firewall.widened([opened], lab_address, own, SUBNET)) == [(opened, "", 4)]


def test_attempts_from_this_machine_tell_open_refused_and_silent_over_tcp_and_udp():
    with (
        socket.create_server(("127.0.0.1", 0)) as server,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as echo,
    ):
        echo.bind(("127.0.0.1", 0))
        tcp, udp = server.getsockname()[1], echo.getsockname()[1]

        def answer():
            data, sender = echo.recvfrom(64)
            echo.sendto(data, sender)

        replying = threading.Thread(target=answer)
        replying.start()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as idle:
            idle.bind(("127.0.0.1", 0))  # bound, never answers: a datagram dropped
            silent = idle.getsockname()[1]
            found = attempts(
                [
                    ("tcp", "127.0.0.1", tcp),
                    ("udp", "127.0.0.1", udp),
                    ("udp", "127.0.0.1", silent),
                ],
                0.5,
            )
        replying.join()
    assert found == {
        ("tcp", "127.0.0.1", tcp): "open",
        ("udp", "127.0.0.1", udp): "open",
        ("udp", "127.0.0.1", silent): "silent",
    }
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    assert attempts([("tcp", "127.0.0.1", free)], 0.5) == {("tcp", "127.0.0.1", free): "refused"}


def test_one_host_without_a_firewall_fails_public_and_internal_for_that_host_only():
    rows = _rows(state=lambda e: "open" if e.open or e.target == "web-02" else "silent")
    for check in (firewall.PublicOpen, firewall.InternalOpen):
        verdict = _judge(check, rows)
        assert not verdict.passed
        assert verdict.evidence.startswith("web-02: nothing the grader tried was blocked")
        assert "lb-01" not in verdict.evidence and "web-01" not in verdict.evidence


def test_blocked_without_a_control_is_no_evidence_of_a_firewall():
    """A host its sources cannot reach at all: silence proves no firewall, refusal does."""
    rows = _rows(state=lambda e: "open" if e.open else "silent", control=lambda e: "silent")
    verdict = _judge(firewall.PublicOpen, rows)
    assert not verdict.passed and "nothing the grader tried was blocked" in verdict.evidence
    rows = _rows(state=lambda e: "open" if e.open else "refused", control=lambda e: "silent")
    assert _judge(firewall.PublicOpen, rows).passed


def test_probes_go_in_random_order_with_the_ssh_controls_last():
    """A port knock (open for a while after an SSH connection) or a rule on the order of ports
    tried cannot count on the grader's order."""
    targets = [("tcp", "192.168.96.11", 22)] + [("tcp", "192.168.96.11", p) for p in range(1, 60)]
    orders = {tuple(firewall.controls_last(targets)) for _ in range(5)}
    assert len(orders) > 1
    for order in orders:
        assert order[-1] == ("tcp", "192.168.96.11", 22) and set(order) == set(targets)


def test_a_try_the_sources_own_firewall_kept_in_is_not_taken_for_blocked():
    """`iptables -I OUTPUT ... -j DROP` on lb-01 for what it sends web-01: EPERM is no answer
    of web-01's."""
    assert live._failed_attempt(errno.EPERM) == "unsent"
    rows = _rows(
        state=lambda e: (
            "unsent" if e.source == "lb-01" and not e.open else ("open" if e.open else "silent")
        )
    )
    verdict = _judge(firewall.DefaultDeny, rows)
    assert not verdict.passed and " from lb-01: not sent: " in verdict.evidence
