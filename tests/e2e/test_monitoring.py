"""Monitoring on a live lab: the reference passes every monitoring check (the alerts really fire
and clear) and the base design still grades 105/105; each sabotage fails its check."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from provision.monitoring import RULES
from tests.e2e.conftest import (
    assert_base_design_passes,
    by_id,
    changed_count,
    check_json,
    lab_name_from,
    lab_with,
    wait_until,
)

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("monitoring")]
TARGETS = "curl -s 'http://127.0.0.1:9090/api/v1/targets?state=active'"


@pytest.fixture(scope="module")
def monitored_lab(tmp_path_factory):
    """The reference lab with monitoring built (e2e-mon, 192.168.83.0/24; another name and
    third octet with LAB_E2E_MONITORING=NAME:OCTET)."""
    name, octet = lab_name_from("LAB_E2E_MONITORING", "e2e-mon:83")
    with lab_with(tmp_path_factory, name, octet, "monitoring") as runner:
        yield runner


def test_reference_passes_and_the_base_design_still_grades(monitored_lab):
    lab = monitored_lab
    assert changed_count(lab("provision", "monitoring").stdout) == 0
    monitoring = check_json(lab, "monitoring")
    failures = [(c["id"], c["evidence"]) for c in monitoring["checks"] if c["status"] != "pass"]
    assert (monitoring["score"], monitoring["max_score"]) == (15, 15), failures
    # what the alert checks broke is back: Nginx, replication, no repair timer left behind
    assert lab.ssh("web-02", "systemctl is-active nginx").strip() == "active"
    status = lab.ssh("web-02", "sudo mysql -e 'SHOW REPLICA STATUS\\G'")
    assert "Slave_IO_Running: Yes" in status and "Slave_SQL_Running: Yes" in status
    timers = lab.ssh("web-02", "systemctl list-timers --all --no-pager")
    assert "webstack-lab-check" not in timers
    assert_base_design_passes(lab)


def test_the_quiz_sees_the_alert_that_monitoring_adds(monitored_lab):
    """`lab quiz`'s night-time question: with exercise 10 built, someone is told (an alert
    fires on lb-01), so the design's "nobody" is wrong on this lab and the lab says why."""
    asked = monitored_lab("quiz", "--json", "--answer", "monitoring=a", timeout=300)
    record = json.loads(asked.stdout)["results"][0]
    assert record["observed"]["value"] == "alerted", record
    assert "WebServerOutOfRotation" in record["observed"]["evidence"], record
    assert record["right"] is False and record["right_choice"] != record["design_choice"]
    assert monitored_lab.ssh("web-02", "systemctl is-active nginx").strip() == "active"


def test_a_prometheus_just_restarted_is_given_time_for_its_first_scrapes(monitored_lab):
    """Restarted with its default 15 s scrape interval, Prometheus lists no target for about
    5 s and reads each within 15 s more: the check waits for that and passes."""
    lab = monitored_lab
    config = "/etc/prometheus/prometheus.yml"
    try:
        lab.ssh(
            "lb-01",
            f"sudo sed -i 's/scrape_interval: .*/scrape_interval: 15s/' {config} "
            "&& sudo systemctl restart prometheus",
        )
        result = by_id(check_json(lab, "monitoring.targets"))["monitoring.targets"]
        assert result["status"] == "pass", (result["evidence"], result["seconds"])
    finally:
        assert changed_count(lab("provision", "monitoring").stdout) > 0


@dataclass(frozen=True)
class Sabotage:
    name: str
    host: str
    breaks: str
    fails: str  # the check that must fail
    evidence: str  # words its evidence must contain
    restores: str = ""  # shell on host; empty: `lab provision monitoring` repairs it
    settle: str = ""  # shell on lb-01 whose output shows Prometheus saw the breakage


SABOTAGES = [
    Sabotage(
        "a target down",
        "web-02",
        "sudo systemctl stop prometheus-node-exporter",
        "monitoring.targets",
        "web-02's node exporter target",
        restores="sudo systemctl start prometheus-node-exporter",
        settle=TARGETS,
    ),
    Sabotage(
        "an alert rule that never fires",
        "lb-01",
        f"sudo sed -i 's/expr: haproxy_server_status.*/expr: vector(0) > 1/' {RULES} "
        "&& sudo systemctl reload prometheus",
        "monitoring.rotation-alert",
        "no alert fired",
    ),
    Sabotage(
        "Prometheus stopped",
        "lb-01",
        "sudo systemctl stop prometheus",
        "monitoring.targets",
        "no Prometheus process is listening",
        restores="sudo systemctl start prometheus",
    ),
]


@pytest.mark.parametrize("sabotage", SABOTAGES, ids=lambda s: s.name)
def test_each_sabotage_fails_its_check(monitored_lab, sabotage):
    lab = monitored_lab
    try:
        lab.ssh(sabotage.host, sabotage.breaks)
        if sabotage.settle:  # the next scrape shows the exporter down
            wait_until(lambda: '"health":"down"' in lab.ssh("lb-01", sabotage.settle), 20, 0.5)
        result = by_id(check_json(lab, sabotage.fails))[sabotage.fails]
        assert result["status"] == "fail", result
        assert sabotage.evidence in result["evidence"], result["evidence"]
    finally:
        if sabotage.restores:
            lab.ssh(sabotage.host, sabotage.restores, check=False)
            if sabotage.settle:  # the next case starts once Prometheus has seen it back
                wait_until(
                    lambda: '"health":"down"' not in lab.ssh("lb-01", sabotage.settle), 30, 0.5
                )
        else:
            assert changed_count(lab("provision", "monitoring").stdout) > 0
