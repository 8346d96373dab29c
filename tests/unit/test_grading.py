"""The grading engine's pure parts: assignments, submissions, substitution, re-run verdicts."""

from __future__ import annotations

import io
import stat
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest
import yaml

from lab.core.errors import LabError
from lab.grading import assignment, profile, submissions
from lab.grading.class_run import disk_verdict, graded_checks, refused_flags, rerun_verdict
from lab.grading.model import Pass, ScriptRun
from lab.grading.scripts import command_for, parse_output
from lab.grading.substitute import server_addresses, substitute
from lab.providers import lxcnet

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "assignments").glob("*.yml"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_shipped_assignment_loads(path):
    loaded = assignment.load(path)
    assert loaded.name == path.stem
    assert loaded.max_score > 0 and loaded.steps


def test_the_load_balancer_assignment_takes_the_curricula_files():
    lb = assignment.load(ROOT / "assignments" / "load-balancer.yml")
    assert lb.files == ["0-custom_http_response_header", "1-install_load_balancer"]
    assert lb.steps[0].hosts == ("web-01", "web-02")
    assert lb.steps[1].substitute == ("web-01", "web-02")
    assert "0x0F-load_balancer" in lb.folders and lb.max_score == 100


def write(tmp_path, data) -> Path:
    path = tmp_path / "a.yml"
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


GOOD = {"name": "x", "steps": [{"file": "run.sh", "hosts": ["web-01"]}], "checks": {"web.nginx": 7}}


@pytest.mark.parametrize(
    "change, message",
    [
        ({"name": "Bad Name"}, "name: expected"),
        ({"steps": []}, "steps: expected"),
        ({"steps": [{"file": "../x", "hosts": ["web-01"]}]}, "file: expected a file name"),
        ({"steps": [{"file": "a", "hosts": ["db-09"]}]}, "unknown host 'db-09'"),
        ({"checks": {"web.nope": 3}}, "unknown check or section 'web.nope'"),
        ({"checks": {"web server": 3}}, "a section takes its checks' own points"),
        ({"given": ["kitchen"]}, "unknown component 'kitchen'"),
        ({"limits": {"script_seconds": -1}}, "positive number"),
        ({"limits": {"disk_mib": 0}}, "limits.disk_mib: expected a positive number"),
        ({"limits": {"disk_mib": "4G"}}, "limits.disk_mib: expected a positive number"),
        ({"limits": {"disk_mib": True}}, "limits.disk_mib: expected a positive number"),
        ({"limits": {"disk_mib": 10}}, "limits.disk_mib: expected a number of at least 64"),
        ({"limits": {"disk": 300}}, "limits: expected some of .*disk_mib"),
        ({"colour": "red"}, "unknown key 'colour'"),
        ({"profile": "ubuntu"}, "profile: expected one of lab, fresh-server"),
    ],
)
def test_a_malformed_assignment_is_one_clear_error(tmp_path, change, message):
    with pytest.raises(LabError, match=message):
        assignment.load(write(tmp_path, {**GOOD, **change}))


def test_the_host_profile_is_chosen_in_the_assignment(tmp_path):
    assert assignment.load(write(tmp_path, GOOD)).profile == "lab"
    chosen = assignment.load(write(tmp_path, {**GOOD, "profile": "fresh-server"}))
    assert chosen.profile == "fresh-server"


def test_failed_services_are_noted_on_the_last_run_on_their_host():
    runs = [ScriptRun("a", "web-01", 0, 1.0, "one", 3), ScriptRun("b", "web-01", 0, 1.0, "two", 3)]
    noted = profile.with_failed_services(runs, {"web-01": "== mariadb.service\nunknown variable"})
    assert noted[0].output == "one"
    assert noted[1].output.startswith("two\n[grader] services that failed on web-01")
    assert noted[1].output.endswith("unknown variable")


def test_the_disk_limit_defaults_to_4_gib_per_host_and_reaches_the_grading_lab(tmp_path):
    from lab.grading.sandbox import SandboxLab, Slot

    assert assignment.load(write(tmp_path, GOOD)).limits.disk_mib == 4096
    limits = assignment.load(write(tmp_path, {**GOOD, "limits": {"disk_mib": 300.0}})).limits
    assert limits.disk_mib == 300 and isinstance(limits.disk_mib, int)
    assert SandboxLab(Slot(150, handle=None), limits).topology.sandbox.disk_mib == 300


def test_missing_or_unreadable_assignment_files(tmp_path):
    with pytest.raises(LabError, match="not found"):
        assignment.load(tmp_path / "none.yml")
    with pytest.raises(LabError, match="cannot read"):
        assignment.load(write(tmp_path, "name: [unclosed"))


def test_sections_take_the_catalogue_points_in_catalogue_order(tmp_path):
    loaded = assignment.load(
        write(tmp_path, {**GOOD, "checks": {"lb.haproxy": 3, "web server": None}})
    )
    assert list(loaded.checks)[:2] == ["web.nginx", "web.static"]
    assert loaded.checks["lb.haproxy"] == 3 and list(loaded.checks)[-1] == "lb.haproxy"


LB_SCRIPT = """#!/usr/bin/env bash
# 34.229.137.21 is web-01
server 1-web-01 34.229.137.21:80 check
server 1-web-02 100.26.240.111:80 check
bind 0.0.0.0:80  # and 127.0.0.1, 255.255.255.0, 192.168.56.10
server extra 54.1.1.1:80
"""


def test_server_addresses_are_distinct_in_order_of_first_appearance():
    found = server_addresses(LB_SCRIPT, {"192.168.56.10"})
    assert found == ["34.229.137.21", "100.26.240.111", "54.1.1.1"]


def test_substitution_maps_them_to_the_hosts_and_lists_every_change():
    targets = [("web-01", "192.168.56.11"), ("web-02", "192.168.56.12")]
    text, changes = substitute(LB_SCRIPT, targets, {"192.168.56.10"})
    assert "server 1-web-01 192.168.56.11:80" in text and "# 192.168.56.11 is web-01" in text
    assert "server 1-web-02 192.168.56.12:80" in text
    assert "54.1.1.1" in text and "127.0.0.1" in text and "0.0.0.0" in text
    assert changes == [
        {"found": "34.229.137.21", "replaced_by": "192.168.56.11", "host": "web-01"},
        {"found": "100.26.240.111", "replaced_by": "192.168.56.12", "host": "web-02"},
        {"found": "54.1.1.1", "replaced_by": "", "host": ""},
    ]


def test_addresses_inside_longer_numbers_are_not_touched():
    assert server_addresses("version 1.2.3.4.5 and 300.1.1.1", set()) == []


# -- submissions ------------------------------------------------------------------------
def folder(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_a_class_folder_holds_folders_and_archives(tmp_path):
    folder(tmp_path / "alice", {"0-x": "a"})
    (tmp_path / "bob smith.tar.gz").write_bytes(b"")
    (tmp_path / "carol.zip").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("ignored")
    found = submissions.discover(tmp_path)
    assert [(s.student, s.kind) for s in found] == [
        ("alice", "folder"),
        ("bob smith", "archive"),
        ("carol", "archive"),
    ]


def test_an_empty_class_folder_is_one_clear_error(tmp_path):
    with pytest.raises(LabError, match="holds no submissions"):
        submissions.discover(tmp_path)
    with pytest.raises(LabError, match="no submissions at"):
        submissions.discover(tmp_path / "missing")


def test_archives_unpack_without_escaping_and_wrapping_folders_are_stepped_into(tmp_path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in (
            ("repo/0x0F-load_balancer/1-install_load_balancer", b"x"),
            ("../evil", b"y"),
            ("/etc/passwd2", b"z"),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    path = tmp_path / "erin.tar.gz"
    path.write_bytes(buffer.getvalue())
    root = submissions.unpack(submissions.Submission("erin", "archive", str(path)), tmp_path / "w")
    assert root.parent.name == "repo"  # single folders are stepped into
    assert not (tmp_path / "evil").exists() and not Path("/etc/passwd2").exists()
    found = submissions.find_files(root, ["1-install_load_balancer"], ("", "0x0F-load_balancer"))
    assert found["1-install_load_balancer"].read_text() == "x"


def test_tar_links_devices_and_special_bits_are_left_out(tmp_path):
    """Without extractall's filter= (Python 3.11.4+): only regular files, with plain modes."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:

        def add(name, kind=tarfile.REGTYPE, data=b"", mode=0o644, link=""):
            info = tarfile.TarInfo(name)
            info.type, info.size, info.mode, info.linkname = kind, len(data), mode, link
            archive.addfile(info, io.BytesIO(data) if data else None)

        add("w/script.sh", data=b"echo hi", mode=0o4777)  # setuid, world-writable
        add("w/notes.txt", data=b"n", mode=0o666)
        add("w/passwd", tarfile.SYMTYPE, link="/etc/passwd")
        add("w/hard", tarfile.LNKTYPE, link="/etc/shadow")
        add("w/null", tarfile.CHRTYPE)
        add("w/fifo", tarfile.FIFOTYPE)
        add("w/up", tarfile.SYMTYPE, link="..")
        add("w/up/escaped", data=b"no")
    path = tmp_path / "gina.tar.gz"
    path.write_bytes(buffer.getvalue())
    root = submissions.unpack(submissions.Submission("g", "archive", str(path)), tmp_path / "w")
    assert sorted(p.name for p in root.rglob("*")) == ["escaped", "notes.txt", "script.sh", "up"]
    assert stat.S_IMODE((root / "script.sh").stat().st_mode) == 0o755
    assert stat.S_IMODE((root / "notes.txt").stat().st_mode) == 0o644
    assert (root / "up").is_dir() and not (root / "up").is_symlink()  # a folder, not the link


def test_a_zip_with_escaping_entries_keeps_only_the_safe_ones(tmp_path):
    path = tmp_path / "frank.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("0-custom_http_response_header", "echo hi")
        archive.writestr("../../outside", "no")
    root = submissions.unpack(submissions.Submission("f", "archive", str(path)), tmp_path / "w")
    assert (root / "0-custom_http_response_header").is_file()
    assert not (tmp_path / "outside").exists()


@pytest.mark.parametrize("name", ["broken.zip", "broken.tar.gz"])
def test_an_unreadable_archive_is_unusable_with_one_line(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"this is not an archive")
    with pytest.raises(submissions.Unusable, match=f"unreadable archive {name}"):
        submissions.unpack(submissions.Submission("x", "archive", str(path)), tmp_path / "w")


def test_an_empty_submission_is_unusable(tmp_path):
    (tmp_path / "ghost" / "sub").mkdir(parents=True)
    sub = submissions.Submission("ghost", "folder", str(tmp_path / "ghost"))
    with pytest.raises(submissions.Unusable, match="empty"):
        submissions.unpack(sub, tmp_path / "w")


def git(*args, cwd):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def test_git_submissions_are_cloned_at_their_ref(tmp_path):
    repo = folder(tmp_path / "repo", {"1-install_load_balancer": "v1"})
    git("init", "-q", "-b", "main", cwd=repo)
    git("add", ".", cwd=repo)
    git("-c", "user.email=s@x", "-c", "user.name=s", "commit", "-qm", "v1", cwd=repo)
    git("tag", "handed-in", cwd=repo)
    (repo / "1-install_load_balancer").write_text("v2")
    git("-c", "user.email=s@x", "-c", "user.name=s", "commit", "-qam", "v2", cwd=repo)
    roster = tmp_path / "class.yml"
    roster.write_text(
        yaml.safe_dump(
            {
                "students": {
                    "gina": {"git": str(repo), "ref": "handed-in"},
                    "hal": {"git": str(tmp_path / "nothing-here")},
                }
            }
        )
    )
    gina, hal = submissions.discover(roster)
    root = submissions.unpack(gina, tmp_path / "w1")
    assert (root / "1-install_load_balancer").read_text() == "v1"
    assert not (root / ".git").exists()
    with pytest.raises(submissions.Unusable, match="cannot clone"):
        submissions.unpack(hal, tmp_path / "w2")


def test_the_content_hash_follows_content_not_time(tmp_path):
    a = folder(tmp_path / "a", {"x": "1", "d/y": "2"})
    b = folder(tmp_path / "b", {"d/y": "2", "x": "1"})
    assert submissions.content_hash(a) == submissions.content_hash(b)
    (b / "x").write_text("changed")
    assert submissions.content_hash(a) != submissions.content_hash(b)


def test_student_names_are_safe():
    assert submissions.student_name("../../etc") == "etc"
    assert submissions.student_name("<script>") == "script"
    assert submissions.student_name("...") == "student"


# -- running and judging ----------------------------------------------------------------
def test_the_script_command_quotes_everything_from_outside():
    limits = assignment.Limits(script_seconds=9, output_kib=2)
    command = command_for("0-x'; rm -rf /", "webstack-grade-1-0", limits, {"LAB_X": "a'b $(id)"})
    inner = command.split("sh -c ", 1)[1]
    assert "rm -rf /" in inner and "'\"'\"'" in inner  # the quote is escaped, twice over
    assert "RuntimeMaxSec=9" in command and "head -c 2048" in command


def test_the_output_trailer_gives_exit_code_and_the_uncaptured_rest():
    assert parse_output("hello\n@@webstack-grade rc=3 rest=100\n") == ("hello", 3, 100)
    assert parse_output("cut off") == ("cut off", None, 0)


def run(file, host, code):
    return ScriptRun(file, host, code, 1.0, "", 0)


def checks(**statuses):
    return [
        {"id": cid, "status": st, "points": 5, "awarded": 5 * (st == "pass")}
        for cid, st in statuses.items()
    ]


def test_rerun_verdicts():
    first = Pass([run("a", "web-01", 0)], checks(x="pass", y="fail"), 1)
    same = Pass([run("a", "web-01", 0)], checks(x="pass", y="fail"), 1)
    assert rerun_verdict(first, same) == "idempotent"
    broke = Pass([run("a", "web-01", 1)], checks(x="fail", y="fail"), 1)
    assert rerun_verdict(first, broke) == "fails on re-run: a on web-01; breaks on re-run: x"
    assert rerun_verdict(first, None) == ""


def test_a_full_disk_or_enospc_marks_the_run_and_says_so_in_its_log():
    plain = ScriptRun("0-x", "web-01", 0, 1.0, "done\n", 5)
    assert disk_verdict(plain, False, 300) == plain
    full = disk_verdict(plain, True, 300)
    assert full.disk_limit and full.exit_code == 0
    assert full.output == "done\n[grader] disk limit (300 MiB) reached on web-01"
    wrote = ScriptRun("0-x", "web-02", 1, 1.0, "dd: error writing 'f': No space left on device", 9)
    seen = disk_verdict(wrote, False, 300)  # the script removed what it wrote: the log tells
    assert seen.disk_limit and seen.output.endswith("disk limit (300 MiB) reached on web-02")


def test_graded_checks_take_the_assignments_points():
    report = checks(x="pass", y="fail")
    graded = graded_checks(report, {"x": 20, "y": 30, "z": 5})
    assert [(c["id"], c["points"], c["awarded"]) for c in graded] == [
        ("x", 20, 20),
        ("y", 30, 0),
        ("z", 5, 0),
    ]


def test_folders_and_archives_are_hashed_as_handed_in(tmp_path):
    a = folder(tmp_path / "a", {"x": "1"})
    archive = tmp_path / "b.zip"
    archive.write_bytes(b"PK not really")
    assert submissions.source_hash(submissions.Submission("a", "folder", str(a)))
    assert submissions.source_hash(submissions.Submission("b", "archive", str(archive)))
    assert submissions.source_hash(submissions.Submission("c", "git", "https://x/y.git")) == ""


def test_what_the_firewall_refused_is_flagged_in_words():
    assert refused_flags({"inside": 0, "outside": 0}) == []
    inside, outside = refused_flags({"inside": 3, "outside": 7})
    assert "refused 3 packets" in inside and "grading machine or another lab" in inside
    assert "refused 7 packets" in outside and "outside world" in outside


def test_the_fence_counters_are_read_from_nft_json():
    recorded = (
        '{"nftables": [{"metainfo": {"version": "1.0.6"}}, {"counter": {"family": "inet", '
        '"name": "refused_inside", "table": "webstack_lab_x", "handle": 1, '
        '"comment": "c", "packets": 12, "bytes": 720}}]}'
    )
    assert lxcnet.counter_packets(recorded) == 12
    assert lxcnet.counter_packets("") == 0 and lxcnet.counter_packets("not json") == 0
