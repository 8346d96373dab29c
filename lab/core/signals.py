"""Signals as exceptions: `kill PID` stops a command like Ctrl-C, from the main thread only."""

from __future__ import annotations

import signal
import threading


def interrupt(signum, frame):
    """A handler that turns the signal into KeyboardInterrupt (cleanup runs as for Ctrl-C)."""
    raise KeyboardInterrupt


def set_handler(signum, handler):
    """Set a signal handler where Python allows it (the main thread); returns the old one."""
    if threading.current_thread() is not threading.main_thread() or handler is None:
        return None
    return signal.signal(signum, handler)
