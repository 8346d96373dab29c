"""Cleanup on interrupt, one way: `kill PID` stops a command like Ctrl-C, and once cleanup
begins a second Ctrl-C does not cut it short. Python sets handlers in the main thread only;
elsewhere these do nothing."""

from __future__ import annotations

import _thread
import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager


def interrupt(signum, frame):
    """A handler that turns the signal into KeyboardInterrupt (cleanup runs as for Ctrl-C)."""
    raise KeyboardInterrupt


def set_handler(signum, handler):
    """Set a signal handler where Python allows it (the main thread); returns the old one."""
    if threading.current_thread() is not threading.main_thread() or handler is None:
        return None
    return signal.signal(signum, handler)


@contextmanager
def _handled(signum, handler) -> Iterator[None]:
    previous = set_handler(signum, handler)
    try:
        yield
    finally:
        set_handler(signum, previous)


def stopped_like_ctrl_c() -> contextlib.AbstractContextManager:
    """Inside, SIGTERM raises KeyboardInterrupt, so that the same cleanup runs either way."""
    return _handled(signal.SIGTERM, interrupt)


def uninterrupted() -> contextlib.AbstractContextManager:
    """Inside, Ctrl-C is ignored: a cleanup or a restore, once begun, runs to the end."""
    return _handled(signal.SIGINT, signal.SIG_IGN)


def interrupt_again(unraisable) -> None:
    """sys.unraisablehook: a Ctrl-C that landed where Python cannot raise it (a callback of the
    import system, a __del__) is delivered again, not printed as an ignored exception and lost."""
    if not issubclass(unraisable.exc_type, KeyboardInterrupt):
        sys.__unraisablehook__(unraisable)
    else:  # once the callback is over: raised inside it, the interrupt would be dropped again
        threading.Timer(0.05, _thread.interrupt_main).start()


@contextmanager
def interrupts_delivered() -> Iterator[None]:
    """Inside, an interrupt Python would have to drop is delivered again (interrupt_again)."""
    previous, sys.unraisablehook = sys.unraisablehook, interrupt_again
    try:
        yield
    finally:
        sys.unraisablehook = previous
