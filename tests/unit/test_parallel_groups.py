"""The suite's parallel groups (tests/conftest.py) on a small project run by the real pytest-xdist:
a group's tests share one worker, the heaviest group goes first, one process works too."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"
GROUPED = """\
import os, pytest
pytestmark = pytest.mark.xdist_group({group!r})
@pytest.mark.parametrize("i", range(3))
def test_{name}(i):
    print("worker", os.environ.get("PYTEST_XDIST_WORKER", "none"))
"""
FREE = """\
import os, pytest
@pytest.mark.parametrize("i", range(4))
def test_free(i):
    print("worker", os.environ.get("PYTEST_XDIST_WORKER", "none"))
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """Two files of the reference group, one of the grade group, one ungrouped file."""
    tests = tmp_path / "tests"
    tests.mkdir()
    shutil.copy(CONFTEST, tests / "conftest.py")
    (tmp_path / "pytest.ini").write_text("[pytest]\ntestpaths = tests\n")
    for name, group in (("a", "grade"), ("b", "reference"), ("c", "reference")):
        (tests / f"test_{name}.py").write_text(GROUPED.format(group=group, name=name))
    (tests / "test_free.py").write_text(FREE)
    return tmp_path


def run(project: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-v", "-rA", *args],
        cwd=project,
        capture_output=True,
        text=True,
        env={**environment, **env},
        timeout=120,
    )


def workers_by_test(output: str) -> dict[str, str]:
    """Each grouped test's worker, from -rA's captured output (`worker gwN`)."""
    found = {}
    for name, worker in re.findall(r"_+ (test_\w+\[\d\])\S* _+\n.*?worker (\w+)", output, re.S):
        found[name] = worker
    return found


def test_a_groups_tests_share_one_worker(project):
    result = run(project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "created: 4/4 workers" in result.stdout
    workers = workers_by_test(result.stdout)
    reference = {workers[f"test_{n}[{i}]"] for n in "bc" for i in range(3)}
    grade = {workers[f"test_a[{i}]"] for i in range(3)}
    assert len(reference) == 1 and len(grade) == 1 and reference != grade, workers
    (worker,) = reference
    assert re.search(rf"^{worker}: \d+ s \(.*reference \d+", result.stdout, re.M), result.stdout


def test_the_heaviest_group_goes_first_and_lab_test_workers_sets_the_count(project):
    result = run(project, LAB_TEST_WORKERS="1")
    assert "created: 1/1 worker" in result.stdout, result.stdout + result.stderr
    ran = re.findall(r"%\] PASSED tests/(test_\w+)\.py", result.stdout)  # progress lines
    assert ran == ["test_a"] * 3 + ["test_b"] * 3 + ["test_c"] * 3 + ["test_free"] * 4, ran
    bad = run(project, LAB_TEST_WORKERS="two")
    assert bad.returncode != 0 and "LAB_TEST_WORKERS='two'" in bad.stderr


@pytest.mark.parametrize("args", [("-n", "0"), ("-p", "no:xdist")])
def test_one_process_runs_every_test(project, args):
    result = run(project, *args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "13 passed" in result.stdout and "created:" not in result.stdout
    assert set(workers_by_test(result.stdout).values()) == {"none"}
