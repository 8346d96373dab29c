"""lab.core.wait: the one deadline loop."""

import time

from lab.core.wait import Deadline, until


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
