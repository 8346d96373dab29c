"""lab grade on real classes: correct, wrong, Ubuntu-only, archived, broken and hostile work.

Each submission gets a lab of its own; the class run always completes; nothing outside each
submission's own lab is touched.
"""

from __future__ import annotations

import csv
import fcntl
import json
import os
import re
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

from lab.core.state import lab_home
from lab.grading.sandbox import SLOTS_VARIABLE, slot_range
from tests.e2e.conftest import require_lab_prerequisites

pytestmark = [pytest.mark.e2e, pytest.mark.long, pytest.mark.xdist_group("grade")]

ROOT = Path(__file__).resolve().parents[2]
SUBMISSIONS = Path(__file__).parent / "submissions"
LB = ROOT / "assignments" / "load-balancer.yml"
HOME = lab_home()  # $LAB_HOME, where `lab grade` puts its labs, like the cache and slots
LISTENER_PORT = 18999  # the hostile `reach` script knocks here on the machine
PREFIX = slot_range(os.environ.get(SLOTS_VARIABLE))[0]  # the grading labs' names: PREFIX100


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


def graded(out: Path) -> dict[str, dict]:
    """Every student's result, each of them graded (the grader's own error shown if not)."""
    got = results(out)
    failed = {student: r["error"] for student, r in got.items() if r["status"] != "graded"}
    assert not failed, failed
    return got


def leftovers() -> list[str]:
    """Grading labs' containers, bridges, nft tables, state, disk mounts and loop devices still
    on the machine (a host's disk image lies in its container's directory), of slots no `lab
    grade` holds: another one may be running on the machine."""
    found = [p.name for p in (HOME / "containers").glob(f"{PREFIX}*")]
    found += [p.name for p in Path("/sys/class/net").glob(f"wsl-{PREFIX}*")]
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    table = f"webstack_lab_{PREFIX.replace('-', '_')}"
    found += [line for line in tables.splitlines() if table in line]
    found += [p.name for p in (HOME / "labs").glob(f"{PREFIX}*")]
    mounts = Path("/proc/self/mountinfo").read_text().splitlines()
    found += [line.split()[4] for line in mounts if f"{HOME}/containers/{PREFIX}" in line]
    loops = subprocess.run(
        ["losetup", "-l", "-n", "-O", "NAME,BACK-FILE"], capture_output=True, text=True
    ).stdout
    found += [line for line in loops.splitlines() if f"{HOME}/containers/{PREFIX}" in line]
    return [item for item in found if not slot_in_use(item)]


def slot_in_use(item: str) -> bool:
    """Whether the grading slot item belongs to is held (by flock) by a running `lab grade`."""
    match = re.search(rf"{re.escape(PREFIX)}(\d+)", item)
    lock = HOME / "grading" / "slots" / f"{match.group(1)}.lock" if match else None
    if lock is None or not lock.is_file():
        return False
    with open(lock, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
    return False


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
    assignment["limits"].update(script_seconds=20, output_kib=64, disk_mib=300)
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
    hostile = {"forkbomb", "endless", "rmrf", "sshd", "swapkey", "reach", "flood", "disk", "snoop"}
    hostile.add("relay")
    assert set(got) == hostile
    for name, result in got.items():
        assert result["status"] == "graded", (name, result["error"])
        assert result["score"] <= 5, (name, result["score"])  # at most: the hosts are up
    endless = got["endless"]["first"]["scripts"][0]
    assert endless["timed_out"] and endless["exit_code"] is None
    flood = got["flood"]["first"]["scripts"][0]
    assert flood["output_bytes"] >= 200_000_000 and len(flood["output"]) <= 64 * 1024 + 200
    forkbomb = got["forkbomb"]["first"]["checks"]
    assert forkbomb[0]["id"] == "servers.reachable"
    for name in ("sshd", "swapkey", "rmrf"):
        reachable = got[name]["first"]["checks"][0]
        assert reachable["status"] == "fail" and "web-0" in reachable["evidence"], name
    for run in got["disk"]["first"]["scripts"][:2]:  # 0-custom_http_response_header
        assert run["disk_limit"], run["output"]
        assert f"disk limit (300 MiB) reached on {run['host']}" in run["output"]
    for run in got["snoop"]["first"]["scripts"][:2]:  # dmesg, as root in the host
        assert "kernel log blocked" in run["output"], (run["output"], "dmesg_restrict must be 1")
        assert "KERNEL LOG READ" not in run["output"]
    reach = got["reach"]["first"]["scripts"][0]["output"]
    assert "blocked" in reach and "REACHED" not in reach, reach
    assert any("refused" in flag and "grading machine" in flag for flag in got["reach"]["flags"])
    for name in ("sshd", "swapkey"):
        assert any("could not log in to web-0" in flag for flag in got[name]["flags"]), name
    assert got["flood"]["flags"] == [] and got["endless"]["flags"] == []  # nothing to flag
    relay = got["relay"]  # leaves processes running: flagged, its score unchanged
    assert relay["score"] == 5, relay["first"]["checks"]
    assert "left behind on web-01" in relay["first"]["scripts"][0]["output"]
    assert_leftovers_flagged(relay)
    assert listener == [], f"a lab host reached the machine: {listener}"
    assert canary.read_text() == "untouched"
    assert sorted(p.name for p in image.iterdir()) == image_files  # rm -rf / left the image
    assert (image / "bin" / "bash").exists()


def assert_leftovers_flagged(relay: dict) -> None:
    """The relay submission's escaped process is flagged on each web server, with its command
    line; the one its unit stopped and the service it started through systemd are not."""
    flags = [f for f in relay["flags"] if "left running" in f]
    where = [(f.split(" run's")[0], f.split(" on ")[1].split(":")[0]) for f in flags]
    runs = ("after the first", "after the second")  # each run leaves its own, flagged once
    assert where == [(run, host) for run in runs for host in ("web-01", "web-02")], flags
    for flag in flags:
        assert "1 process(es) left running" in flag, flag
        assert "`sleep 1001`" in flag and "outside any service unit" in flag, flag
        assert "sleep 1000" not in flag and "sleep 1002" not in flag, flag


class FreeSpace:
    """The least free space on the machine's disk (where the containers live) while it runs."""

    def __init__(self):
        self.before = self.least = shutil.disk_usage(HOME).free
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self):
        while not self._stop.wait(0.2):
            self.least = min(self.least, shutil.disk_usage(HOME).free)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    @property
    def drop(self) -> int:
        return self.before - self.least


def test_a_script_that_fills_the_disk_stops_at_the_limit_and_the_class_goes_on(tmp_path):
    """3 GiB written on each of two hosts with disk_mib 300: the machine loses at most the
    limit per host, the log says so, and the next student is graded as if nothing happened."""
    require_lab_prerequisites()
    assignment = yaml.safe_load(LB.read_text())
    assignment["limits"].update(script_seconds=120, disk_mib=300)
    path = tmp_path / "load-balancer.yml"
    path.write_text(yaml.safe_dump(assignment))
    klass = tmp_path / "class"
    shutil.copytree(SUBMISSIONS / "hostile" / "disk", klass / "disk")
    shutil.copytree(SUBMISSIONS / "load-balancer" / "bob", klass / "zoe")  # graded next
    out = tmp_path / "out"
    try:
        with FreeSpace() as space:
            grade(path, klass, "--out", out)
    finally:
        assert leftovers() == [], "a mount, loop device or disk image was left behind"
    print(f"the machine's free space dropped by {space.drop / 2**20:.0f} MiB at most")
    slack = 2048 * 2**20  # what else the machine writes meanwhile (other labs, other runs)
    assert space.drop < 2 * 300 * 2**20 + slack, f"the machine lost {space.drop / 2**20:.0f} MiB"
    got = results(out)
    runs = [r for r in got["disk"]["first"]["scripts"] if r["file"].startswith("0-")]
    assert [r["host"] for r in runs] == ["web-01", "web-02"]
    for run in runs:
        assert "No space left on device" in run["output"], run["output"]
        assert run["disk_limit"]
        assert f"disk limit (300 MiB) reached on {run['host']}" in run["output"]
    zoe = got["zoe"]
    assert zoe["status"] == "graded" and zoe["score"] == 100, zoe["first"]["checks"]
    assert not any(r["disk_limit"] for r in zoe["first"]["scripts"])


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
        while not list(Path("/sys/class/net").glob(f"wsl-{PREFIX}*")):
            assert time.monotonic() < deadline, "no grading lab came up"
            time.sleep(0.5)
        time.sleep(3)  # the hosts boot (or the script runs): a worker waits on them
        process.send_signal(signal.SIGINT)
        interrupted = time.monotonic()
        _, stderr = process.communicate(timeout=120)
        seconds = time.monotonic() - interrupted
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr
    assert seconds < 30, f"Ctrl-C took {seconds:.0f} s to end the grading (waits cut short)"
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
        if json.loads(entry.read_text()).get("lab", "").startswith(PREFIX):
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


def test_slots_side_by_side_build_the_given_components_once(tmp_path):
    """Two students at once with a cold cache: one slot builds the given components while the
    other waits, then takes the state over for its own addresses; both get every point."""
    require_lab_prerequisites()
    assignment = {
        "name": "given-web-app",
        "given": ["app", "web"],
        "steps": [{"file": "hello", "hosts": ["web-01"]}],
        "checks": {"web.nginx": 10, "web.reverse-proxy": 10},
        "limits": {"script_seconds": 30},
    }
    path = tmp_path / "given-web-app.yml"
    path.write_text(yaml.safe_dump(assignment))
    klass = tmp_path / "class"
    for student in ("kai", "lou"):
        (klass / student).mkdir(parents=True)
        (klass / student / "hello").write_text("#!/bin/bash\ntrue\n")
    for entry in (HOME / "cache" / "reference").glob("*/meta.json"):
        if json.loads(entry.read_text()).get("lab", "").startswith(PREFIX):
            shutil.rmtree(entry.parent)
    out = tmp_path / "out"
    try:
        grade(path, klass, "--out", out, "--jobs", "2")
    finally:
        assert leftovers() == []
    got = results(out)
    for student in ("kai", "lou"):
        assert got[student]["score"] == 20, got[student]["first"]["checks"]
    metas = [json.loads(m.read_text()) for m in (HOME / "cache" / "reference").glob("*/meta.json")]
    ours = [m for m in metas if m["lab"].startswith(PREFIX) and m["components"] == ["app", "web"]]
    built = [m for m in ours if m["parent"] is None]
    assert len(built) == 1, ours  # built once; the other slot's entry is made from it
    assert {m["parent"] for m in ours if m["parent"]} <= {built[0]["key"]}, ours


def test_a_script_that_does_nothing_loses_nothing_the_given_components_hold(tmp_path):
    """The given components answer before the first run's checks: restored hosts have just
    booted (MariaDB, the replica, HAProxy's health checks), and the first run is graded."""
    require_lab_prerequisites()
    assignment = {
        "name": "given-all",
        "given": ["database", "app", "web", "lb"],
        "steps": [{"file": "nothing", "hosts": ["lb-01"]}],
        "checks": {
            "web.reverse-proxy": 25,
            "db.servers": 25,
            "db.replication": 25,
            "lb.haproxy": 25,
        },
        "limits": {"script_seconds": 30},
    }
    path = tmp_path / "given-all.yml"
    path.write_text(yaml.safe_dump(assignment))
    (tmp_path / "class" / "kim").mkdir(parents=True)
    (tmp_path / "class" / "kim" / "nothing").write_text("#!/bin/bash\ntrue\n")
    for entry in (HOME / "cache" / "reference").glob("*/meta.json"):
        meta = json.loads(entry.read_text())
        if meta.get("lab", "").startswith(PREFIX) and len(meta["components"]) == 4:
            shutil.rmtree(entry.parent)  # built now, saved, then the hosts restart: the worst case
    out = tmp_path / "out"
    try:
        grade(path, tmp_path / "class", "--out", out)
    finally:
        assert leftovers() == []
    kim = results(out)["kim"]
    assert kim["score"] == 100, kim["first"]["checks"]


FRESH_SERVER_SCRIPT = """
# Written for a brand-new Ubuntu server: its MySQL logs to /var/log/mysql.
[ "$LAB_HOST" = lb-01 ] && exit 0
echo "package lists: $(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages' | wc -l)"
apt-get update -q >/dev/null && apt-get install -y -q mariadb-server >/dev/null
variable=log_error
[ "$LAB_HOST" = web-02 ] && variable=log_eror  # a typo here: MariaDB refuses to start
printf '[mysqld]\\n%s = /var/log/mysql/error.log\\n' $variable \\
    > /etc/mysql/mariadb.conf.d/60-student.cnf
systemctl restart mariadb && echo "mariadb restarted"
true
"""


def assert_a_fresh_servers_database(runs: dict[str, str]) -> None:
    """The script for a new Ubuntu server installed MariaDB and logs to /var/log/mysql; the
    service it left failed on web-02 is in the report with its own log lines."""
    assert "package lists: 0" in runs["web-01"], runs
    assert "mariadb restarted" in runs["web-01"] and "services that failed" not in runs["web-01"]
    assert "services that failed on web-02" in runs["web-02"], runs["web-02"]
    assert "mariadb.service" in runs["web-02"] and "log_eror" in runs["web-02"], runs["web-02"]


HOSTS_AS_GIVEN = """#!/bin/bash
echo "lists: $(find /var/lib/apt/lists -maxdepth 1 -type f | wc -l)"
ufw status
# /etc/hostname is written when the host is made: ufw older than it came with the host's layers
if [ /var/lib/dpkg/info/ufw.list -ot /etc/hostname ]; then echo "ufw came with the host"
else echo "ufw installed on this host"; fi
cat /etc/systemd/system/mariadb.service.d/fresh-server.conf
[ -x /usr/bin/mysqladmin ] && mysqladmin ping
true
"""


@pytest.mark.parametrize("given", [[], ["database"]], ids=["bare", "given-database"])
def test_a_fresh_server_profile_is_built_once_per_class(tmp_path, given):
    """Three students, two labs side by side: one lab installs the profile (over the given
    components) while the other waits; every other student's hosts start from it, as fresh,
    with nothing installed, and the given services answer before the first file runs. With
    nothing given, one student's script is one for a new Ubuntu server's database."""
    require_lab_prerequisites()
    assignment = {
        "name": "fresh-once",
        "given": given,
        "profile": "fresh-server",
        "steps": [{"file": "0-look", "hosts": ["lb-01", "web-01", "web-02"]}],
        "checks": {"servers.reachable": 10},
        # hosts of a shape of their own (the limits are part of it): a cold cache for this class
        "limits": {"script_seconds": 240, "processes": 2000 + os.getpid() % 1000},
    }
    path = tmp_path / "fresh-once.yml"
    path.write_text(yaml.safe_dump(assignment))
    for student in ("ann", "ben", "cal"):
        (tmp_path / "class" / student).mkdir(parents=True)
        script = HOSTS_AS_GIVEN + f"# {student}\n"
        if student == "cal" and not given:
            script += FRESH_SERVER_SCRIPT
        (tmp_path / "class" / student / "0-look").write_text(script)
    out = tmp_path / "out"
    try:
        grade(path, tmp_path / "class", "--out", out, "--jobs", "2")
    finally:
        assert leftovers() == []
    built = []
    for student, result in graded(out).items():
        runs = {run["host"]: run["output"] for run in result["first"]["scripts"]}
        assert set(runs) == {"lb-01", "web-01", "web-02"}, runs
        for output in runs.values():
            assert "lists: 0" in output and "Status: inactive" in output, output
            assert "LogsDirectory=mysql" in output, output
        if given:
            assert "mysqld is alive" in runs["web-01"], runs["web-01"]
        elif student == "cal":
            assert_a_fresh_servers_database(runs)
        origins = {"installed on this host" in output for output in runs.values()}
        assert len(origins) == 1, runs
        built += [student] if origins == {True} else []
    assert len(built) == 1, f"the profile was installed for {built}, not once"
