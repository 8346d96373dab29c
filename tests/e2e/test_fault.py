"""`lab fault` on the reference lab: each scenario's outcome in numbers, restores that hold
after Ctrl-C and after a crash, and a lab that passes `lab check` afterwards."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lab.faults.watch import TIMEOUT
from tests.e2e.conftest import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("reference")]

SECONDS = "8"


def marker(lab) -> Path:
    return Path("/var/lib/webstack-lab/labs") / lab.name / "fault.json"


def fault(lab, scenario: str) -> dict:
    """`lab fault SCENARIO --seconds 8 --json`; restored afterwards even when it fails."""
    try:
        result = lab("fault", scenario, "--seconds", SECONDS, "--json", timeout=180)
    finally:
        if marker(lab).exists():
            lab("fault", "--restore", check=False)
    summary = json.loads(result.stdout)
    assert summary["scenario"] == scenario
    # about 10 a second for 8 seconds were sent; with lb-01 down, those still waiting at the
    # restore are answered after it and counted apart from the fault's own
    outside = summary["outside_the_fault"]
    sent = sum(outside[part]["requests"] for part in outside) + summary["requests"]
    assert sent >= 60, summary
    assert summary["restored"] is True, summary
    assert not marker(lab).exists()
    return summary


def after_detection(summary: dict) -> list[dict]:
    """The per-second buckets that began after the second in which the load balancer noticed."""
    detected = summary["seconds_to_detect"]
    assert detected is not None, summary
    return [b for b in summary["per_second"] if b["second"] >= math.floor(detected) + 1]


def assert_all_succeed(buckets: list[dict], summary: dict) -> None:
    assert buckets, summary
    assert all(b["succeeded"] == b["requests"] for b in buckets), summary["per_second"]


def test_web_01_down_site_stays_up(provisioned_lab):
    summary = fault(provisioned_lab, "web-01-down")
    assert 0 < summary["seconds_to_detect"] <= 6, summary
    assert_all_succeed(after_detection(summary), summary)
    assert set(summary["served"]) == {"web-02"}, summary
    assert summary["seconds_to_recover"] is not None


def test_web_02_nginx_site_stays_up(provisioned_lab):
    summary = fault(provisioned_lab, "web-02-nginx")
    assert 0 < summary["seconds_to_detect"] <= 5, summary
    assert_all_succeed(after_detection(summary), summary)
    assert summary["served"].get("web-01", 0) > summary["served"].get("web-02", 0)


def test_app_01_site_stays_up(provisioned_lab):
    summary = fault(provisioned_lab, "app-01")
    assert 0 < summary["seconds_to_detect"] <= 5, summary
    assert_all_succeed(after_detection(summary), summary)


def test_lb_01_down_site_is_gone(provisioned_lab):
    summary = fault(provisioned_lab, "lb-01-down")
    # None succeeds once lb-01 is stopped (in_place), among requests that ended before the
    # restore: one sent less than TIMEOUT before it may still be waiting (SYN retries) when
    # lb-01 comes back, and then be answered.
    settled = summary["seconds"] - TIMEOUT - 1
    down = [
        b for b in summary["per_second"] if math.ceil(summary["in_place"]) <= b["second"] <= settled
    ]
    assert len(down) >= 3 and all(b["succeeded"] == 0 for b in down), summary["per_second"]
    early = sum(b["succeeded"] for b in summary["per_second"] if b["second"] <= settled)
    assert early <= 10 * summary["in_place"] + 2, summary
    assert summary["seconds_to_detect"] is None
    # the site came back only once lb-01 did
    assert summary["seconds_to_recover"] >= summary["seconds"], summary


def test_primary_down_reads_work_writes_fail(provisioned_lab):
    summary = fault(provisioned_lab, "primary-down")
    reads, writes = summary["reads"], summary["writes"]
    assert reads["requests"] > 0 and reads["succeeded"] == reads["requests"], summary
    assert writes["requests"] > 0 and writes["succeeded"] == 0, summary
    assert set(summary["served"]) == {"web-01", "web-02"}  # reads on both servers
    assert summary["seconds_to_recover"] >= summary["seconds"]  # writes came back with it


def test_replication_cut_lag_then_catch_up(provisioned_lab):
    summary = fault(provisioned_lab, "replication-cut")
    assert summary["failed"] == 0, summary
    assert summary["writes"]["succeeded"] > 0
    assert summary["replica_behind_max"] >= 3, summary
    assert summary["seconds_to_catch_up"] is not None and summary["seconds_to_catch_up"] <= 10


def test_slow_web_02_round_robin_does_not_care(provisioned_lab):
    summary = fault(provisioned_lab, "slow-web-02")
    assert summary["failed"] == 0, summary
    assert summary["seconds_to_detect"] is None, summary  # HAProxy never took it out
    served, latency = summary["served"], summary["latency_ms"]
    assert served["web-02"] >= 0.4 * summary["requests"], summary
    assert latency["web-02"] > 3 * latency["web-01"] and latency["web-02"] >= 50, summary


def start_fault(lab, scenario: str) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-m", "lab", "fault", scenario, "--seconds", "60", "--json"],
        env=lab.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # as in a terminal: a test runner started in the background may ignore SIGINT
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    wait_until(lambda: "inactive" in nginx_state(lab), timeout=30)
    return process


def nginx_state(lab) -> str:
    return lab.ssh("web-02", "systemctl is-active nginx || true")


def test_ctrl_c_restores(provisioned_lab):
    process = start_fault(provisioned_lab, "web-02-nginx")
    try:
        time.sleep(1)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=90)
        assert process.returncode == 130, err
        assert json.loads(out)["interrupted"] is True
        assert nginx_state(provisioned_lab).strip() == "active"
        assert not marker(provisioned_lab).exists()
    finally:
        process.kill()
        provisioned_lab("fault", "--restore", check=False)


def test_restore_after_a_crash(provisioned_lab):
    process = start_fault(provisioned_lab, "web-02-nginx")
    try:
        process.kill()  # no chance to restore: the marker says what to undo
        process.wait(timeout=10)
        assert marker(provisioned_lab).exists()
        result = provisioned_lab("fault", "--restore")
        assert "restored web-02-nginx" in result.stdout
        assert nginx_state(provisioned_lab).strip() == "active"
        assert "no fault is active" in provisioned_lab("fault", "--restore").stdout
    finally:
        provisioned_lab("fault", "--restore", check=False)


def test_lab_passes_check_after_the_faults(provisioned_lab):
    result = provisioned_lab("check", check=False)
    assert result.returncode == 0, result.stdout
