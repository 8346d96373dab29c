"""One check run at a time per lab: a second run waits instead of sweeping the first's changes."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager

import pytest

from checks.base import failed, passed
from checks.runner import run_checks
from lab.core.topology import PACKAGED, load
from lab.observe.live import LiveLab


@pytest.fixture
def inside(define_check):
    """A check that passes only while the lab is held."""
    return define_check(
        "t.inside",
        "servers",
        lambda self, lab: lab.held,
        lambda self, held: passed("held") if held else failed("not held"),
        title="runs while the lab is held",
    )


class FakeLab:
    held = False

    @contextmanager
    def exclusive(self):
        self.held = True
        yield
        self.held = False

    def sweep(self):
        assert self.held, "the sweep runs under the lock"

    def cleanup(self):
        assert self.held, "the cleanup runs under the lock"


def test_the_whole_run_holds_the_labs_lock(inside):
    lab = FakeLab()
    report = run_checks({inside.id: inside}, [inside], lab, "t")
    assert report.results[0].evidence == "held" and not lab.held


def test_a_second_run_on_the_same_lab_waits(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_HOME", str(tmp_path))
    topology = load(PACKAGED)
    first, second = LiveLab(topology, None), LiveLab(topology, None)
    order = []

    def hold():
        with first.exclusive():
            order.append("first in")
            time.sleep(0.5)
            order.append("first out")

    thread = threading.Thread(target=hold)
    thread.start()
    time.sleep(0.1)
    with second.exclusive():
        order.append("second in")
    thread.join()
    assert order == ["first in", "first out", "second in"]


def test_a_reader_of_the_replica_waits_for_the_end_of_its_pause():
    """A check that needs the replica running waits while another has it paused, and not
    longer; one stopped at the run's deadline stops waiting."""
    lab = LiveLab(load(PACKAGED), None)
    started = time.monotonic()
    lab.once_running("replica")  # nobody paused it
    assert time.monotonic() - started < 0.1

    waited = []

    def reader():
        began = time.monotonic()
        lab.once_running("replica")
        waited.append(time.monotonic() - began)

    with lab.pausing("replica"):
        thread = threading.Thread(target=reader)
        thread.start()
        time.sleep(0.3)
        assert thread.is_alive()
    thread.join(2)
    assert 0.25 <= waited[0] < 1.0

    with lab.pausing("replica"):
        thread = threading.Thread(target=reader)
        thread.start()
        time.sleep(0.1)
        lab.stop()
        thread.join(2)
        assert not thread.is_alive() and waited[1] < 0.5
