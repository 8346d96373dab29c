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
    time.sleep(1)  # the command goes on with its work
    return "went on"

try:
    with signals.interrupts_delivered():
        print(run())
except KeyboardInterrupt:
    print("interrupted")
"""


def run(program: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=30
    )


def test_an_interrupt_python_would_drop_is_delivered_again():
    done = run(PROGRAM)
    assert done.stdout == "interrupted\n" and done.stderr == "", done


def test_without_it_python_prints_a_traceback_and_goes_on():
    done = run(PROGRAM.replace("with signals.interrupts_delivered():", "if True:"))
    assert done.stdout == "went on\n" and "Traceback" in done.stderr, done
