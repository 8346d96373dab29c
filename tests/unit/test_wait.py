"""lab.core.wait: the one deadline loop."""

import socket
import time

import pytest

from lab.core.errors import LabError
from lab.core.wait import Deadline, until
from lab.remote import connection
from lab.remote.connection import HostSpec, wait_for_ssh


def test_until_returns_the_first_truthy_value_without_waiting_longer():
    calls = iter([0, "", "ready", "later"])
    started = time.monotonic()
    assert until(lambda: next(calls), 5.0, 0.01) == "ready"
    assert time.monotonic() - started < 1.0


def test_until_gives_the_last_value_once_the_deadline_passes():
    started = time.monotonic()
    assert until(lambda: [], 0.3, 0.05) == []
    assert 0.3 <= time.monotonic() - started < 1.0


def test_a_deadline_that_has_passed_still_gives_one_try():
    assert list(Deadline(-1).ticks(0.01)) == [0.0]


def test_a_deadline_counts_from_the_start_it_is_given():
    assert Deadline(10, start=time.monotonic() - 11).passed
    assert 8 < Deadline(10, start=time.monotonic() - 1).left() <= 9


def closed_port() -> int:
    """A local TCP port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_host_that_stops_while_its_boot_is_awaited_fails_at_once(tmp_path, monkeypatch):
    """Ctrl-C kills a grading lab's hosts while a worker waits for their SSH: the wait ends
    at the next question whether the host runs (every second), not at the boot deadline."""
    monkeypatch.setattr(connection, "ASK_RUNNING_EVERY", 0.2)  # the same turns, sooner
    spec = HostSpec("web-01", "127.0.0.1", closed_port(), "lab", tmp_path / "id")
    answers = iter([True, False])
    started = time.monotonic()
    with pytest.raises(LabError, match="web-01 stopped before it accepted SSH"):
        wait_for_ssh(spec, Deadline(60), running=lambda: next(answers))
    assert time.monotonic() - started < 5


def test_without_a_way_to_ask_the_wait_lasts_until_the_deadline(tmp_path):
    spec = HostSpec("web-01", "127.0.0.1", closed_port(), "lab", tmp_path / "id")
    started = time.monotonic()
    with pytest.raises(LabError, match="did not accept SSH"):
        wait_for_ssh(spec, Deadline(0.5))
    assert time.monotonic() - started >= 0.5
