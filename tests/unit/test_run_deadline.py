"""A run is bounded: a check still running at the deadline fails with what it waited for, the
others are graded, the run returns, and what the late check changed is undone."""

from __future__ import annotations

import http.server
import threading
import time

import pytest

from checks.base import Status, failed, passed
from checks.runner import GRACE, not_run_evidence, run_checks
from lab.core.topology import PACKAGED, load
from lab.observe.live import LiveLab


class TrickleHandler(http.server.BaseHTTPRequestHandler):
    """Nginx with `limit_rate 500;`: a page sent a few bytes at a time."""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "100000")
        self.end_headers()
        try:
            for _ in range(100000 // 50):
                self.wfile.write(b"x" * 50)
                self.wfile.flush()
                time.sleep(0.1)
        except OSError:
            pass

    def log_message(self, *args):
        pass


@pytest.fixture
def trickle():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), TrickleHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


class QuietLab(LiveLab):
    """The real LiveLab without hosts: nothing to sweep."""

    def sweep(self):
        pass


def make_checks(define_check, url: str, undone: list):
    """A check of a slow page (undone by a cleanup), a quick one, and one after each."""

    def slow(self, lab):
        lab.on_cleanup("slow change", lambda: undone.append("slow change"))
        return lab.http(url).status_code

    def quick(self, lab):
        return True

    def quick_and_fine(self, ok):
        return passed("quick and fine")

    return [
        define_check("t.slow", "web server", slow, lambda self, status: passed(f"HTTP {status}")),
        define_check("t.quick", "servers", quick, quick_and_fine),
        define_check("t.after-slow", "servers", quick, quick_and_fine, needs=("t.slow",)),
        define_check("t.after-quick", "servers", quick, quick_and_fine, needs=("t.quick",)),
    ]


def test_a_slow_check_is_cut_off_at_the_deadline_and_the_others_are_graded(
    trickle, tmp_path, monkeypatch, define_check
):
    monkeypatch.setenv("LAB_HOME", str(tmp_path))
    undone: list = []
    classes = make_checks(define_check, trickle, undone)
    catalogue = {cls.id: cls for cls in classes}
    started = time.monotonic()
    report = run_checks(catalogue, classes, QuietLab(load(PACKAGED), None), "t", deadline=1)
    took = time.monotonic() - started
    results = {r.id: r for r in report.results}
    assert took < 1 + GRACE + 1, took  # the trickle alone would take minutes
    slow = results["t.slow"]
    assert slow.status is Status.FAIL
    assert slow.evidence.startswith("did not finish within 1 s"), slow.evidence
    assert f"GET {trickle}" in slow.evidence
    assert results["t.quick"].status is Status.PASS
    assert results["t.after-quick"].status is Status.PASS
    assert results["t.after-slow"].status is Status.NOT_RUN
    assert "t.slow did not pass: did not finish within 1 s" in results["t.after-slow"].evidence
    assert undone == ["slow change"]


@pytest.fixture
def failing_chain(define_check):
    """t.top needs t.middle, which needs t.down, which fails with a two-line reason."""

    def observe(self, lab):
        return None

    def judge(self, _):
        return failed("lb-01: haproxy is not running ([ALERT] unknown keyword 'balanse')\nmore")

    return tuple(
        define_check(check_id, "load balancer", observe, judge, title="the balancer", needs=needs)
        for check_id, needs in (("t.down", ()), ("t.middle", ("t.down",)), ("t.top", ("t.middle",)))
    )


class NoLab:
    def sweep(self):
        pass

    def cleanup(self):
        pass


def test_a_check_not_run_shows_the_evidence_of_the_failure_at_the_root(failing_chain):
    catalogue = {c.id: c for c in failing_chain}
    report = run_checks(catalogue, [failing_chain[-1]], NoLab(), "t")
    results = {r.id: r for r in report.results}
    expected = (
        "not run: t.down did not pass: lb-01: haproxy is not running "
        "([ALERT] unknown keyword 'balanse')"
    )
    assert results["t.middle"].evidence == expected
    assert results["t.top"].evidence == expected  # the root, not "t.middle did not pass"


def test_the_not_run_evidence_reaches_a_grade_that_omits_the_prerequisite(failing_chain):
    from checks.report import to_dict
    from lab.grading.class_run import graded_checks

    catalogue = {c.id: c for c in failing_chain}
    report = run_checks(catalogue, [failing_chain[-1]], NoLab(), "t")
    graded = graded_checks(to_dict(report)["checks"], {"t.top": 10})
    assert [c["id"] for c in graded] == ["t.top"]
    assert "[ALERT] unknown keyword 'balanse'" in graded[0]["evidence"]


def test_not_run_evidence_without_any(failing_chain):
    result = failing_chain[0]().result(Status.FAIL, "")
    assert not_run_evidence(result) == "not run: t.down did not pass"
