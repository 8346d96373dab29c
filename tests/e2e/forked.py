"""`lab ARGS` in a process forked from the test's own, where lab's modules are imported already:
the same main() in a process of its own, its own environment, input, output and exit code,
without the interpreter's start and imports (about 0.4 s of CPU a command on the CI machine).

The child starts as a new interpreter would: no input, the environment given, the standard
streams on pipes, Python's default signal handlers, warnings filters and logging, and nothing
of the test process's own (pytest's capture and log handlers) reachable. It never returns: it
leaves through os._exit with main()'s exit code, as `python -m lab` would exit.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
import traceback
import warnings

from lab.cli import app
from lab.observe import live

# A new interpreter's warnings filters (python -W default excepted): what `python -m lab` has.
NEW_INTERPRETER_FILTERS = [
    ("default", DeprecationWarning, "__main__"),
    ("ignore", DeprecationWarning, None),
    ("ignore", PendingDeprecationWarning, None),
    ("ignore", ImportWarning, None),
    ("ignore", ResourceWarning, None),
]


def run(args: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    """`lab ARGS` with env as its whole environment: its CompletedProcess, as subprocess.run
    with capture_output and text gives (TimeoutExpired after timeout seconds, the child killed)."""
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    with warnings.catch_warnings():  # Python 3.12+ warns of fork() beside pytest's own threads
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover (the child leaves through os._exit)
        os.close(out_r)
        os.close(err_r)
        _child(args, env, out_w, err_w)
    os.close(out_w)
    os.close(err_w)
    deadline = time.monotonic() + timeout
    output = _read_until_closed({out_r: bytearray(), err_r: bytearray()}, deadline)
    if output is None:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise subprocess.TimeoutExpired(["lab", *args], timeout)
    _, status = os.waitpid(pid, 0)
    stdout, stderr = (bytes(output[fd]).decode(errors="replace") for fd in (out_r, err_r))
    return subprocess.CompletedProcess(
        ["lab", *args], os.waitstatus_to_exitcode(status), stdout, stderr
    )


def _read_until_closed(buffers: dict[int, bytearray], deadline: float) -> dict | None:
    """Both pipes read to their end (every writer gone, grandchildren too); None at deadline."""
    with selectors.DefaultSelector() as selector:
        for fd in buffers:
            selector.register(fd, selectors.EVENT_READ)
        try:
            while selector.get_map():
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                for key, _ in selector.select(left):
                    chunk = os.read(key.fd, 65536)
                    if chunk:
                        buffers[key.fd] += chunk
                    else:
                        selector.unregister(key.fd)
        finally:
            for fd in buffers:
                os.close(fd)
    return buffers


def _child(args: list[str], env: dict[str, str], out_w: int, err_w: int) -> None:
    code = 1
    try:
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        os.close(out_w)
        os.close(err_w)
        os.environ.clear()
        os.environ.update(env)
        sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8")
        sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8")
        sys.stderr = io.TextIOWrapper(
            io.FileIO(2, "w", closefd=False), encoding="utf-8", line_buffering=True
        )
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        warnings.resetwarnings()
        for action, category, module in reversed(NEW_INTERPRETER_FILTERS):
            warnings.filterwarnings(action, category=category, module=module or "")
        logging.root.handlers.clear()
        logging.root.setLevel(logging.WARNING)
        live.quiet_expected_noise.cache_clear()  # its filters, set again by this lab command
        code = app.main(list(args))
    except SystemExit as exc:  # argparse: usage errors (2), --help and --version (0)
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        for thread in threading.enumerate():  # as the interpreter waits for them at its exit
            if thread is not threading.current_thread() and not thread.daemon:
                thread.join()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)
