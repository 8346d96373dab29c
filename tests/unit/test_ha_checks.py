"""The ha checks' judgements on observations shaped as recorded on an HA lab (lab-ha.yml at
192.168.74.0/24, keepalived 2.2.7), and the VRRP facts' parsers on raw recorded output."""

from pathlib import Path

import pytest

from checks.ha import Failover, OneHolder, SameConfiguration, SiteAtVirtualAddress
from facts import vrrp

RAW = Path(__file__).parent / "fixtures" / "raw"
VIP = "192.168.74.100"


def recorded(host: str) -> tuple[str, str]:
    text = (RAW / f"vrrp-{host}-ha.txt").read_text()
    body = "\n".join(line for line in text.splitlines() if not line.startswith(("#", "$")))
    addresses, _, sockets = body.partition("---")
    return addresses, sockets


def test_addresses_and_vrrp_speakers_parse_from_recorded_output():
    addresses, sockets = recorded("lb-01")
    found = vrrp.parse_addresses(addresses)
    assert vrrp.holds(found, VIP) == vrrp.Address("eth0", VIP, 24)
    assert vrrp.interface_of(found, "192.168.74.10") == "eth0"
    assert vrrp.vrrp_speakers(sockets) == [("keepalived", 1215)]
    addresses, sockets = recorded("lb-02")
    assert vrrp.holds(vrrp.parse_addresses(addresses), VIP) is None
    assert vrrp.vrrp_speakers(sockets) == [("keepalived", 906)]


def test_other_raw_sockets_are_not_vrrp():
    line = 'UNCONN 0 0 0.0.0.0:1 0.0.0.0:* users:(("ping",pid=77,fd=3))'  # ICMP
    assert vrrp.vrrp_speakers(line) == []
    assert vrrp.vrrp_speakers(line.replace(":1 ", ":vrrp ")) == [("ping", 77)]


def view(holds: bool, speakers=(("keepalived", 1),)) -> dict:
    return {
        "holds": f"{VIP}/24 dev eth0" if holds else None,
        "speakers": [list(s) for s in speakers],
    }


def one_holder(lb01: dict, lb02: dict):
    return OneHolder().judge({"virtual_address": VIP, "balancers": {"lb-01": lb01, "lb-02": lb02}})


def test_one_holder_passes_the_reference_and_a_holder_that_is_lb_02():
    assert one_holder(view(True), view(False)).passed
    verdict = one_holder(view(False, [("ucarp", 9)]), view(True))  # another VRRP daemon
    assert verdict.passed and "lb-02 holds" in verdict.evidence and "ucarp" in verdict.evidence


@pytest.mark.parametrize(
    "lb01, lb02, words",
    [
        (view(True), view(True), "all hold 192.168.74.100 (split brain)"),
        (view(False), view(False), "no load balancer holds"),
        (view(True), view(False, []), "nothing speaks VRRP on lb-02"),  # backup's keepalived off
        (view(True, []), view(False, []), "a fixed address moves nowhere"),  # ip addr add by hand
    ],
)
def test_one_holder_fails_split_brain_nobody_a_silent_backup_and_a_fixed_address(lb01, lb02, words):
    verdict = one_holder(lb01, lb02)
    assert not verdict.passed
    assert words in verdict.evidence


def site(**changes) -> dict:
    o = {
        "virtual_address": VIP,
        "name": "www.foobar.com.",
        "addresses": [VIP],
        "status": 200,
        "served_by": "web-02",
        "web": ["web-01", "web-02"],
    }
    return {**o, **changes}


def test_site_at_the_virtual_address():
    verdict = SiteAtVirtualAddress().judge(site())
    assert verdict.passed and verdict.evidence == f"www.foobar.com → {VIP}: HTTP 200 from web-02"
    still_lb01 = SiteAtVirtualAddress().judge(site(addresses=["192.168.74.10"]))
    assert not still_lb01.passed and "not the virtual address" in still_lb01.evidence
    nobody = SiteAtVirtualAddress().judge(site(error=f"GET http://{VIP}/: timed out"))
    assert not nobody.passed and "timed out" in nobody.evidence
    canned = SiteAtVirtualAddress().judge(site(served_by=None))  # HAProxy answering by itself
    assert not canned.passed and "not a page from a web server" in canned.evidence


SERVERS = [
    "192.168.74.11:80 (balance roundrobin, check, inter 1s, fall 2)",
    "192.168.74.12:80 (balance roundrobin, check, inter 1s, fall 2)",
]


def haproxy(servers=SERVERS, ports=(80, 8404), running=True, config_ok=True) -> dict:
    return {
        "running": running,
        "config_ok": config_ok,
        "config_error": "" if config_ok else "parsing [/etc/haproxy/haproxy.cfg:30]: unknown",
        "ports": list(ports),
        "servers": list(servers),
    }


def same(lb02: dict):
    return SameConfiguration().judge({"balancers": {"lb-01": haproxy(), "lb-02": lb02}})


def test_same_configuration_passes_the_reference():
    verdict = same(haproxy())
    assert verdict.passed and "the same servers" in verdict.evidence


@pytest.mark.parametrize(
    "lb02, words",
    [
        (haproxy(servers=SERVERS[:1]), f"lb-02 lacks server {SERVERS[1]} that lb-01 has"),
        (
            haproxy(servers=[SERVERS[0], SERVERS[1].replace("check, ", "")]),
            "lb-02 lacks server 192.168.74.12:80 (balance roundrobin, check",
        ),
        (haproxy(ports=(80,)), "lb-02 lacks port 8404"),
        (haproxy(running=False), "HAProxy does not run on lb-02"),
        (haproxy(config_ok=False), "lb-02: haproxy -c fails"),
    ],
)
def test_same_configuration_fails_a_server_removed_an_option_lost_a_port_and_a_dead_haproxy(
    lb02, words
):
    verdict = same(lb02)
    assert not verdict.passed
    assert words in verdict.evidence


def failover(**changes) -> dict:
    o = {
        "virtual_address": VIP,
        "victim": "lb-01",
        "units": ["haproxy.service", "keepalived.service"],
        "answered_after": 2.5,
        "takeover": ["lb-02"],
        "restored": True,
        "holder_after": ["lb-01"],
        "restore_seconds": 6.1,
    }
    return {**o, **changes}


def test_failover_passes_within_the_window_and_names_the_seconds():
    verdict = Failover().judge(failover())
    assert verdict.passed
    assert "lb-02 took 192.168.74.100 over" in verdict.evidence and "2.5 s" in verdict.evidence


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"answered_after": None, "takeover": []}, "did not answer again for 15 s; nobody held"),
        ({"answered_after": 12.3}, "only after 12.3 s (at most 10 s)"),
        ({"restored": False, "holder_after": ["lb-01", "lb-02"]}, "did not settle on one holder"),
    ],
)
def test_failover_fails_no_takeover_a_slow_one_and_a_split_brain_after_restore(changes, words):
    verdict = Failover().judge(failover(**changes))
    assert not verdict.passed
    assert words in verdict.evidence
