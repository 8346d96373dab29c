"""A Ctrl-C that lands where Python cannot raise it (a weakref callback, as the import system
runs one when a module lock is dropped) is delivered again, not printed and lost."""

from __future__ import annotations

import subprocess
import sys

PROGRAM = """
import time, weakref
from lab.core import signals

class Thing:
    pass

def callback(ref):
    raise KeyboardInterrupt  # what a Ctrl-C inside the import system's callback becomes

def run():
    thing = Thing()
    ref = weakref.ref(thing, callback)
    del thing  # the callback runs here: Python can only print its exception and go on
    for _ in range(STEPS):  # the command goes on with its work, 10 ms at a time
        time.sleep(0.01)
    return "went on"

try:
    with signals.interrupts_delivered():
        print(run())
except KeyboardInterrupt:
    print("interrupted")
"""


def run(program: str, steps: int) -> subprocess.CompletedProcess:
    """program with its work lasting up to steps times 10 ms."""
    return subprocess.run(
        [sys.executable, "-c", f"STEPS = {steps}\n{program}"],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_an_interrupt_python_would_drop_is_delivered_again():
    done = run(PROGRAM, 300)  # delivered again 50 ms on, long before the work's 3 s are over
    assert done.stdout == "interrupted\n" and done.stderr == "", done


def test_without_it_python_prints_a_traceback_and_goes_on():
    done = run(PROGRAM.replace("with signals.interrupts_delivered():", "if True:"), 10)
    assert done.stdout == "went on\n" and "Traceback" in done.stderr, done
