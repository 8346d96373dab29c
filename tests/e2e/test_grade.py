"""lab grade on real classes: correct, wrong, Ubuntu-only, archived, broken and hostile work.

Each submission gets a lab of its own; the class run always completes; nothing outside each
submission's own lab is touched.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import require_lab_prerequisites

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("grade")]

ROOT = Path(__file__).resolve().parents[2]
SUBMISSIONS = Path(__file__).parent / "submissions"
LB = ROOT / "assignments" / "load-balancer.yml"
HOME = Path("/var/lib/webstack-lab")
LISTENER_PORT = 18999  # the hostile `reach` script knocks here on the machine


def grade(*args, timeout=1500, check=True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "lab", "--no-color", "grade", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={k: v for k, v in os.environ.items() if k != "LAB_TOPOLOGY"},
    )
    assert "Traceback" not in result.stderr, result.stderr
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def results(out: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in (out / "results").glob("*.json")}


def leftovers() -> list[str]:
    """Grading labs' containers, bridges, nft tables or state still on the machine."""
    found = [p.name for p in (HOME / "containers").glob("grade*")]
    found += [p.name for p in Path("/sys/class/net").glob("wsl-grade*")]
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    found += [line for line in tables.splitlines() if "webstack_lab_grade" in line]
    found += [p.name for p in (HOME / "labs").glob("grade*")]
    return found


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory):
    """The load-balancer assignment over a class of six, two labs side by side."""
    require_lab_prerequisites()
    work = tmp_path_factory.mktemp("class")
    klass = work / "class"
    klass.mkdir()
    for student in ("bob", "carol", "dave"):
        shutil.copytree(SUBMISSIONS / "load-balancer" / student, klass / student)
    shutil.copy(SUBMISSIONS / "load-balancer-archives" / "erin.tar.gz", klass)
    (klass / "broken.zip").write_bytes(b"PK\x03\x04 this is no zip")
    (klass / "empty" / "0x0F-load_balancer").mkdir(parents=True)
    out = work / "out"
    started = time.monotonic()
    try:
        run = grade(LB, klass, "--out", out, "--jobs", "2")
    finally:
        assert leftovers() == [], "a grading lab was left behind"
    return klass, out, run, time.monotonic() - started


def test_each_student_gets_the_grade_the_work_deserves(graded_class):
    _, out, run, _ = graded_class
    got = results(out)
    assert set(got) == {"bob", "carol", "dave", "erin", "broken", "empty"}
    bob, carol, dave, erin = (got[n] for n in ("bob", "carol", "dave", "erin"))
    assert (erin["score"], erin["rerun"]) == (100, "idempotent"), erin["first"]["checks"]
    # bob is right the first time and breaks his own load balancer when run again
    assert bob["score"] == 100  # his files sit in 0x0F-load_balancer/
    assert "lb.haproxy" in bob["rerun"] or "fails on re-run" in bob["rerun"], bob["rerun"]
    failed = {c["id"] for c in carol["first"]["checks"] if c["status"] != "pass"}
    assert "lb.round-robin" in failed and carol["score"] < 100
    assert dave["score"] < 50 and any(r["exit_code"] != 0 for r in dave["first"]["scripts"])
    assert got["broken"]["status"] == "invalid" and "unreadable archive" in got["broken"]["error"]
    assert got["empty"]["status"] == "invalid" and "empty" in got["empty"]["error"]
    subs = erin["substitutions"]
    assert [s["host"] for s in subs] == ["web-01", "web-02"] and subs[0]["found"] == "54.237.92.181"
    assert "Class overview" in run.stdout


def test_the_gradebook_has_a_row_and_a_report_per_student(graded_class):
    _, out, _, _ = graded_class
    rows = list(csv.DictReader((out / "grades.csv").open()))
    assert sorted(r["student"] for r in rows) == sorted(results(out))
    erin = next(r for r in rows if r["student"] == "erin")
    assert erin["total"] == "100" and erin["lb.round-robin"] == "25"
    assert erin["rerun"] == "idempotent"
    overview = (out / "index.html").read_text()
    for student in results(out):
        assert student in overview
    assert len(list((out / "reports").glob("*.html"))) == 6
    assert "X-Served-By" in (out / "reports" / "erin.html").read_text()


def test_a_second_run_grades_only_what_changed_or_is_named(graded_class):
    klass, out, _, _ = graded_class
    before = results(out)
    header = klass / "dave" / "0-custom_http_response_header"
    header.write_text(header.read_text() + "\n# handed in again\n")
    started = time.monotonic()
    grade(LB, klass, "--out", out, "--jobs", "2", "--regrade", "broken")
    after = results(out)
    for student in ("bob", "carol", "erin", "empty"):
        assert after[student]["graded_at"] == before[student]["graded_at"], student
    assert after["dave"]["content_hash"] != before["dave"]["content_hash"]
    assert after["dave"]["graded_at"] >= before["dave"]["graded_at"]
    assert time.monotonic() - started < 120  # only dave met a lab again
    assert leftovers() == []


@pytest.fixture
def listener():
    """A TCP listener on every address of the machine, counting who connects."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("0.0.0.0", LISTENER_PORT))
    server.listen()
    server.settimeout(0.5)
    seen: list[str] = []
    stop = threading.Event()

    def accept():
        while not stop.is_set():
            try:
                conn, peer = server.accept()
            except OSError:
                continue
            seen.append(peer[0])
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield seen
    stop.set()
    thread.join()
    server.close()


def test_hostile_submissions_are_graded_and_touch_nothing_outside_their_lab(tmp_path, listener):
    require_lab_prerequisites()
    assignment = yaml.safe_load(LB.read_text())
    assignment["limits"].update(script_seconds=20, output_kib=64)
    quick = tmp_path / "load-balancer.yml"
    quick.write_text(yaml.safe_dump(assignment))
    canary = tmp_path / "canary"
    canary.write_text("untouched")
    image = HOME / "containers" / "image-bookworm" / "rootfs"
    image_files = sorted(p.name for p in image.iterdir())
    out = tmp_path / "out"
    try:
        grade(quick, SUBMISSIONS / "hostile", "--out", out, "--jobs", "2")
    finally:
        assert leftovers() == []
    got = results(out)
    assert set(got) == {"forkbomb", "endless", "rmrf", "sshd", "swapkey", "reach", "flood"}
    for name, result in got.items():
        assert result["status"] == "graded", (name, result["error"])
        assert result["score"] <= 5, (name, result["score"])  # at most: the hosts are up
    endless = got["endless"]["first"]["scripts"][0]
    assert endless["timed_out"] and endless["exit_code"] is None
    flood = got["flood"]["first"]["scripts"][0]
    assert flood["output_bytes"] >= 1_000_000_000 and len(flood["output"]) <= 64 * 1024 + 200
    forkbomb = got["forkbomb"]["first"]["checks"]
    assert forkbomb[0]["id"] == "servers.reachable"
    for name in ("sshd", "swapkey", "rmrf"):
        reachable = got[name]["first"]["checks"][0]
        assert reachable["status"] == "fail" and "web-0" in reachable["evidence"], name
    reach = got["reach"]["first"]["scripts"][0]["output"]
    assert "blocked" in reach and "REACHED" not in reach, reach
    assert listener == [], f"a lab host reached the machine: {listener}"
    assert canary.read_text() == "untouched"
    assert sorted(p.name for p in image.iterdir()) == image_files  # rm -rf / left the image
    assert (image / "bin" / "bash").exists()


def test_ctrl_c_removes_the_labs_and_keeps_no_half_result(tmp_path):
    require_lab_prerequisites()
    klass = tmp_path / "class"
    shutil.copytree(SUBMISSIONS / "hostile" / "endless", klass / "endless")
    out = tmp_path / "out"
    process = subprocess.Popen(
        [sys.executable, "-m", "lab", "grade", str(LB), str(klass), "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # a shell's background job starts with SIGINT ignored; a person's Ctrl-C is not
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 120
        while not list(Path("/sys/class/net").glob("wsl-grade*")):
            assert time.monotonic() < deadline, "no grading lab came up"
            time.sleep(0.5)
        time.sleep(3)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert leftovers() == []
    assert not (out / "results" / "endless.json").exists()


def test_bad_input_is_one_clear_line(tmp_path):
    (tmp_path / "empty-class").mkdir()
    cases = [
        ((tmp_path / "none.yml", tmp_path), "assignment file not found"),
        ((LB, tmp_path / "empty-class"), "holds no submissions"),
        ((LB,), "usage: lab grade ASSIGNMENT SUBMISSIONS"),
    ]
    bad = tmp_path / "bad.yml"
    bad.write_text("name: x\nsteps: nope\nchecks: {}\n")
    cases.append(((bad, tmp_path), "steps: expected"))
    for args, message in cases:
        result = grade(*args, check=False)
        assert result.returncode == 2, result.stdout + result.stderr
        assert message in result.stderr
        assert len(result.stderr.strip().splitlines()) <= 2  # the line, and maybe a hint


def test_given_components_come_from_the_cache_not_rebuilt_per_student(tmp_path):
    require_lab_prerequisites()
    assignment = {
        "name": "given-web",
        "given": ["web"],
        "steps": [{"file": "hello", "hosts": ["web-01"]}],
        "checks": {"web.nginx": 10},
        "limits": {"script_seconds": 30},
    }
    path = tmp_path / "given-web.yml"
    path.write_text(yaml.safe_dump(assignment))
    klass = tmp_path / "class"
    for student in ("ida", "jo"):
        (klass / student).mkdir(parents=True)
        (klass / student / "hello").write_text(f"#!/bin/bash\necho {student} on $LAB_HOST\n")
    for entry in (HOME / "cache" / "reference").glob("*/meta.json"):
        if json.loads(entry.read_text()).get("lab", "").startswith("grade"):
            shutil.rmtree(entry.parent)  # a cold cache: the first student's lab builds it
    out = tmp_path / "out"
    try:
        grade(path, klass, "--out", out)
    finally:
        assert leftovers() == []
    got = results(out)
    for student in ("ida", "jo"):
        assert got[student]["score"] == 10, got[student]["first"]["checks"]
        assert f"{student} on web-01" in got[student]["first"]["scripts"][0]["output"]
    reused, built = sorted(got[s]["timings"]["given"] for s in ("ida", "jo"))
    assert reused < built / 2, (built, reused)  # the second student's hosts came from the cache
