"""Waiting with a deadline: the one way the lab waits for something to become true."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Iterator
from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, Future, wait
from typing import TypeVar

T = TypeVar("T")

# How often a thread waiting on other threads wakes up. The kernel may hand a Ctrl-C to any of
# the process's threads; Python then runs its handler in the main thread only once that thread
# runs, and a main thread asleep in a wait without a timeout would sleep through it.
WAKE_EVERY = 0.2


class Deadline:
    """A moment `seconds` after `start` (monotonic; now by default)."""

    def __init__(self, seconds: float, start: float | None = None):
        self.at = (time.monotonic() if start is None else start) + seconds

    def left(self) -> float:
        """Seconds until the deadline, 0 once it has passed."""
        return max(0.0, self.at - time.monotonic())

    @property
    def passed(self) -> bool:
        return time.monotonic() >= self.at

    def ticks(self, interval: float) -> Iterator[float]:
        """Yield at once, then every `interval` seconds while the deadline has not passed: a
        loop body runs at least once, and once more after a sleep that reaches the deadline."""
        while True:
            yield self.left()
            if self.passed:
                return
            time.sleep(min(interval, self.left()))


def until(func: Callable[[], T], seconds: float, interval: float = 0.1) -> T | None:
    """func() until it returns something truthy or `seconds` pass; returns the last value."""
    value = None
    for _ in Deadline(seconds).ticks(interval):
        value = func()
        if value:
            break
    return value


def finished(
    futures: Collection[Future], seconds: float | None = None, first: bool = False
) -> tuple[set[Future], set[Future]]:
    """concurrent.futures.wait (all of them, or the first) in steps of WAKE_EVERY, so that a
    Ctrl-C reaches a waiting main thread at once; returns (done, not done)."""
    deadline = Deadline(seconds) if seconds is not None else None
    when = FIRST_COMPLETED if first else ALL_COMPLETED
    while True:
        step = WAKE_EVERY if deadline is None else min(WAKE_EVERY, deadline.left())
        done, pending = wait(futures, step, when)
        if not pending or (first and done) or (deadline is not None and deadline.passed):
            return done, pending


def results(futures: Iterable[Future]) -> list:
    """Each future's result in order, once all are done (a Ctrl-C is not slept through)."""
    futures = list(futures)
    finished(futures)
    return [future.result() for future in futures]
