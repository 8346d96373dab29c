"""The firewall on a live lab: the reference (ufw) passes every firewall check and the base
design still grades 105/105 behind it; each sabotage fails its check; a least-privilege nftables
firewall without ufw (no 3306 from the primary to the replica) passes too."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from lab.observe.live import connect_state
from tests.e2e.conftest import (
    LabRunner,
    assert_base_design_passes,
    assert_exercise_walk,
    by_id,
    changed_count,
    check_json,
    lab_name_from,
    lab_with,
)

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("firewall")]


@pytest.fixture(scope="module")
def firewalled_lab(tmp_path_factory):
    """The reference lab with the firewall built (e2e-fw, 192.168.81.0/24; another with
    LAB_E2E_FIREWALL=NAME:OCTET)."""
    name, octet = lab_name_from("LAB_E2E_FIREWALL", "e2e-fw:81")
    with lab_with(tmp_path_factory, name, octet, "firewall") as runner:
        yield runner


def test_reference_passes_and_the_base_design_still_grades(firewalled_lab):
    lab = firewalled_lab
    firewall = check_json(lab, "firewall")
    assert firewall["passed"] == 4 and firewall["score"] == 20, firewall
    # again at once: the ports the last run's listeners served are in TIME_WAIT, still free
    again = check_json(lab, "firewall")
    assert again["passed"] == 4, [(c["id"], c["evidence"]) for c in again["checks"]]
    # the machine is kept from the web servers, so the base checks go through lb-01
    assert connect_state(lab.address("web-01"), 80, 2) != "open"
    assert_base_design_passes(lab)


@dataclass(frozen=True)
class Sabotage:
    name: str
    host: str
    breaks: str
    restores: str
    fails: str  # the check that must fail
    evidence: str  # words its evidence must contain ({port}: any port number)

    def found_in(self, text: str) -> bool:
        return bool(re.search(re.escape(self.evidence).replace(r"\{port\}", r"\d+"), text))


def sabotages(lab: LabRunner) -> list[list[Sabotage]]:
    """Rounds of sabotages on different hosts, each round graded by one check run (each
    sabotage's evidence names its own host)."""
    lb, web2 = lab.address("lb-01"), lab.address("web-02")
    replication = f"from {web2} to any port 3306 proto tcp"
    second = lab.address("web-01").rpartition(".")[0] + ".50"  # a second address of web-01's
    but_3306 = f"from {lb} proto tcp to any port 1:3305,3307:65535"
    return [
        [
            Sabotage(
                "port left open",
                "web-01",
                "sudo ufw allow 3306/tcp",
                "sudo ufw delete allow 3306/tcp",
                "firewall.closed",
                "web-01:3306 (MariaDB) from this machine, lb-01: open",
            ),
            Sabotage(
                "default allow",
                "lb-01",
                "sudo ufw default allow incoming",
                "sudo ufw default deny incoming",
                "firewall.default-deny",
                "lb-01:{port}, {port}, {port}, {port}, {port} and {port} more (free ports the "
                "grader listened on) from this machine, web-01, web-02: open",
            ),
            Sabotage(
                "low ports open",
                "web-02",
                "sudo ufw allow 1024:32767/tcp",
                "sudo ufw delete allow 1024:32767/tcp",
                "firewall.default-deny",
                "{port} more (free ports the grader listened on) from this machine, lb-01, "
                "web-01: open; the design opens them to no one",
            ),
        ],
        [
            Sabotage(
                "replication blocked",
                "web-01",
                f"sudo ufw delete allow {replication}",
                f"sudo ufw allow {replication}",
                "firewall.internal",
                "web-01:3306 (replication) from web-02: dropped",
            ),
            Sabotage(
                "no firewall",
                "web-02",
                "sudo ufw disable",
                "sudo ufw --force enable",
                "firewall.closed",
                "web-02:80 (Nginx) from this machine, web-01: open",
            ),
            Sabotage(
                "stats and exporter open",
                "lb-01",
                "sudo ufw allow 8404:8405/tcp",
                "sudo ufw delete allow 8404:8405/tcp",
                "firewall.closed",
                "lb-01:8404 (HAProxy stats) from this machine: open",
            ),
            Sabotage(
                "Prometheus open",
                "lb-01",
                "sudo ufw allow 9090/tcp",
                "sudo ufw delete allow 9090/tcp",
                "firewall.closed",
                "lb-01:9090 (Prometheus) from this machine: open",
            ),
        ],
        [
            Sabotage(
                "allow by default, high ports denied, a service on 873",
                "lb-01",
                "sudo ufw default allow incoming && sudo ufw deny 1024:65535/tcp && "
                "sudo systemd-run --unit lab-e2e-873 python3 -m http.server 873 && sleep 1",
                "sudo systemctl stop lab-e2e-873; sudo ufw delete deny 1024:65535/tcp && "
                "sudo ufw default deny incoming",
                "firewall.default-deny",
                "lb-01:873 (rsync's port, in no host's design) from this machine, web-01, "
                "web-02: open (a service listens there)",
            ),
            Sabotage(
                "a script that opens 2222",
                "web-01",
                "sudo ufw allow 2222/tcp",
                "sudo ufw delete allow 2222/tcp",
                "firewall.default-deny",
                "web-01:2222 (a second SSH's port, in no host's design) "
                "from this machine, lb-01, web-02: open",
            ),
            Sabotage(  # without a firewall nothing is admitted: everything merely answers
                "no firewall, public",
                "web-02",
                "sudo ufw disable",
                "sudo ufw --force enable",
                "firewall.public",
                "web-02: nothing the grader tried was blocked",
            ),
            Sabotage(
                "no firewall, internal",
                "web-02",
                "sudo ufw disable",
                "sudo ufw --force enable",
                "firewall.internal",
                "web-02: nothing the grader tried was blocked",
            ),
        ],
        [  # what a reader of the grader could open when only samples were tried
            Sabotage(
                "every port but 3306 open to the balancer",
                "web-01",
                f"sudo ufw allow {but_3306}",
                f"sudo ufw delete allow {but_3306}",
                "firewall.default-deny",
                "{port} more (free ports the grader listened on) from lb-01: open",
            ),
            Sabotage(
                "a second address open to everyone",
                "web-01",
                f"sudo ip addr add {second}/24 dev eth0 && sudo ufw allow to {second}",
                f"sudo ufw delete allow to {second}; sudo ip addr del {second}/24 dev eth0",
                "firewall.closed",
                f"web-01:80 at {second} (Nginx) from this machine, web-02: open",
            ),
            Sabotage(
                "every UDP port open",
                "web-02",
                "sudo ufw allow 1:65535/udp",
                "sudo ufw delete allow 1:65535/udp",
                "firewall.default-deny",
                "{port} more/udp (free ports the grader listened on) from this machine, lb-01, "
                "web-01: open",
            ),
            Sabotage(
                "IPv6 let in",
                "web-02",
                "sudo ip6tables -I INPUT -j ACCEPT",
                "sudo ip6tables -D INPUT -j ACCEPT",
                "firewall.default-deny",
                "{port} more over IPv6 (free ports the grader listened on) from lb-01, "
                "web-01: open",
            ),
            Sabotage(
                "two thousand ports open",
                "lb-01",
                "sudo ufw allow 5000:6999/tcp",
                "sudo ufw delete allow 5000:6999/tcp",
                "firewall.default-deny",
                "{port} (free ports the grader listened on) from this machine, web-01, web-02: "
                "open; the design opens them to no one",
            ),
        ],
    ]


def test_each_sabotage_fails_its_check(firewalled_lab):
    lab = firewalled_lab
    for round_ in sabotages(lab):
        broken = []
        try:
            for sabotage in round_:
                lab.ssh(sabotage.host, sabotage.breaks)
                broken.append(sabotage)
            results = by_id(check_json(lab, "firewall"))
        finally:
            for sabotage in broken:
                lab.ssh(sabotage.host, sabotage.restores)
        for sabotage in round_:
            result = results[sabotage.fails]
            assert result["status"] == "fail", (sabotage.name, result)
            assert sabotage.found_in(result["evidence"]), (sabotage.name, result["evidence"])
    # every sabotage was undone exactly: the reference finds nothing to change
    assert changed_count(lab("provision", "firewall").stdout) == 0


def nft_ruleset(lab: LabRunner, host: str) -> str:
    """An nftables firewall like the reference but rejecting instead of dropping, and
    least-privilege: the replica (web-02) admits no 3306 at all."""
    lb, web2 = (lab.address(h) for h in ("lb-01", "web-02"))
    allowed = {
        "lb-01": ["tcp dport { 22, 53, 80, 443 } accept", "udp dport 53 accept"],
        "web-01": [
            "tcp dport 22 accept",
            f"ip saddr {lb} tcp dport {{ 80, 9100 }} accept",
            f"ip saddr {web2} tcp dport 3306 accept",
        ],
        "web-02": [
            "tcp dport 22 accept",
            f"ip saddr {lb} tcp dport {{ 80, 9100 }} accept",
        ],
    }[host]
    rules = "; ".join(["ct state established,related accept", "iif lo accept", *allowed, "reject"])
    return (
        "table inet labfw { chain input { type filter hook input priority 0; policy drop; "
        f"{rules}; }}; }}"
    )


def test_an_nftables_firewall_without_ufw_passes(firewalled_lab):
    lab = firewalled_lab
    try:
        for host in lab.hosts:
            lab.ssh(host, f"sudo ufw disable && echo '{nft_ruleset(lab, host)}' | sudo nft -f -")
        report = check_json(lab, "firewall", "web.nginx", "web.served-by")
    finally:
        for host in lab.hosts:
            lab.ssh(host, "sudo nft delete table inet labfw; sudo ufw --force enable", check=False)
    failures = [(c["id"], c["evidence"]) for c in report["checks"] if c["status"] != "pass"]
    assert not failures


def test_exercise_08_starts_without_a_firewall_and_its_solution_passes(firewalled_lab):
    assert_exercise_walk(firewalled_lab, "08")
