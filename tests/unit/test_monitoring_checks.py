"""The monitoring checks' judgement, on Prometheus API replies recorded from a lab built with
`lab provision monitoring` (tests/unit/fixtures/raw/prometheus-*.txt), on the observations the
checks recorded there, and on broken and differently built variants."""

from __future__ import annotations

import copy

import pytest

from checks import monitoring
from checks.base import CheckError
from lab.facts import prometheus
from provision.engine import render
from tests.helpers import judge, recorded
from tests.record import read_raw

HOSTS = {"lb-01": "192.168.205.10", "web-01": "192.168.205.11", "web-02": "192.168.205.12"}


def raw_json(name: str) -> dict:
    """The data of a recorded reply (status line, headers, JSON body), read as the grader does."""
    return prometheus.reply_data(read_raw(name))


def targets_observation(targets="prometheus-targets-lb-01", node="prometheus-query-node-lb-01"):
    """What TargetsUp.observe makes of recorded API replies (haproxy series, clocks, node names
    and request counts as the recorded observation has them)."""
    live = recorded("monitoring.targets")
    return {
        "host": "lb-01",
        "hosts": dict(HOSTS),
        "targets": prometheus.parse_targets(raw_json(targets)),
        "resolved": {},
        "node": prometheus.instances(raw_json(node)),
        "haproxy": ["192.168.205.10:8405"],
        "balancers": ["lb-01"],
        **{k: live[k] for k in ("skew", "nodename", "hostnames", "requests")},
    }


def with_urls(o: dict, replace: dict[str, str]) -> dict:
    """o with scrape URLs (and instances) rewritten, e.g. an address for a name."""
    o = copy.deepcopy(o)
    for t in o["targets"]:
        for old, new in replace.items():
            t["url"] = t["url"].replace(old, new)
    return o


class Answers:
    """A lab whose every command prints raw."""

    def __init__(self, raw: str):
        self.raw = raw

    def sh(self, host: str, command: str, check: bool = True) -> str:
        return self.raw


# -- what Prometheus says -----------------------------------------------------------------------
def test_a_reply_that_is_no_api_answer_says_what_came_back():
    raw = "HTTP/1.0 404 Not Found\r\nContent-Type: text/plain\r\n\r\n404 page not found\n"
    with pytest.raises(
        CheckError, match=r"lb-01: Prometheus's /api/v1/x did not answer \(HTTP/1.0 404"
    ):
        monitoring.api(Answers(raw), "lb-01", "127.0.0.1:9090", "x")


def test_targets_map_to_lab_hosts_by_address():
    assert monitoring.lab_host_of("192.168.205.12", HOSTS, {}, "lb-01") == "web-02"
    assert monitoring.lab_host_of("localhost", HOSTS, {}, "lb-01") == "lb-01"
    assert monitoring.lab_host_of("127.0.0.1", HOSTS, {}, "lb-01") == "lb-01"
    resolved = {"w2": ["192.168.205.12"]}
    assert monitoring.lab_host_of("w2", HOSTS, resolved, "lb-01") == "web-02"
    assert monitoring.lab_host_of("192.168.99.12", HOSTS, {}, "lb-01") is None


def test_an_alert_names_a_server_by_name_address_or_instance():
    alert = prometheus.parse_alerts(raw_json("prometheus-alerts-firing-lb-01"))[0]
    assert monitoring.names_any(alert, {"web-02"})
    assert not monitoring.names_any(alert, {"web-01", "192.168.205.11"})
    by_instance = {"labels": {"alertname": "Down", "instance": "192.168.205.12:80"}, "state": ""}
    assert monitoring.names_any(by_instance, {"192.168.205.12"})
    assert monitoring.describe_alert(alert).startswith("WebServerOutOfRotation {host=lb-01")


def test_label_values_naming_a_host_are_normalised():
    """Blackbox-style URLs, FQDNs with ports, upper case and IPv6 name the host they are."""
    for value, word in [
        ("http://192.168.205.12/", "192.168.205.12"),
        ("https://web-02.foobar.com:8443/health", "web-02"),
        ("web-02.foobar.com:9100", "web-02"),
        ("WEB-02.", "web-02"),
        ("[fd00::12]:9100", "fd00::12"),
        ("fd00::12", "fd00::12"),
        ("http://[fd00::12", ""),  # no valid URL: names nothing, never raises
    ]:
        assert monitoring.host_word(value) == word, value
        alert = {"labels": {"alertname": "Down", "target": value}, "state": "firing"}
        assert monitoring.names_any(alert, {"web-02", "192.168.205.12", "fd00::12"}) == bool(word)
    assert not monitoring.names_any(
        {"labels": {"alertname": "Down", "instance": "web-020.foobar.com:9100"}}, {"web-02"}
    )


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
    assert "web-02's node exporter target http://192.168.205.12:9100/metrics is down" in (
        verdict.evidence
    )
    assert "connection refused" in verdict.evidence


def test_targets_by_other_names_and_loopback_pass():
    """A correct build unlike the reference: host names that resolve, lb-01 as localhost."""
    o = with_urls(
        targets_observation(),
        {
            "192.168.205.11": "web-01",
            "192.168.205.12": "w2",
            "192.168.205.10:9100": "localhost:9100",
        },
    )
    o["resolved"] = {"web-01": ["192.168.205.11"], "w2": ["192.168.205.12"]}
    assert judge("monitoring.targets", o).passed


def test_fake_targets_that_are_not_the_lab_hosts_fail():
    """Static targets naming the hosts in labels only, all scraping the same local exporter."""
    o = with_urls(
        targets_observation(), {"192.168.205.11": "127.0.0.2", "192.168.205.12": "10.9.9.9"}
    )
    verdict = judge("monitoring.targets", o)
    assert not verdict.passed
    assert "no target scrapes node exporter on web-01 (192.168.205.11:9100)" in verdict.evidence


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
    assert "HAProxy target http://192.168.205.10:8405/metrics is down" in verdict.evidence


# -- the alerts ---------------------------------------------------------------------------------
def never_fired(o: dict) -> dict:
    never = {"fired": None, "fired_labels": None, "fire_seconds": None, "clear_seconds": None}
    return {**o, **never, "pending": []}


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
    assert "none names 192.168.205.12 or web-02" in verdict.evidence


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
    assert '"192.168.205.10:8405"' in config
    rules = render("monitoring/rules.yml.j2")
    assert 'haproxy_server_status{state="UP"} == 0' in rules
    assert "{{ $labels.server }}" in rules  # Prometheus's own template, not Jinja's


# -- liveness of the exporters ------------------------------------------------------------------
def test_a_static_metrics_file_on_the_node_port_fails():
    """A file served on :9100 keeps its node_time_seconds while the scrape time moves on."""
    o = targets_observation()
    o["skew"]["192.168.205.12:9100"] = "-5213.7"
    verdict = judge("monitoring.targets", o)
    assert not verdict.passed
    assert "web-02's node exporter target http://192.168.205.12:9100/metrics is not live" in (
        verdict.evidence
    )
    assert "-5214 s off the scrape time" in verdict.evidence
    del o["skew"]["192.168.205.12:9100"]
    assert "no node_time_seconds" in judge("monitoring.targets", o).evidence


def test_one_exporter_scraped_for_every_host_fails_on_its_node_name():
    o = targets_observation()
    o["nodename"]["192.168.205.12:9100"] = "lb-01"
    verdict = judge("monitoring.targets", o)
    assert not verdict.passed
    assert "nodename 'lb-01', but web-02 is 'web-02'" in verdict.evidence
    fqdn = targets_observation()  # a host whose kernel name is its FQDN: the same host
    fqdn["nodename"]["192.168.205.12:9100"] = "web-02.foobar.com"
    assert judge("monitoring.targets", fqdn).passed


def test_an_haproxy_exporter_that_does_not_count_the_graders_requests_fails():
    o = targets_observation()
    (url,) = o["requests"]["before"]
    o["requests"]["after"][url] = o["requests"]["before"][url]
    verdict = judge("monitoring.targets", o)
    assert not verdict.passed
    assert f"{url}'s haproxy_frontend_http_requests_total grew by 0" in verdict.evidence
    o["requests"] = {"sent": 3, "before": {url: None}, "after": {url: None}}
    assert "has no haproxy_frontend_http_requests_total" in judge("monitoring.targets", o).evidence
    o["requests"] = {"sent": 3, "before": {}, "after": {}}
    assert "no HAProxy target over http://" in judge("monitoring.targets", o).evidence


# -- which alert counts -------------------------------------------------------------------------
WORDS = sorted({*HOSTS, *HOSTS.values()})


def alert(name: str, **labels) -> dict:
    return {"labels": {"alertname": name, **labels}, "state": "firing"}


def test_a_templated_label_does_not_make_a_new_alert():
    """An always-true rule with labels {server: web-02, v: "{{ $value }}"}: a new label set at
    every evaluation, but the same alert about the same host as before the break."""
    before = [alert("Fake", server="web-02", v="1795899461.1")]
    later = alert("Fake", server="web-02", v="1795899476.1")
    assert not monitoring.counts(later, before, {"web-02"}, WORDS)
    o = recorded("monitoring.rotation-alert")
    o.update(before=[a["labels"] for a in before], fired_labels=later["labels"])
    o["fired"] = monitoring.describe_alert(later)
    verdict = judge("monitoring.rotation-alert", o)
    assert not verdict.passed and "already active before the grader broke" in verdict.evidence


def test_an_alert_of_the_same_name_about_another_host_still_counts():
    """web-01 was already out of the rotation: its alert does not hide the one about web-02."""
    before = [alert("WebServerOutOfRotation", server="web-01")]
    assert monitoring.counts(
        alert("WebServerOutOfRotation", server="web-02"), before, {"web-02"}, WORDS
    )
    o = recorded("monitoring.rotation-alert")
    o["before"] = [before[0]["labels"]]
    assert judge("monitoring.rotation-alert", o).passed


def test_the_replication_alert_must_name_the_replica_or_the_primary():
    o = recorded("monitoring.replication-alert")
    o["fired_labels"] = {"alertname": "DiskFull", "mountpoint": "/"}
    o["fired"] = "DiskFull {mountpoint=/}"
    verdict = judge("monitoring.replication-alert", o)
    assert not verdict.passed
    assert "none names 192.168.205.11 or 192.168.205.12 or web-01 or web-02" in verdict.evidence
    by_primary = recorded("monitoring.replication-alert")  # the primary's view, by its FQDN
    by_primary["fired_labels"] = {"alertname": "ReplicaGone", "instance": "web-01.foobar.com:9104"}
    assert judge("monitoring.replication-alert", by_primary).passed


# -- what the grader stops and restores ---------------------------------------------------------
def test_only_a_web_servers_own_service_is_stopped():
    assert monitoring.refusal("web-02", [("nginx", "nginx.service")] * 3) == ""
    assert monitoring.refusal("web-02", [("apache2", "apache2.service")]) == ""
    docker = monitoring.refusal("web-02", [("docker-proxy", "docker.service")])
    assert "held by docker-proxy (docker.service)" in docker and "will not stop it" in docker
    assert "nginx (session-3.scope)" in monitoring.refusal("web-02", [("nginx", "session-3.scope")])
    assert "nginx (no systemd unit)" in monitoring.refusal("web-02", [("nginx", "")])
    mixed = [("nginx", "nginx.service"), ("haproxy", "haproxy.service")]
    assert "will not stop it" in monitoring.refusal("web-02", mixed)
    assert "nothing listens on port 80" in monitoring.refusal("web-02", [])


def test_what_was_not_running_before_fails_without_being_touched():
    refused = "nothing listens on port 80 on web-02 before the check: ..."
    o = {"refused": refused, "victim": "web-02", "unit": "", "names": ["web-02"]}
    verdict = judge("monitoring.rotation-alert", o)
    assert not verdict.passed and verdict.evidence == refused
    o = {"refused": "replication was not running on web-02", "replica": "web-02", "names": []}
    assert not judge("monitoring.replication-alert", o).passed
