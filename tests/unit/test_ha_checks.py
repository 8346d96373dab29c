"""The ha checks' judgements on observations shaped as recorded on an HA lab (lab-ha.yml at
192.168.74.0/24, keepalived 2.2.7), and the VRRP facts' parsers on raw recorded output."""

import re
from pathlib import Path

import pytest

from checks.base import CheckError
from checks.ha import (
    Failover,
    OneHolder,
    SameConfiguration,
    SiteAtVirtualAddress,
    left_up,
    server_summary,
    services_to_stop,
    start_again,
)
from lab.core.topology import PACKAGED, load
from lab.facts import haproxy as haproxy_facts
from lab.facts import proc, vrrp
from lab.observe.live import LiveLab
from tests.helpers import judge

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
    return judge(
        OneHolder.id, {"virtual_address": VIP, "balancers": {"lb-01": lb01, "lb-02": lb02}}
    )


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
        "hostnames": {"web-01": "web-01", "web-02": "web-02"},
        "domain": "foobar.com",
    }
    return {**o, **changes}


def unanswered(error: str) -> dict:
    """site() when the request to the virtual address got no answer."""
    o = site(error=error)
    del o["status"], o["served_by"]
    return o


def test_site_at_the_virtual_address():
    verdict = judge(SiteAtVirtualAddress.id, site())
    assert verdict.passed and verdict.evidence == f"www.foobar.com → {VIP}: HTTP 200 from web-02"
    still_lb01 = judge(SiteAtVirtualAddress.id, site(addresses=["192.168.74.10"]))
    assert not still_lb01.passed and "not the virtual address" in still_lb01.evidence
    nobody = judge(SiteAtVirtualAddress.id, unanswered(f"GET http://{VIP}/: timed out"))
    assert not nobody.passed and "timed out" in nobody.evidence
    canned = judge(SiteAtVirtualAddress.id, site(served_by=None))  # HAProxy answering by itself
    assert not canned.passed and "not a page from a web server" in canned.evidence


def test_site_accepts_the_real_hostname_of_a_web_server_named_otherwise_in_the_topology():
    hostnames = {"web-01": "srv-a.example", "web-02": "srv-b.example"}  # ssh provider servers
    verdict = judge(SiteAtVirtualAddress.id, site(served_by="srv-b.example", hostnames=hostnames))
    assert verdict.passed and "from srv-b.example" in verdict.evidence
    stranger = judge(SiteAtVirtualAddress.id, site(served_by="lb-01", hostnames=hostnames))
    assert not stranger.passed and "X-Served-By lb-01" in stranger.evidence


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
    return judge(SameConfiguration.id, {"balancers": {"lb-01": haproxy(), "lb-02": lb02}})


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


def server(inter=None, fall=None, check=True) -> dict:
    """A server of probes.balancer() as recorded on lb-01 (192.168.74.0/24)."""
    return {
        "backend": "web",
        "balance": "roundrobin",
        "name": "web-01",
        "host": "192.168.74.11",
        "addresses": ["192.168.74.11"],
        "port": 80,
        "check": check,
        "backup": False,
        "disabled": False,
        "inter": inter,
        "fall": fall,
    }


def test_server_summary_reads_inter_and_fall_as_haproxy_does():
    reference = server_summary(server("1s", "2"), "roundrobin")
    assert reference == SERVERS[0].replace("74.12", "74.11")
    assert server_summary(server("1000", "2"), "roundrobin") == reference  # bare number: ms
    assert server_summary(server("1000ms", "2"), "roundrobin") == reference
    defaults = server_summary(server(), "roundrobin")
    assert defaults == server_summary(server("2s", "3"), "roundrobin")  # HAProxy's defaults
    assert defaults == server_summary(server("2000", None), "roundrobin")
    assert server_summary(server("3s", "2"), "roundrobin") != reference
    assert server_summary(server("1s", "2", check=False), "roundrobin").endswith(
        "(balance roundrobin)"
    )
    assert "disabled" in server_summary(server("1s", "2"), "roundrobin", maint=True)


def test_same_configuration_passes_the_same_timing_written_in_other_units():
    config = haproxy_facts.parse_config(
        "backend web\n  default-server inter 1000 fall 2\n"
        "  server a 192.168.74.11:80 check\n  server b 192.168.74.12:80 check\n"
    )
    lb02 = [
        server_summary(
            {**server(s.option("inter"), s.option("fall"), s.checked), "addresses": [s.host]},
            "roundrobin",
        )
        for s in config.backends[0].servers
    ]
    assert lb02 == SERVERS
    assert same(haproxy(servers=lb02)).passed
    slower = [s.replace("inter 1s", "inter 2s") for s in lb02]
    assert not same(haproxy(servers=slower)).passed


def test_default_server_lines_add_up_from_defaults_to_the_backend():
    config = haproxy_facts.parse_config(
        "defaults\n  default-server inter 1s\n  default-server fall 2\n"
        "backend b\n  default-server rise 4\n  default-server fall 5\n"
        "  server a 10.0.0.1:80 check\n  server b 10.0.0.2:80 no-check inter 3s\n"
        "defaults\n  mode http\n"
        "backend c\n  server c 10.0.0.3:80\n"
    )
    first, second = config.backends[0].servers
    assert (first.option("inter"), first.option("fall"), first.option("rise")) == ("1s", "5", "4")
    assert first.checked and not second.checked and second.option("inter") == "3s"
    (third,) = config.backends[1].servers
    assert third.options == ()  # a new defaults section starts afresh
    late = haproxy_facts.parse_config(
        "defaults\n  default-server no-check\nbackend b\n  server a 10.0.0.1:80 check\n"
    )
    assert late.backends[0].servers[0].checked  # the server's own check wins


PS = """\
    1       0 init.scope      systemd
  201       1 haproxy.service haproxy
  203     201 haproxy.service haproxy
  310       1 keepalived.service keepalived
  311     310 keepalived.service keepalived
  340     311 keepalived.service bash
  400       1 docker.service  dockerd
  420     400 docker.service  docker-proxy
  500     444 session-3.scope keepalived
"""


def test_services_to_stop_on_a_recorded_balancer():
    text = (RAW / "ps-units-lb-01-ha.txt").read_text()
    processes = proc.parse_units("\n".join(x for x in text.splitlines() if x[:1] not in "#$"))
    assert processes[70] == (51, "nsd.service", "nsd: main")
    speaker, haproxy_worker = 1008, 1011  # from `ss -Hanp -w` and `ss -Hltnp` at that moment
    assert services_to_stop(processes, {speaker, haproxy_worker}) == [
        "haproxy.service",
        "keepalived.service",
    ]
    with pytest.raises(CheckError, match=r"ssh\.service runs sshd, not only bash, keepalived"):
        services_to_stop(processes, {speaker, 1090})  # port 80 served from someone's SSH login


def test_services_to_stop_are_those_of_the_speaker_and_the_listener():
    processes = proc.parse_units(PS)
    assert processes[340] == (311, "keepalived.service", "bash")  # its vrrp_script, running
    assert services_to_stop(processes, {311, 203}) == ["haproxy.service", "keepalived.service"]
    assert services_to_stop(processes, {999}) == []  # gone meanwhile


@pytest.mark.parametrize(
    "pids, words",
    [
        ({311, 420}, "docker.service runs dockerd, not only docker-proxy, keepalived"),
        ({500, 203}, "keepalived (pid 500) runs outside any systemd service"),
    ],
)
def test_services_to_stop_refuse_other_programs_and_processes_outside_a_service(pids, words):
    with pytest.raises(CheckError, match=re.escape(words)):
        services_to_stop(proc.parse_units(PS), pids)


def test_left_up_names_what_survived_the_kill():
    gone = {"holds": None, "speakers": []}
    assert left_up(gone, []) == []
    found = left_up({"holds": f"{VIP}/24 dev eth0", "speakers": [["keepalived", 9]]}, ["haproxy"])
    assert found == [
        f"it still holds {VIP}/24 dev eth0",
        "keepalived still speaks VRRP",
        "haproxy still listens on port 80",
    ]


def failover(**changes) -> dict:
    o = {
        "virtual_address": VIP,
        "victim": "lb-01",
        "units": ["haproxy.service", "keepalived.service"],
        "left_up": [],
        "answered_after": 2.5,
        "takeover": ["lb-02"],
        "restored": True,
        "holder_after": ["lb-01"],
        "restore_seconds": 6.1,
    }
    o.update(changes)
    if o["left_up"]:  # the victim could not be taken down: nothing was restored
        del o["restored"], o["holder_after"], o["restore_seconds"]
    return o


def test_failover_passes_within_the_window_and_names_the_seconds():
    verdict = judge(Failover.id, failover())
    assert verdict.passed
    assert "lb-02 took 192.168.74.100 over" in verdict.evidence and "2.5 s" in verdict.evidence


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"answered_after": None, "takeover": []}, "did not answer again for 15 s; nobody held"),
        ({"answered_after": 12.3}, "only after 12.3 s (at most 10 s)"),
        ({"restored": False, "holder_after": ["lb-01", "lb-02"]}, "did not settle on one holder"),
        # lb-02 never takes the address; a watchdog restarts lb-01's services within seconds
        ({"takeover": ["lb-01"]}, "no other balancer took the address over (holders: lb-01)"),
        ({"takeover": []}, "no other balancer took the address over (holders: none)"),
        (
            {"left_up": ["keepalived still speaks VRRP"], "answered_after": None},
            "could not take lb-01 down: after stopping haproxy.service and keepalived.service, "
            "keepalived still speaks VRRP",
        ),
    ],
)
def test_failover_fails_no_takeover_a_slow_one_and_a_split_brain_after_restore(changes, words):
    verdict = judge(Failover.id, failover(**changes))
    assert not verdict.passed
    assert words in verdict.evidence


class Unstartable(LiveLab):
    """The shared layer with a host whose `systemctl start` fails a given number of times."""

    def __init__(self, failures: int):
        super().__init__(load(PACKAGED), None)
        self.failures, self.commands = failures, []

    def sh(self, host, command, sudo=False, check=True, timeout=15):
        self.commands.append(command)
        if self.failures:
            self.failures -= 1
            raise CheckError(f"{host}: Job for haproxy.service failed")
        return ""


def test_a_restart_that_fails_is_tried_again_at_the_end_of_the_run():
    lab, what = Unstartable(failures=1), "services on lb-01"
    lab.on_cleanup(what, lambda: start_again(lab, "lb-01", "haproxy.service"))
    with pytest.raises(CheckError, match=r"Job for haproxy\.service failed"):
        lab.done_with(what)
    assert lab.cleanup() == [] and len(lab.commands) == 2  # the end of the run started it
    assert lab.cleanup() == [] and len(lab.commands) == 2  # once
    assert "systemctl start haproxy.service" in lab.commands[-1]
