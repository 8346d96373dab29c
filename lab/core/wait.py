"""Waiting with a deadline: the one way the lab waits for something to become true."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TypeVar

T = TypeVar("T")


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
