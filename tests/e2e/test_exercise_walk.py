"""A student walks through exercises 01-06 alone: each page's marked code blocks, as
`lab exercise N` shows them for this lab (its own name and subnet), run as the page says.

From `lab exercise start N`, every block marked `run=` (lab/course/exercises.py: `steps`) is entered
the way a student would, without a terminal: `run=here` in a shell on the machine, in a
directory holding the lab's `lab.yml` (`sudo` is left out, as in a root shell); a shell block
on a host through `lab ssh HOST -- bash -ec BLOCK`; a `sql` block into `lab ssh HOST -- sudo
mariadb`; a `file=PATH` block through `sudo tee PATH`. Then `lab exercise check N` must pass:
a page that cannot be followed as written fails here. The fixes' pages 08-11 are walked too,
marked `slow` (LAB_SLOW=1 runs them); 07 is not graded. Page 10's blocks are each entered twice
(a student re-running a block), and a page's secrets (11's VRRP password) are the lab's own.

The lab is e2e-ex on 192.168.67.0/24 (the exercises group's, so the reference-state cache
test_exercises.py builds is shared); LAB_E2E_EXERCISES=NAME:OCTET runs it on another lab.
Exercise 11 needs the four-host topology its page is written with (lab-ha.yml): e2e-ex-ha on
192.168.68.0/24, or LAB_E2E_EXERCISES_HA=NAME:OCTET.
"""

from __future__ import annotations

import os
import shlex
import stat
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from lab.core import topology
from lab.core.state import LabState
from lab.course import exercises
from tests.e2e.conftest import (
    LabRunner,
    exercises_lab,
    lab_name_from,
    require_lab_prerequisites,
    write_topology,
)

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("exercises")]

WALKED = ["01", "02", "03", "04", "05", "06"]
SLOW = ["08", "09", "10", "11"]  # the fixes' pages: minutes more each (LAB_SLOW=1); 07 not graded
TWICE = ["10"]  # every block entered twice, as a student re-running a block does: still passes
SHIMS = {
    "lab": f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m lab "$@"\n',
    "sudo": '#!/bin/sh\nexec "$@"\n',  # a root shell: the README's $S is empty
}


@pytest.fixture(scope="module")
def walk(tmp_path_factory):
    require_lab_prerequisites()
    yield from running(exercises_lab(tmp_path_factory.mktemp("walk")))


@pytest.fixture(scope="module")
def walk_ha(tmp_path_factory):
    """The four-host lab exercise 11 starts on (its page's topology, lab-ha.yml)."""
    require_lab_prerequisites()
    name, octet = lab_name_from("LAB_E2E_EXERCISES_HA", "e2e-ex-ha:68")
    yield from running(
        LabRunner(write_topology(tmp_path_factory.mktemp("walk-ha"), name, octet, "lab-ha.yml"))
    )


def running(runner: LabRunner):
    """The lab up while the tests use it, destroyed afterwards even when they fail."""
    try:
        runner("up")
        yield runner
    finally:
        runner("destroy", check=False)


def lab_for(number: str, request) -> LabRunner:
    """The lab a page is walked on: the four-host one for the page written with lab-ha.yml."""
    wanted = exercises.PAGE_TOPOLOGY.get(number, "lab.yml")
    return request.getfixturevalue("walk_ha" if wanted == "lab-ha.yml" else "walk")


def student_machine(directory: Path, lab: LabRunner) -> dict:
    """A working directory with the lab's lab.yml, and an environment whose `lab` is this one."""
    (directory / "lab.yml").write_text(lab.topology.read_text())
    bin_dir = directory / "bin"
    bin_dir.mkdir()
    for name, script in SHIMS.items():
        (bin_dir / name).write_text(script)
        (bin_dir / name).chmod(stat.S_IRWXU)
    return lab.env(PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


def follow(step: exercises.Step, directory: Path, env: dict) -> list:
    """Enter one block as the page says (on its hosts at once, as in a terminal each); the
    finished processes, one per host."""
    if step.run == (exercises.HERE,):
        return [run(["bash", "-ec", step.body], directory, env)]
    if step.kind == "file":
        command, given = f"sudo tee {shlex.quote(step.file)} >/dev/null", step.body
    elif step.kind == "sql":
        command, given = "sudo mariadb", step.body
    else:
        command, given = f"bash -ec {shlex.quote(step.body)}", None
    with ThreadPoolExecutor(max_workers=len(step.run)) as pool:
        return list(
            pool.map(
                lambda host: run(["lab", "ssh", host, "--", command], directory, env, given),
                step.run,
            )
        )


def run(argv: list[str], directory: Path, env: dict, given: str | None = None):
    return subprocess.run(
        argv,
        cwd=directory,
        env=env,
        input=given,
        stdin=None if given is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
    )


def assert_secrets_shown(walk: LabRunner, number: str, text: str) -> None:
    """The page holds no placeholder for a secret, and `lab exercise N` shows the lab's own."""
    for placeholder, make in exercises.SECRETS.items():
        assert placeholder not in text
        value = make(LabState(walk.name).secret)
        if value in text:
            shown = walk("exercise", number, "--no-color", COLUMNS="200").stdout
            assert value in shown, f"`lab exercise {number}` does not show the lab's {placeholder}"


@pytest.mark.parametrize(
    "number", [*WALKED, *(pytest.param(n, marks=pytest.mark.slow) for n in SLOW)]
)
def test_a_student_follows_the_page_alone_and_its_checks_pass(number, tmp_path, request):
    walk = lab_for(number, request)
    exercise = exercises.find(number)
    shown = exercises.page(exercise, topology.load(walk.topology), LabState(walk.name).secret)
    default = str(exercises.reference_topology(exercise).subnet.network_address).rsplit(".", 1)[0]
    assert shown.translated and f"{default}." not in shown.text
    steps = exercises.steps(shown.text)
    assert steps, f"exercise {number} marks no code block to follow"
    env = student_machine(tmp_path, walk)
    started = time.monotonic()
    walk("exercise", "start", number, "--yes")
    assert_secrets_shown(walk, number, shown.text)
    for index, step in enumerate(steps, 1):
        entered = [follow(step, tmp_path, env) for _ in range(2 if number in TWICE else 1)]
        for done in (done for each in entered for done in each):
            assert done.returncode == 0, (
                f"exercise {number}, block {index} of {len(steps)} "
                f"({step.kind} on {','.join(step.run)}) exited {done.returncode}:\n"
                f"{step.body}\n--- stdout\n{done.stdout[-2000:]}\n--- stderr\n{done.stderr[-2000:]}"
            )
    checked = walk("exercise", "check", number, "--no-color", check=False, COLUMNS="200")
    assert checked.returncode == 0, f"exercise {number} followed, its checks:\n{checked.stdout}"
    print(f"exercise {number} walked in {time.monotonic() - started:.1f} s")
