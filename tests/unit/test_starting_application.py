"""An application server (re)started a moment ago binds its socket a little later: the grader
reads the host's listeners again for a few seconds before it says nothing listens there."""

from __future__ import annotations

import time

from lab.core.topology import PACKAGED, load
from lab.facts import ss
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
