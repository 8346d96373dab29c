"""The monitoring checks' parsing and judgement, on Prometheus API replies recorded from a lab
built with `lab provision monitoring` (tests/unit/fixtures/raw/prometheus-*.txt), on the
observations the checks recorded there, and on broken and differently built variants."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from checks import monitoring
from checks.base import Check
from facts import ss
from provision.engine import render
from tests.record import read_raw

OBSERVATIONS = Path(__file__).parent / "fixtures" / "observations"
HOSTS = {"lb-01": "192.168.73.10", "web-01": "192.168.73.11", "web-02": "192.168.73.12"}


def raw_json(name: str) -> dict:
    return json.loads(read_raw(name))["data"]


def recorded(check_id: str) -> dict:
    return json.loads((OBSERVATIONS / f"{check_id}.json").read_text())


def judge(check_id: str, observation: dict):
    return Check.registry[check_id]().judge(observation)


def targets_observation(targets="prometheus-targets-lb-01", node="prometheus-query-node-lb-01"):
    """What TargetsUp.observe makes of recorded API replies (haproxy series as recorded)."""
    return {
        "host": "lb-01",
        "hosts": dict(HOSTS),
        "targets": monitoring.parse_targets(raw_json(targets)),
        "resolved": {},
        "node": monitoring.instances(raw_json(node)),
        "haproxy": ["192.168.73.10:8405"],
        "balancers": ["lb-01"],
    }


def with_urls(o: dict, replace: dict[str, str]) -> dict:
    """o with scrape URLs (and instances) rewritten, e.g. an address for a name."""
    o = copy.deepcopy(o)
    for t in o["targets"]:
        for old, new in replace.items():
            t["url"] = t["url"].replace(old, new)
    return o


# -- parsing --------------------------------------------------------------------------------
def test_prometheus_is_found_by_the_process_holding_the_socket():
    listeners = ss.parse(read_raw("ss-prometheus-lb-01"))
    assert monitoring.endpoint(listeners) == ("127.0.0.1:9090", ["prometheus"])
    fake = [ss.Listener("tcp", "*", 9090, (("python3", 812),))]
    assert monitoring.endpoint(fake) == (None, ["python3"])
    bound = [ss.Listener("tcp", "192.168.73.10", 9099, (("prometheus", 90),))]
    assert monitoring.endpoint(bound) == ("192.168.73.10:9099", [])


def test_recorded_replies_parse():
    targets = monitoring.parse_targets(raw_json("prometheus-targets-lb-01"))
    assert {t["url"] for t in targets} >= {
        "http://192.168.73.12:9100/metrics",
        "http://192.168.73.10:8405/metrics",
    }
    assert all(t["health"] == "up" for t in targets)
    rules = monitoring.parse_rules(raw_json("prometheus-rules-lb-01"))
    assert [r["name"] for r in rules][:2] == ["WebServerOutOfRotation", "ReplicationStopped"]
    assert all(r["health"] == "ok" for r in rules)
    (alert,) = monitoring.parse_alerts(raw_json("prometheus-alerts-firing-lb-01"))
    assert alert["state"] == "firing" and alert["labels"]["server"] == "web-02"
    assert monitoring.instances(raw_json("prometheus-query-node-down-lb-01")) == [
        "192.168.73.10:9100",
        "192.168.73.11:9100",
    ]


def test_targets_map_to_lab_hosts_by_address():
    assert monitoring.target_host("http://192.168.73.12:9100/metrics") == ("192.168.73.12", 9100)
    assert monitoring.lab_host_of("192.168.73.12", HOSTS, {}, "lb-01") == "web-02"
    assert monitoring.lab_host_of("localhost", HOSTS, {}, "lb-01") == "lb-01"
    assert monitoring.lab_host_of("127.0.0.1", HOSTS, {}, "lb-01") == "lb-01"
    resolved = {"w2": ["192.168.73.12"]}
    assert monitoring.lab_host_of("w2", HOSTS, resolved, "lb-01") == "web-02"
    assert monitoring.lab_host_of("192.168.99.12", HOSTS, {}, "lb-01") is None


def test_an_alert_names_a_server_by_name_address_or_instance():
    alert = monitoring.parse_alerts(raw_json("prometheus-alerts-firing-lb-01"))[0]
    assert monitoring.names_any(alert, {"web-02"})
    assert not monitoring.names_any(alert, {"web-01", "192.168.73.11"})
    by_instance = {"labels": {"alertname": "Down", "instance": "192.168.73.12:80"}, "state": ""}
    assert monitoring.names_any(by_instance, {"192.168.73.12"})
    assert monitoring.describe_alert(alert).startswith("WebServerOutOfRotation {host=lb-01")


# -- monitoring.targets -------------------------------------------------------------------------
def test_recorded_observations_pass():
    for check_id in (
        "monitoring.targets",
        "monitoring.rotation-alert",
        "monitoring.replication-alert",
    ):
        verdict = judge(check_id, recorded(check_id))
        assert verdict.passed, (check_id, verdict.evidence)


def test_reference_targets_pass_and_name_every_host():
    verdict = judge("monitoring.targets", targets_observation())
    assert verdict.passed, verdict.evidence
    assert "lb-01, web-01, web-02" in verdict.evidence and ":8405" in verdict.evidence


def test_a_node_exporter_down_fails_naming_the_host_and_the_error():
    o = targets_observation(
        "prometheus-targets-node-down-lb-01", "prometheus-query-node-down-lb-01"
    )
    verdict = judge("monitoring.targets", o)
    assert not verdict.passed
    assert "web-02's node exporter target http://192.168.73.12:9100/metrics is down" in (
        verdict.evidence
    )
    assert "connection refused" in verdict.evidence


def test_targets_by_other_names_and_loopback_pass():
    """A correct build unlike the reference: host names that resolve, lb-01 as localhost."""
    o = with_urls(
        targets_observation(),
        {"192.168.73.11": "web-01", "192.168.73.12": "w2", "192.168.73.10:9100": "localhost:9100"},
    )
    o["resolved"] = {"web-01": ["192.168.73.11"], "w2": ["192.168.73.12"]}
    assert judge("monitoring.targets", o).passed


def test_fake_targets_that_are_not_the_lab_hosts_fail():
    """Static targets naming the hosts in labels only, all scraping the same local exporter."""
    o = with_urls(
        targets_observation(), {"192.168.73.11": "127.0.0.2", "192.168.73.12": "10.9.9.9"}
    )
    verdict = judge("monitoring.targets", o)
    assert not verdict.passed
    assert "no target scrapes node exporter on web-01 (192.168.73.11:9100)" in verdict.evidence


def test_no_haproxy_exporter_fails():
    o = targets_observation()
    o["targets"] = [t for t in o["targets"] if ":8405" not in t["url"]]
    o["haproxy"] = []
    verdict = judge("monitoring.targets", o)
    assert not verdict.passed and "HAProxy's metrics" in verdict.evidence
    down = targets_observation()
    for t in down["targets"]:
        if ":8405" in t["url"]:
            t.update(health="down", error="connection refused")
    down["haproxy"] = []
    verdict = judge("monitoring.targets", down)
    assert not verdict.passed
    assert "HAProxy target http://192.168.73.10:8405/metrics is down" in verdict.evidence


# -- the alerts ---------------------------------------------------------------------------------
def never_fired(o: dict) -> dict:
    return {**o, "fired": None, "fire_seconds": None, "clear_seconds": None, "pending": []}


def test_an_alert_that_never_fires_fails_listing_the_rules():
    o = never_fired(recorded("monitoring.rotation-alert"))
    o["rules"] = [{"name": "WebServerOutOfRotation", "query": "vector(0) > 1", "health": "ok"}]
    o["rules"][0]["error"] = ""
    o["waited"] = 35.3  # not even pending after PENDING_WITHIN: the grader stopped waiting
    verdict = judge("monitoring.rotation-alert", o)
    assert not verdict.passed
    expected = "nginx.service stopped on web-02 for 35 s: no alert fired or was even pending"
    assert expected in verdict.evidence
    assert "WebServerOutOfRotation" in verdict.evidence


def test_alerts_that_fired_about_something_else_are_named():
    o = never_fired(recorded("monitoring.rotation-alert"))
    o["other"] = ["BackendDegraded {proxy=web}"]
    verdict = judge("monitoring.rotation-alert", o)
    assert not verdict.passed
    assert "BackendDegraded {proxy=web}" in verdict.evidence
    assert "none names 192.168.73.12 or web-02" in verdict.evidence


def test_an_alert_that_does_not_clear_fails():
    o = {**recorded("monitoring.replication-alert"), "clear_seconds": None}
    verdict = judge("monitoring.replication-alert", o)
    assert not verdict.passed and "still active 60 s after the repair" in verdict.evidence


def test_no_rules_and_broken_rules_fail():
    o = {**never_fired(recorded("monitoring.replication-alert")), "rules": []}
    assert "no alerting rule" in judge("monitoring.replication-alert", o).evidence
    o["rules"] = [{"name": "R", "query": "x", "health": "err", "error": "bad_data: parse error"}]
    verdict = judge("monitoring.replication-alert", o)
    assert not verdict.passed and "R (bad_data: parse error)" in verdict.evidence


def test_a_pending_alert_and_alerts_firing_before_are_named():
    o = never_fired(recorded("monitoring.rotation-alert"))
    o["pending"] = ["WebServerOutOfRotation {server=web-02}"]
    o["already"] = ["WebServerOutOfRotation {server=web-01}"]
    verdict = judge("monitoring.rotation-alert", o)
    assert not verdict.passed
    assert "pending but not firing yet: WebServerOutOfRotation {server=web-02}" in (
        verdict.evidence
    )
    assert "firing before the grader broke anything" in verdict.evidence


# -- the reference's configuration ------------------------------------------------------------
def test_reference_rules_and_targets_render():
    class Host:
        def __init__(self, name, address):
            self.name, self.address = name, address

    hosts = [Host(n, a) for n, a in HOSTS.items()]
    config = render(
        "monitoring/prometheus.yml.j2",
        rules="/etc/prometheus/webstack-rules.yml",
        hosts=hosts,
        balancers=hosts[:1],
        exporter_port=8405,
    )
    for address in HOSTS.values():
        assert f'"{address}:9100"' in config
    assert '"192.168.73.10:8405"' in config
    rules = render("monitoring/rules.yml.j2")
    assert 'haproxy_server_status{state="UP"} == 0' in rules
    assert "{{ $labels.server }}" in rules  # Prometheus's own template, not Jinja's
