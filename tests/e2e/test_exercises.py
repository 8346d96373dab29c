"""The exercises as commands on real hosts: start N → its checks fail, solve N → they pass.

One lab (e2e-ex, 192.168.67.0/24; LAB_E2E_EXERCISES=NAME:OCTET for another) goes through
every exercise in order; each start after the first builds its reference state on top of the
previous one (a cold cache costs one provisioning of each component) and restores fresh hosts
from the cache.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time

import pytest
import requests

from lab.course.exercises import WORK, check_ids, find
from tests.e2e.conftest import LabRunner, exercises_lab, require_lab_prerequisites

pytestmark = [pytest.mark.e2e, pytest.mark.long, pytest.mark.xdist_group("exercises")]

GRADED = sorted(n for n, work in WORK.items() if not work.extra)  # extras: their own files


@pytest.fixture(scope="module")
def ex(tmp_path_factory):
    require_lab_prerequisites()
    runner = exercises_lab(tmp_path_factory.mktemp("ex"))
    try:
        runner("up")
        yield runner
    finally:
        runner("destroy", check=False)


def statuses(runner: LabRunner, number: str) -> dict[str, str]:
    """Each check's status as `lab exercise check` recorded it in the lab's one record."""
    result = runner("exercise", "check", number, check=False)
    assert result.returncode in (0, 1), result.stderr
    path = f"/var/lib/webstack-lab/labs/{runner.name}/last-check.json"
    with open(path) as handle:
        saved = json.load(handle)["checks"]
    return {check_id: saved[check_id]["status"] for check_id in check_ids(find(number))}


def next_hint(runner: LabRunner, number: str) -> str:
    return runner("exercise", "hint", number, check=False).stdout


def test_every_exercise_starts_failing_and_passes_once_solved(ex):
    timings = {}
    for number in GRADED:
        started = time.monotonic()
        ex("exercise", "start", number, "--yes")
        timings[number] = round(time.monotonic() - started, 1)
        before = statuses(ex, number)
        if number == "01":  # exercise 01 is bringing the hosts up: start has done it
            assert set(before.values()) == {"pass"}, before
            continue
        assert "pass" not in before.values(), f"{number} at its start: {before}"
        first, second = next_hint(ex, number), next_hint(ex, number)
        assert "hint 1/" in first and "hint 2/" in second, (first, second)
        ex("exercise", "solve", number, "--yes")
        after = statuses(ex, number)
        assert set(after.values()) == {"pass"}, f"{number} after its solve: {after}"
        assert "every check of exercise" in next_hint(ex, number)
    print(f"exercise start seconds: {timings}")
    table = ex("exercise", "list").stdout
    assert "done" in table and "06" in table


def test_up_provision_on_fresh_hosts_comes_from_the_reference_state_cache(ex):
    ex("destroy")
    # built from the walk's cached parts and kept, unless a lab in another test group (the
    # reference one) has cached the base design already: the cache is the machine's
    first = ex("up", "--provision").stdout
    assert "cached for next time" in first or "restored from the" in first, first
    ex("destroy")
    started = time.monotonic()
    restored = ex("up", "--provision").stdout
    seconds = time.monotonic() - started
    first_page = requests.get(f"http://{ex.address('lb-01')}/", timeout=10)
    assert first_page.status_code == 200, "the first request after `lab up --provision`"
    assert "restored from the reference-state cache" in restored, restored
    print(f"lab up --provision, warm: {seconds:.1f} s")
    report = json.loads(ex("check", "--json").stdout)
    assert report["score"] == report["max_score"] == 105, report


def test_a_changed_lab_is_not_thrown_away_without_a_yes(ex):
    ex("exercise", "start", "02", "--yes")
    ex.ssh("web-01", "echo mine | sudo tee /etc/student-work >/dev/null")
    refused = subprocess.run(
        [sys.executable, "-m", "lab", "exercise", "start", "02"],
        capture_output=True,
        text=True,
        env=ex.env(),
        stdin=subprocess.DEVNULL,
    )
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "/etc/student-work" in refused.stderr and "--yes" in refused.stderr
    assert "mine" in ex.ssh("web-01", "cat /etc/student-work")
    ex("exercise", "start", "02", "--yes")
    assert ex.ssh("web-01", "test -e /etc/student-work || echo gone").strip() == "gone"


def test_warm_start_of_exercise_05_takes_seconds(ex):
    ex("exercise", "start", "05", "--yes")  # cached by the walk through every exercise
    started = time.monotonic()
    output = ex("exercise", "start", "05", "--yes").stdout
    seconds = time.monotonic() - started
    assert "from the cache" in output, output
    print(f"warm start of 05: {seconds:.1f} s")  # bench/ measures it; ~8 s on an idle machine
    assert seconds < 60, output  # a build takes minutes; a loaded machine stretches seconds


def test_a_snapshot_restore_brings_back_the_exact_state(ex):
    ex.ssh("web-01", "echo before | sudo tee /srv/before-save >/dev/null")
    ex.ssh("web-02", "sudo rm -f /etc/nginx/sites-enabled/webstack")  # a whiteout in the copy
    try:
        saved = ex("snapshot", "save", "risky", "--force").stdout
        assert re.search(r"saved in [\d.]+ s", saved), saved
        ex.ssh("web-01", "echo after | sudo tee /srv/after-save >/dev/null")
        ex.ssh("web-01", "sudo rm /srv/before-save")
        restored = ex("snapshot", "restore", "risky", "--yes").stdout
        assert re.search(r"restored in [\d.]+ s", restored), restored
        assert ex.ssh("web-01", "cat /srv/before-save").strip() == "before"
        assert ex.ssh("web-01", "test -e /srv/after-save || echo gone").strip() == "gone"
        assert ex.ssh("web-02", "test -e /etc/nginx/sites-enabled/webstack || echo gone") == (
            "gone\n"
        )
        assert "risky" in ex("snapshot", "list").stdout
        ex("snapshot", "delete", "risky")  # the hosts run on its layer: it stays until they don't
        assert ex.ssh("web-01", "cat /srv/before-save").strip() == "before"
        ex.ssh("web-01", "echo again | sudo tee /srv/before-save >/dev/null")  # written above it
        assert ex.ssh("web-01", "cat /srv/before-save").strip() == "again"
    finally:
        ex("snapshot", "delete", "risky", check=False)
    assert "risky" not in ex("snapshot", "list").stdout
