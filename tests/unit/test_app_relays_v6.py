"""app.server asks the application's ports from outside its host over IPv4 and IPv6, from this
machine and from every other lab host, and judges by what answered: an IPv6-only relay fails,
an application bound to 0.0.0.0 that a firewall keeps from everyone outside passes.

The ss and ip outputs were recorded on web-01 and lb-01 of a lab (tests/unit/fixtures/raw):
gunicorn bound to 0.0.0.0:8000, socat relaying [::]:8002 (IPv6 only), *:8003 (IPv4 and IPv6)
and [fe80::216:3eff:fece:bfd4]%eth0:8004 to it, and fd00:88::11/64 added on eth0."""

from __future__ import annotations

import copy
from contextlib import contextmanager

import pytest

from lab.core.topology import parse, variant
from lab.facts import ipaddr, ss
from lab.observe import CheckError, live, probes
from lab.observe.live import THIS_MACHINE, LiveLab
from tests.helpers import judge, recorded
from tests.record import read_raw

LINK_LOCAL = "fe80::216:3eff:fece:bfd4"
ANSWER = {"host": "web-01", "pid": 7, "request_id": "r1"}  # a lab host's /api/status
GLOBAL = "fd00:88::11"
WEB1 = "192.168.88.11"
SOCAT = {1172: "/usr/bin/socat", 353: "/usr/bin/socat", 1175: "/usr/bin/socat"}
NGINX = {pid: "/usr/sbin/nginx" for pid in (66, 67, 68)}  # its master and workers
PATHS = {55: "/usr/sbin/sshd", 50: "/usr/sbin/mariadbd", **NGINX, **SOCAT}
GUNICORN = {1092, 1094, 1095}


def listeners() -> list[ss.Listener]:
    return ss.parse(read_raw("ss-ipv6-relays-web-01"))


def by_port(port: int) -> ss.Listener:
    return next(item for item in listeners() if item.port == port)


# -- ss: which family a listener takes, as ss prints it ----------------------------------------
@pytest.mark.parametrize(
    "port, family, shown, v4, v6",
    [
        (8000, "4", "0.0.0.0:8000", True, False),
        (8003, "", "*:8003", True, True),  # an IPv6 socket taking IPv4 too (ipv6only=0)
        (8002, "6", "[::]:8002", False, True),  # ipv6only=1
        (8004, "6", f"[{LINK_LOCAL}]%eth0:8004", False, True),
        (3306, "4", f"{WEB1}:3306", True, False),
    ],
)
def test_ss_says_which_family_a_listener_takes(port, family, shown, v4, v6):
    item = by_port(port)
    assert (item.family, str(item), item.over_ipv4, item.over_ipv6) == (family, shown, v4, v6)
    assert not item.local_only


def test_a_scoped_address_keeps_its_scope_and_wildcards_stay_wildcards():
    assert by_port(8004).address == f"{LINK_LOCAL}%eth0"
    assert {by_port(p).address for p in (8000, 8002, 8003)} == {"*"}
    sshd = [item for item in listeners() if item.port == 22]
    assert sorted(str(item) for item in sshd) == ["0.0.0.0:22", "[::]:22"]
    resolved = ss.parse("LISTEN 0 4096 127.0.0.53%lo:53 0.0.0.0:*")[0]
    assert resolved.address == "127.0.0.53%lo" and resolved.local_only
    assert str(resolved) == "127.0.0.53%lo:53"


# -- ip: the addresses another lab host reaches a host at -------------------------------------
def test_the_ipv6_addresses_are_the_lab_links_link_local_one_and_the_global_ones():
    web1 = ipaddr.parse(read_raw("ip-addr-ipv6-web-01"))
    assert ipaddr.interface_of(web1, WEB1) == "eth0"
    assert ipaddr.ipv6_addresses(web1, WEB1) == [LINK_LOCAL, GLOBAL]
    lb = ipaddr.parse(read_raw("ip-addr-ipv6-lb-01"))
    assert ipaddr.interface_of(lb, "192.168.88.10") == "eth0"
    assert ipaddr.interface_of(lb, "192.168.88.99") is None


def test_loopback_other_links_and_unusable_addresses_are_not_asked():
    text = read_raw("ip-addr-ipv6-web-01") + (
        "\n3: docker0    inet6 fe80::42:1/64 scope link \\       valid_lft forever"
        "\n2: eth0    inet6 2001:db8::11/64 scope global tentative \\       valid_lft forever"
        "\n2: eth0    inet6 2001:db8::12/64 scope global deprecated dynamic \\  valid_lft 5sec"
    )
    found = ipaddr.ipv6_addresses(ipaddr.parse(text), WEB1)
    assert found == [LINK_LOCAL, GLOBAL, "2001:db8::12"]


# -- which ports are asked, at which addresses --------------------------------------------------
def test_ipv6_listeners_are_asked_at_the_hosts_ipv6_addresses():
    v6 = [LINK_LOCAL, GLOBAL]
    found = probes.relay_candidates(listeners(), PATHS, WEB1, "127.0.0.1:8000", GUNICORN, v6)
    assert found == {
        (WEB1, 8003): ["socat"],  # both families
        (LINK_LOCAL, 8003): ["socat"],
        (GLOBAL, 8003): ["socat"],
        (LINK_LOCAL, 8002): ["socat"],  # IPv6 only: not at the IPv4 address
        (GLOBAL, 8002): ["socat"],
        (LINK_LOCAL, 8004): ["socat"],  # its one address, the scope left to the asking host
    }
    # the application's own port is judged by itself (public_sockets), not as a port forward
    assert probes.public_sockets(listeners(), GUNICORN, WEB1, v6) == {(WEB1, 8000): ["gunicorn"]}


def test_a_dual_stack_application_socket_is_asked_over_both_families():
    dual = [ss.Listener("tcp", "*", 8000, (("gunicorn", 1092),), "")]
    only6 = [ss.Listener("tcp", "*", 8000, (("gunicorn", 1092),), "6")]
    assert set(probes.public_sockets(dual, GUNICORN, WEB1, [LINK_LOCAL])) == {
        (WEB1, 8000),
        (LINK_LOCAL, 8000),
    }
    assert set(probes.public_sockets(only6, GUNICORN, WEB1, [LINK_LOCAL])) == {(LINK_LOCAL, 8000)}
    assert probes.socket_name(LINK_LOCAL, 8000) == f"[{LINK_LOCAL}]:8000"


# -- asking from outside: from where, at which address ---------------------------------------
@pytest.fixture
def lab(monkeypatch):
    lab = LiveLab(parse(variant("unit-v6", 88)), fleet={"lb-01": "conn", "web-02": "conn"})
    asked: list[tuple[str, str, int]] = []

    @contextmanager
    def forwarded(conn, address, port, via, timeout=5):
        asked.append((via, address, port))
        if port == 9:  # nothing listens there: the neighbour's SSH server says so
            raise live.ChannelRefused(via, address, port, "connection refused or unreachable")
        if port == 10:  # the neighbour's SSH server forwards nothing (AllowTcpForwarding no)
            raise live.ChannelRefused(via, address, port, live.FORWARDING_OFF)
        yield "http://127.0.0.1:1"

    monkeypatch.setattr(live, "forwarded", forwarded)
    monkeypatch.setattr(live, "connect_state", lambda a, p, t: asked.append((THIS_MACHINE, a, p)))
    monkeypatch.setattr(lab, "lab_interface", lambda source: "eth1")
    monkeypatch.setattr(
        lab, "_outside", lambda origin, url, t: {"from": origin, "url": url, "json": ANSWER}
    )
    lab.asked = asked
    return lab


def test_a_link_local_address_is_asked_from_another_host_with_its_interface_as_scope(lab):
    assert lab.from_outside(THIS_MACHINE, LINK_LOCAL, 8002, "/api/status") is None
    answer = lab.from_outside("lb-01", LINK_LOCAL, 8002, "/api/status")
    assert answer == {"from": "lb-01", "url": "http://127.0.0.1:1/api/status", "json": ANSWER}
    assert lab.asked == [("lb-01", f"{LINK_LOCAL}%eth1", 8002)]  # this machine sent nothing


@pytest.mark.parametrize(
    "address, scoped",
    [
        (LINK_LOCAL, True),
        (f"{LINK_LOCAL}%eth0", True),
        (GLOBAL, False),
        (WEB1, False),
        ("169.254.1.1", False),
        ("*", False),
    ],
)
def test_only_ipv6_link_local_addresses_take_the_asking_hosts_scope(address, scoped):
    assert live.is_link_local(address) is scoped


def test_a_source_that_cannot_connect_gives_no_answer(lab):
    assert lab.from_outside("web-02", WEB1, 9, "/api/status") is None
    assert lab.from_outside(THIS_MACHINE, WEB1, 8000, "/api/status") is None  # not "open"
    assert lab.asked == [("web-02", WEB1, 9), (THIS_MACHINE, WEB1, 8000)]


def test_a_source_whose_ssh_server_forwards_nothing_is_not_taken_for_unreached(lab):
    with pytest.raises(CheckError, match="AllowTcpForwarding"):
        lab.from_outside("web-02", LINK_LOCAL, 10, "/api/status")


def test_every_other_host_that_answers_over_ssh_is_a_source(lab, monkeypatch):
    def sh(host, command, **kwargs):
        if host == "lb-01":
            raise CheckError("lb-01: unreachable over SSH: timed out")
        return ""

    monkeypatch.setattr(lab, "sh", sh)
    assert lab.outside_sources("web-01") == [THIS_MACHINE, "web-02"]


# -- every source asks, and every one that got the application is named ----------------------
APP = {1092: "/usr/bin/python3.11"}


def observed(lab, monkeypatch, answering: dict) -> probes.Outside:
    """probes.outside on web-01 of the recorded listeners, where answering says which source
    gets the application's answer at which (address, port)."""
    lab._memo.update(
        {
            ("application", "web-01"): {
                "target": "0.0.0.0:8000",
                "holders": {"0.0.0.0:8000": [["gunicorn", pid] for pid in sorted(GUNICORN)]},
                "replies": [{"status": 200, "json": {"host": "web-01", "pid": 1094}}],
            },
            ("ss", "web-01"): listeners(),
            ("addresses", "web-01"): [  # its lab address and its link-local one
                ipaddr.Address("eth0", "4", WEB1, 24, "global"),
                ipaddr.Address("eth0", "6", LINK_LOCAL, 64, "link"),
            ],
            ("outside of", "web-01"): [THIS_MACHINE, "lb-01", "web-02"],
        }
    )
    exe = "".join(f"{pid}\t{path}\n" for pid, path in {**PATHS, **APP}.items())
    monkeypatch.setattr(lab, "sh", lambda host, command, **kw: exe if "readlink" in command else "")

    def from_outside(source, address, port, path):
        if source in answering.get((address, port), ()):
            body = {"host": "web-01", "pid": 1095, "request_id": "r"}
            return {"from": source, "status": 200, "json": body}
        return None

    monkeypatch.setattr(lab, "from_outside", from_outside)
    return probes.outside(lab, "web-01")


def test_a_firewall_that_admits_one_source_only_still_fails(lab, monkeypatch):
    seen = observed(lab, monkeypatch, {(WEB1, 8000): ["web-02"], (LINK_LOCAL, 8002): ["lb-01"]})
    assert seen["exposed"] == [
        {
            "socket": f"{WEB1}:8000",
            "programs": ["gunicorn"],
            "from": "web-02",
            "status": 200,
            "pid": 1095,
        }
    ]
    assert [(r["socket"], r["from"]) for r in seen["relays"]] == [(f"[{LINK_LOCAL}]:8002", "lb-01")]
    assert seen["asked_from"] == [THIS_MACHINE, "lb-01", "web-02"]


def test_every_source_that_got_the_application_is_named(lab, monkeypatch):
    sources = [THIS_MACHINE, "lb-01", "web-02"]
    seen = observed(lab, monkeypatch, {(WEB1, 8003): sources})
    assert seen["exposed"] == []
    assert [(r["socket"], r["from"]) for r in seen["relays"]] == [
        (f"{WEB1}:8003", "this machine, lb-01 and web-02")
    ]


# -- the verdict -------------------------------------------------------------------------------
def public(**changes):
    o = copy.deepcopy(recorded("app.server"))
    o["web-01"].update(sockets=["0.0.0.0:8000"], local_only=False, **changes)
    return o


def test_an_application_on_0_0_0_0_that_nothing_outside_reaches_passes():
    verdict = judge("app.server", public(asked_from=[THIS_MACHINE, "lb-01", "web-02"]))
    assert verdict.passed, verdict.evidence
    assert (
        "web-01: gunicorn on 0.0.0.0:8000, where nothing outside the host reaches it (asked "
        "from this machine, lb-01, web-02)" in verdict.evidence
    )


def test_an_application_on_0_0_0_0_that_a_visitor_reaches_fails_with_who_reached_it():
    answer = {"programs": ["gunicorn"], "from": "lb-01", "status": 200, "pid": 203}
    verdict = judge("app.server", public(exposed=[{"socket": f"{WEB1}:8000", **answer}]))
    assert not verdict.passed
    assert verdict.evidence.startswith(
        "web-01: gunicorn (pid 178) listens on 0.0.0.0:8000: reachable from the network, not "
        f"only by Nginx: GET /api/status at {WEB1}:8000 from lb-01 was answered by the "
        "application (HTTP 200, pid 203)"
    )


def test_an_ipv6_only_relay_fails_with_its_address():
    o = copy.deepcopy(recorded("app.server"))
    relay = {"socket": f"[{LINK_LOCAL}]:8002", "programs": ["socat"], "from": "lb-01 and web-02"}
    o["web-01"]["relays"] = [{**relay, "status": 200, "pid": 203}]
    verdict = judge("app.server", o)
    assert not verdict.passed
    assert verdict.evidence == (
        f"web-01: [{LINK_LOCAL}]:8002 (socat) relays the application to the network: GET "
        "/api/status there from lb-01 and web-02 was answered by the application (HTTP 200, "
        "pid 203)"
    )


def test_sshd_is_asked_beyond_its_own_port_and_only_vouched_servers_are_left_out():
    """`ssh -R 0.0.0.0:8005:127.0.0.1:8000` with GatewayPorts: sshd itself listens for the
    application; a copy of socat at /usr/sbin/mysqld is not the system's mysqld (no path)."""
    held = [
        ss.Listener("tcp", "*", 22, (("sshd", 55),), "4"),
        ss.Listener("tcp", "*", 8005, (("sshd", 1952),), "4"),
        ss.Listener("tcp", WEB1, 3306, (("mariadbd", 50),), "4"),
        ss.Listener("tcp", "*", 3307, (("mysqld", 2001),), "4"),
    ]
    paths = {55: "/usr/sbin/sshd", 1952: "/usr/sbin/sshd", 50: "/usr/sbin/mariadbd"}
    found = probes.relay_candidates(held, paths, WEB1, "127.0.0.1:8000", GUNICORN)
    # (and the application's own port at the host's address: a port forward may open it)
    assert found == {(WEB1, 8005): ["sshd"], (WEB1, 3307): ["mysqld"], (WEB1, 8000): []}
