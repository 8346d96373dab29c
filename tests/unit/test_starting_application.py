"""An application server (re)started a moment ago binds its socket a little later, and forks its
workers later still: the grader reads the host's listeners again for a few seconds before it
says nothing listens there, and once more before it says the answering process holds nothing."""

from __future__ import annotations

import time

from checks.web import application_problem
from lab.core.topology import PACKAGED, load
from lab.facts import nginx, ss
from lab.facts.nginx import Target
from lab.observe import probes
from lab.observe.live import LiveLab
from tests.record import read_raw

APP = Target("proxy_pass", "127.0.0.1", 8000, "")


def lab_whose_listeners_appear_after(calls: int, monkeypatch) -> tuple[LiveLab, list[str]]:
    """A lab whose web-01 lists no listener for its first `calls` readings, then the recorded
    reference's (gunicorn on 127.0.0.1:8000)."""
    lab = LiveLab(load(PACKAGED), None)
    asked: list[str] = []

    def sh(host, command, sudo=False, check=True, timeout=15):
        asked.append(command)
        return read_raw("ss-web-01") if len(asked) > calls else ""

    monkeypatch.setattr(lab, "sh", sh)
    return lab, asked


def test_a_socket_bound_a_moment_later_is_found(monkeypatch):
    lab, asked = lab_whose_listeners_appear_after(3, monkeypatch)
    held = probes._held(lab, "web-01", [APP])
    assert [s.port for s in held["127.0.0.1:8000"]] == [8000]
    assert set(asked) == {ss.LISTENING} and len(asked) == 4
    assert probes.listeners(lab, "web-01") == ss.parse(read_raw("ss-web-01"))  # the run's view


def test_nothing_listening_is_said_after_a_few_seconds_and_a_held_target_at_once(monkeypatch):
    monkeypatch.setattr(probes, "STARTING_SECONDS", 0.6)
    lab, _ = lab_whose_listeners_appear_after(10_000, monkeypatch)
    started = time.monotonic()
    assert probes._held(lab, "web-01", [APP]) == {"127.0.0.1:8000": []}
    assert 0.5 < time.monotonic() - started < 2
    lab, asked = lab_whose_listeners_appear_after(0, monkeypatch)
    assert probes._held(lab, "web-01", [APP])["127.0.0.1:8000"] and len(asked) == 1


class Reply:
    """An answer of the application's to GET /api/status, as requests gives it."""

    def __init__(self, pid: int, number: int):
        self.status_code, self.headers = 200, {"Content-Type": "application/json"}
        self.body = {"pid": pid, "request_id": f"r{number}"}

    def json(self):
        return self.body


def lab_restarted_a_moment_ago(monkeypatch, answering: int) -> tuple[LiveLab, list[str]]:
    """web-01 whose listeners, as first read, show gunicorn's master alone on 127.0.0.1:8000
    (its workers forked since) and whose /api/status is answered by the process `answering`."""
    lab = LiveLab(load(PACKAGED), None)
    full = read_raw("ss-web-01")
    master_only = full.replace('("gunicorn",pid=2251,fd=5),("gunicorn",pid=2250,fd=5),', "")
    asked: list[str] = []

    def sh(host, command, sudo=False, check=True, timeout=15):
        asked.append(command)
        if command == nginx.DUMP:
            return read_raw("nginx-T-web-01")
        if command == ss.LISTENING:
            return master_only if asked.count(ss.LISTENING) == 1 else full
        return ""

    replies = iter(range(10))
    monkeypatch.setattr(lab, "sh", sh)
    monkeypatch.setattr(probes, "site_request", lambda *a, **k: Reply(answering, next(replies)))
    monkeypatch.setattr(probes, "_ask_directly", lambda *a: None)
    return lab, asked


def test_workers_forked_after_the_listeners_were_read_are_the_applications(monkeypatch):
    lab, asked = lab_restarted_a_moment_ago(monkeypatch, answering=2250)
    app = probes._application(lab, "web-01")
    assert ["gunicorn", 2250] in app["holders"]["127.0.0.1:8000"]
    assert application_problem("web-01", app) == ""
    assert asked.count(ss.LISTENING) == 2


def test_a_process_that_holds_no_forwarded_socket_still_fails_after_a_second_look(monkeypatch):
    lab, asked = lab_restarted_a_moment_ago(monkeypatch, answering=4242)
    problem = application_problem("web-01", probes._application(lab, "web-01"))
    assert "names pid 4242, which does not hold 127.0.0.1:8000" in problem
    assert asked.count(ss.LISTENING) == 2
