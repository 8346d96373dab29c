"""lab.core.wait: the one deadline loop."""

import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from lab.core.errors import LabError
from lab.core.wait import Deadline, finished, results, until
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


SLEEPER = """
import signal, sys, threading, time
from concurrent.futures import ThreadPoolExecutor
from lab.core.wait import results

def plain(futures):
    return [f.result() for f in futures]

WAIT = {"results": results, "plain": plain}[sys.argv[1]]
release = threading.Event()

def work():
    time.sleep(0.3)  # the main thread is asleep in its wait by now
    signal.pthread_kill(threading.get_ident(), signal.SIGINT)  # the kernel chose this thread
    release.wait(1.5)
    return "done"

started = time.monotonic()
try:
    WAIT([ThreadPoolExecutor(1).submit(work)])
    print(f"slept through it {time.monotonic() - started:.1f}")
except KeyboardInterrupt:
    print(f"interrupted {time.monotonic() - started:.1f}")
finally:
    release.set()
"""


def sleeper(wait: str) -> tuple[str, float]:
    """What a main thread waiting with `wait` did when another thread took the Ctrl-C."""
    out = subprocess.run(
        [sys.executable, "-c", SLEEPER, wait], capture_output=True, text=True, timeout=30
    )
    *words, seconds = out.stdout.split()
    return " ".join(words), float(seconds)


def test_a_ctrl_c_another_thread_took_reaches_the_waiting_main_thread_at_once():
    """The kernel hands a process's SIGINT to any thread; a main thread waiting on a future
    without a timeout notices only when the future is done (`lab grade` waited out a student's
    endless script that way). results() wakes up every WAKE_EVERY seconds."""
    what, seconds = sleeper("results")
    assert what == "interrupted" and seconds < 1.0
    what, seconds = sleeper("plain")  # the wait results() replaces: it sleeps through
    assert seconds >= 1.5


def test_finished_returns_at_the_first_done_or_at_its_deadline():
    with ThreadPoolExecutor(2) as pool:
        slow = pool.submit(time.sleep, 1.0)
        quick = pool.submit(time.sleep, 0.05)
        started = time.monotonic()
        done, pending = finished([slow, quick], first=True)
        assert done == {quick} and pending == {slow}
        done, pending = finished([slow], seconds=0.1)
        assert not done and pending == {slow}
        assert time.monotonic() - started < 0.6
        assert results([quick, slow]) == [None, None]
