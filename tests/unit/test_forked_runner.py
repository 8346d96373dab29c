"""The end-to-end tests' `lab` runner (tests.e2e.forked) gives what `python -m lab` gives: the
same output, error lines and exit codes, with the environment it is handed and no other."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from tests.e2e import forked

CASES = [
    ["check", "--help"],
    ["bogus"],  # a usage error: exit 2, argparse's lines on stderr
    ["ssh", "web-01", "--", "true"],  # one error line and a hint: the lab is not up
    ["check", "--topology", "/nonexistent/lab.yml"],
]


@pytest.mark.parametrize("args", CASES, ids=" ".join)
def test_a_forked_lab_command_answers_as_a_new_interpreter_does(args, tmp_path):
    env = {"PATH": os.environ["PATH"], "LAB_HOME": str(tmp_path), "COLUMNS": "120"}
    env["NO_COLOR"] = "1"
    started = subprocess.run(
        [sys.executable, "-m", "lab", *args], capture_output=True, text=True, env=env, timeout=60
    )
    got = forked.run(args, env, timeout=60)
    assert (got.returncode, got.stdout, got.stderr) == (
        started.returncode,
        started.stdout,
        started.stderr,
    )


def test_the_environment_is_the_one_given_and_this_process_keeps_its_own(tmp_path):
    env = {"PATH": os.environ["PATH"], "LAB_TOPOLOGY": str(tmp_path / "none.yml")}
    got = forked.run(["status"], env, timeout=60)
    assert got.returncode != 0 and "none.yml" in got.stderr, got.stderr
    assert os.environ.get("LAB_TOPOLOGY") != env["LAB_TOPOLOGY"]


def test_a_command_past_its_time_is_killed(monkeypatch):
    def sleeping(argv):
        time.sleep(30)
        return 0

    monkeypatch.setattr(forked.app, "main", sleeping)
    started = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        forked.run(["check"], dict(os.environ), timeout=0.3)
    assert time.monotonic() - started < 5


def test_the_child_waits_for_its_threads_as_the_interpreter_does(monkeypatch):
    def with_a_thread(argv):
        threading.Thread(target=lambda: (time.sleep(0.1), print("thread done"))).start()
        return 3

    monkeypatch.setattr(forked.app, "main", with_a_thread)
    got = forked.run(["check"], dict(os.environ), timeout=10)
    assert (got.returncode, got.stdout) == (3, "thread done\n")
