"""A gradebook that imports: names as given, rosters, Moodle's and Canvas's files, unreachable.

What the platforms require is taken from their documentation, cited in docs/grading.md:
- Moodle, Grade import (https://docs.moodle.org/311/en/Grade_import): a CSV with a header row;
  one column identifies the user, mapped to username, useremail, useridnumber or userid; each
  other column maps to a grade item (or is ignored). Moodle's importer (grade/import/csv) stops
  the whole import at a row whose identifier matches no user, and imports an empty grade as
  "no grade".
- Canvas (https://teaching.resources.osu.edu/toolsets/carmencanvas/guides/calculating-final-grades/
  import-csv-file-carmen-grades): the file needs Student (or ID, or SIS User ID), SIS Login ID
  and Section, then one column per assignment, as in the gradebook's own export (Student, ID,
  SIS User ID, SIS Login ID, Section). Canvas's GradebookImporter wants a header starting with
  Student and ID whose student columns end with Section (SIS Login ID right after SIS User ID),
  matches students by ID, SIS User ID, SIS Login ID, then name, and reads a row whose first
  cell contains "Points Possible" as the assignments' points.
"""

from __future__ import annotations

import csv
import io
import json
import socket
import time
from pathlib import Path

import pytest

from lab.core.errors import LabError
from lab.grading import roster as rosters
from lab.grading import submissions
from lab.grading.gradebook import load_scripts, save_scripts, write_gradebook, write_platform_file
from lab.grading.live import grade_live, load_class
from lab.grading.model import ERROR, INVALID, UNREACHABLE, file_stem, load_results

from .test_gradebook import CHECKS, Page, result

MOODLE_MAP_TO = {"username", "email", "idnumber", "id"}  # Moodle's four ways to identify a user
CANVAS_STUDENT = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]


def rows_of(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


# -- names as given ----------------------------------------------------------------------


def test_names_are_kept_as_given_and_names_that_clean_alike_do_not_stop_the_run(tmp_path):
    for name in ("Jöns Ås", "J_ns__s", "José García", "bob"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "0-x").write_text("echo")
    (tmp_path / "Zoë O'Brien.tar.gz").write_bytes(b"")
    (tmp_path / "a b.zip").write_bytes(b"")
    (tmp_path / "a_b.zip").write_bytes(b"")
    found = submissions.discover(tmp_path)
    names = sorted(s.student for s in found)
    assert names == sorted(
        ["Jöns Ås", "J_ns__s", "José García", "bob", "Zoë O'Brien", "a b", "a_b"]
    )
    stems = [s.stem for s in found]
    assert len(set(stems)) == len(stems)  # a file each, though "a b" and "a_b" clean alike
    assert all(stem == file_stem(stem) or "-" in stem for stem in stems)
    assert next(s for s in found if s.student == "bob").stem == "bob"  # plain names unchanged


def test_the_gradebook_keeps_the_name_and_results_get_a_file_each(tmp_path):
    names = ["Jöns Ås", "J_ns__s", "a b", "a_b", "Åsa"]
    results = [result(name) for name in names]
    for found in results:
        found.save(tmp_path / "results")
    assert len(list((tmp_path / "results").glob("*.json"))) == len(names)
    assert sorted(r.student for r in load_results(tmp_path / "results")) == sorted(names)
    write_gradebook(results, CHECKS, tmp_path, pairs=[])
    students = [row["student"] for row in csv.DictReader(io.StringIO(_text(tmp_path)))]
    assert sorted(students) == sorted(names)
    assert len(list((tmp_path / "reports").iterdir())) == len(names)


def _text(out: Path, name: str = "grades.csv") -> str:
    return (out / name).read_text(encoding="utf-8")


def test_the_same_name_twice_is_still_one_clear_error(tmp_path):
    (tmp_path / "alice").mkdir()
    (tmp_path / "alice.zip").write_bytes(b"")
    with pytest.raises(LabError, match=r"two submissions for 'alice'.*alice and alice\.zip"):
        submissions.discover(tmp_path)


# -- rosters ------------------------------------------------------------------------------


def test_a_yaml_roster_is_the_submissions_roster_with_identifiers(tmp_path):
    path = tmp_path / "roster.yml"
    path.write_text(
        "students:\n"
        "  Jöns Ås: {path: late/j.zip, username: jas, email: jas@example.edu, id: 17}\n"
        "  hal: {git: https://git.example.edu/hal.git, sis_login_id: hal9, section: A}\n"
        "  ida:\n"
    )
    roster = rosters.load(path)
    assert roster["Jöns Ås"] == {"username": "jas", "email": "jas@example.edu", "id": "17"}
    assert roster["hal"] == {"sis_login_id": "hal9", "section": "A"}
    assert roster["ida"] == {}
    path.write_text(path.read_text().replace("  ida:\n", ""))
    assert [s.student for s in submissions.roster(path)] == ["Jöns Ås", "hal"]


def test_a_typo_in_a_yaml_roster_is_one_line_naming_the_field(tmp_path):
    path = tmp_path / "roster.yml"
    path.write_text("students:\n  amy: {emial: amy@example.edu}\n")
    with pytest.raises(LabError, match=r"students\.amy\.emial: unknown field"):
        rosters.load(path)


def test_a_csv_roster_takes_platform_headers_and_a_byte_order_mark(tmp_path):
    path = tmp_path / "roster.csv"
    path.write_bytes(
        "\ufeffStudent,Username,Email address,ID number,SIS Login ID,Notes\n"
        "José García,jgarcia,jg@example.edu,S-1,jg1,whatever\n"
        "bob,bob,,,,\n"
        ",,,,,\n".encode()
    )
    roster = rosters.load(path)
    assert roster == {
        "José García": {
            "username": "jgarcia",
            "email": "jg@example.edu",
            "idnumber": "S-1",
            "sis_login_id": "jg1",
        },
        "bob": {"username": "bob"},
    }


def test_a_csv_roster_without_a_student_column_or_listing_one_twice_is_refused(tmp_path):
    path = tmp_path / "roster.csv"
    path.write_text("username,email\nbob,bob@example.edu\n")
    with pytest.raises(LabError, match="no `student` column"):
        rosters.load(path)
    path.write_text("student,username\nbob,b1\nbob,b2\n")
    with pytest.raises(LabError, match="line 3: 'bob' is listed twice"):
        rosters.load(path)


def test_roster_names_match_however_the_letters_were_composed():
    decomposed = "Jo\u0301se\u0301"  # as a Mac writes file names
    assert rosters.key(decomposed) == rosters.key("Jósé")


# -- Moodle --------------------------------------------------------------------------------

CLASS = [
    result("alice"),
    result("bob", {"lb.round-robin": "fail"}),
    result("carol", status=INVALID),
    result("dave", status=ERROR),
    result("erin", status=UNREACHABLE),
    result("frank"),  # not in the roster
    result("Jöns Ås"),
]
ROSTER = {
    "alice": {"username": "alice1", "email": "alice@example.edu", "id": "11", "section": "A"},
    "bob": {"username": "bob2", "email": "bob@example.edu", "sis_user_id": "S2"},
    "carol": {"username": "carol3", "id": "13", "sis_login_id": "carol@example.edu"},
    "dave": {"username": "dave4", "id": "14"},
    "erin": {"username": "erin5", "id": "15"},
    "Jöns Ås": {"username": "jas", "name": "Ås, Jöns", "id": "16", "section": "B"},
}


def test_the_moodle_file_has_one_identifier_column_and_every_row_identifies_a_user(tmp_path):
    export = write_platform_file("moodle", CLASS, CHECKS, tmp_path, ROSTER)
    rows = rows_of(_text(tmp_path, "grades-moodle.csv"))
    header, body = rows[0], rows[1:]
    # column 1: the identifier, one of the four Moodle maps a user from; complete in every row
    assert header[0] == "username" in MOODLE_MAP_TO and export.identifier == "username"
    assert [row[0] for row in body] == ["jas", "alice1", "bob2", "carol3"]  # by name
    assert all(row[0] for row in body)
    # column 2: the grade item, named after the assignment, a number in every row
    assert header[1] == "load-balancer"
    assert [row[1] for row in body] == ["25", "25", "15", "0"]
    # then one column per check, numbers (a grade item each if wanted)
    assert header[2:] == [check["id"] for check in CHECKS]
    assert body[2][2:] == ["5", "5", "0", "5"] and body[3][2:] == ["0", "0", "0", "0"]
    assert all(len(row) == len(header) for row in body)
    # no empty grade (Moodle would clear the item), no row that matches nobody
    left_out = dict(export.left_out)
    assert set(left_out) == {"dave", "erin", "frank"}
    assert "not graded (error)" in left_out["dave"] and "unreachable" in left_out["erin"]
    assert left_out["frank"] == "not in the roster"


def test_moodle_takes_the_first_identifier_every_student_has_and_names_who_lacks_it(tmp_path):
    roster = {
        "alice": {"email": "alice@example.edu", "username": "alice1"},
        "bob": {"email": "bob@example.edu"},
        "Jöns Ås": {"username": "jas"},
    }
    export = write_platform_file("moodle", CLASS, CHECKS, tmp_path, roster)
    rows = rows_of(_text(tmp_path, "grades-moodle.csv"))
    assert rows[0][0] == "username"  # two of three have one, one of three an e-mail
    assert [row[0] for row in rows[1:]] == ["jas", "alice1"]
    assert ("bob", "the roster gives no username") in export.left_out
    roster["Jöns Ås"]["email"] = "jas@example.edu"
    write_platform_file("moodle", CLASS, CHECKS, tmp_path, roster)
    rows = rows_of(_text(tmp_path, "grades-moodle.csv"))
    assert rows[0][0] == "email"  # all three have one
    assert [row[0] for row in rows[1:]] == [
        "jas@example.edu",
        "alice@example.edu",
        "bob@example.edu",
    ]


def test_the_per_check_columns_can_be_left_out(tmp_path):
    write_platform_file("moodle", CLASS, CHECKS, tmp_path, ROSTER, check_columns=False)
    assert rows_of(_text(tmp_path, "grades-moodle.csv"))[0] == ["username", "load-balancer"]
    write_platform_file("canvas", CLASS, CHECKS, tmp_path, ROSTER, check_columns=False)
    assert rows_of(_text(tmp_path, "grades-canvas.csv"))[0] == [*CANVAS_STUDENT, "load-balancer"]
    write_gradebook(CLASS, CHECKS, tmp_path, pairs=[], check_columns=False)
    header = rows_of(_text(tmp_path))[0]
    assert header == ["student", "total", "maximum", "rerun", "status", "error"]


# -- Canvas --------------------------------------------------------------------------------


def test_the_canvas_file_has_canvas_student_columns_then_the_assignment(tmp_path):
    export = write_platform_file("canvas", CLASS, CHECKS, tmp_path, ROSTER)
    rows = rows_of(_text(tmp_path, "grades-canvas.csv"))
    header = rows[0]
    assert header[:5] == CANVAS_STUDENT  # Student, ID, SIS User ID, SIS Login ID, Section
    assert header[5] == "load-balancer"  # the assignment: matched by name, or created
    assert header[6:] == [check["id"] for check in CHECKS]
    # the second row gives the points possible, as Canvas's own export does
    assert rows[1][0].strip() == "Points Possible" and rows[1][5:] == ["25", "5", "5", "10", "5"]
    body = {row[0]: dict(zip(header, row, strict=True)) for row in rows[2:]}
    assert list(body) == ["Ås, Jöns", "alice", "bob", "carol"]
    assert body["alice"]["ID"] == "11" and body["alice"]["Section"] == "A"
    assert body["bob"]["SIS User ID"] == "S2" and body["bob"]["ID"] == ""
    assert body["carol"]["SIS Login ID"] == "carol@example.edu"
    assert body["Ås, Jöns"]["ID"] == "16" and body["Ås, Jöns"]["Section"] == "B"
    for row in body.values():  # each row names the student by an id Canvas knows
        assert row["ID"] or row["SIS User ID"] or row["SIS Login ID"]
        assert row["load-balancer"].isdigit()
    assert body["bob"]["load-balancer"] == "15" and body["carol"]["load-balancer"] == "0"
    assert {student for student, _ in export.left_out} == {"dave", "erin", "frank"}


# -- the command line ---------------------------------------------------------------------


def _graded_folder(out: Path) -> None:
    for found in CLASS:
        found.save(out / "results")
    write_gradebook(CLASS, CHECKS, out, pairs=[])


def test_merge_writes_the_platform_file_from_a_roster_and_says_who_is_left_out(run_lab, tmp_path):
    _graded_folder(tmp_path / "OUT-1")
    (tmp_path / "roster.csv").write_text(
        "student,username,id,section\nalice,alice1,11,A\nbob,bob2,12,A\n"
    )
    done = run_lab(
        "grade", "merge", "OUT-1", "--out", "OUT", "--format", "canvas",
        "--roster", "roster.csv", "--no-check-columns", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "canvas: 2 students in OUT/grades-canvas.csv" in done.stdout
    assert "left out frank: not in the roster" in done.stdout
    rows = rows_of(_text(tmp_path / "OUT", "grades-canvas.csv"))
    assert rows[0] == [*CANVAS_STUDENT, "load-balancer"]
    assert [row[1] for row in rows[2:]] == ["11", "12"]
    assert "lb.haproxy" not in rows_of(_text(tmp_path / "OUT"))[0]


def test_a_platform_format_without_a_roster_is_one_clear_error(run_lab, tmp_path):
    _graded_folder(tmp_path / "OUT-1")
    done = run_lab("grade", "merge", "OUT-1", "--out", "OUT", "--format", "moodle", cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "--format moodle needs a roster" in done.stderr
    assert not (tmp_path / "OUT").exists()


# -- unreachable servers -------------------------------------------------------------------


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_student_is_not_graded_0_but_unreachable(tmp_path):
    (tmp_path / "key").write_text("not a key: the connection is refused before it is read\n")
    port = closed_port()
    hosts = "".join(
        f"      {host}: {{address: 127.0.0.1, port: {port}, user: u, key: key}}\n"
        for host in ("lb-01", "web-01", "web-02")
    )
    (tmp_path / "class.yml").write_text(f"students:\n  Typo Tom:\n    hosts:\n{hosts}")
    students = load_class(tmp_path / "class.yml")
    [found] = grade_live(students, {"lb.haproxy": 5, "web.served-by": 5}, "live", jobs=1)
    assert found.student == "Typo Tom"
    assert found.status == UNREACHABLE and found.first is None
    assert f"lb-01 (127.0.0.1:{port}): unreachable over SSH" in found.error
    write_gradebook([found, result("alice")], CHECKS, tmp_path / "OUT", pairs=[])
    row = next(csv.DictReader(io.StringIO(_text(tmp_path / "OUT"))))
    assert row["student"] == "Typo Tom"
    assert row["status"] == "unreachable" and row["total"] == ""  # no grade, not a 0
    summary = json.loads(_text(tmp_path / "OUT", "grades.json"))["summary"]
    assert summary["unreachable"] == 1 and summary["graded"] == 1 and summary["mean"] == 25
    report = next((tmp_path / "OUT" / "reports").glob("Typo_Tom*.html")).read_text()
    assert "Servers unreachable, not graded" in report


def live_class(tmp_path, extra: str = "", student_extra: str = "") -> Path:
    (tmp_path / "key").write_text("a key\n")
    hosts = "".join(
        f"      {host}: {{address: 192.168.90.{10 + i}, ssh: {ssh}, user: u, key: key}}\n"
        for i, (host, ssh) in enumerate(
            [("lb-01", "192.168.90.10"), ("web-01", "192.168.90.41"), ("web-02", "192.168.90.12")]
        )
    )
    path = tmp_path / "class.yml"
    path.write_text(f"{extra}students:\n  ana:\n{student_extra}    hosts:\n{hosts}")
    return path


def test_live_hosts_whose_ssh_address_differs_are_tunnelled_and_keys_are_recorded(tmp_path):
    from lab.observe.live import tunnelled
    from lab.remote.connection import Fleet

    [ana] = load_class(live_class(tmp_path))
    assert [s.tunnel for s in ana.specs] == [False, True, False]
    assert all(s.record_host_keys and s.known_hosts.name == "known_hosts" for s in ana.specs)
    assert ana.specs[0].known_hosts.parent.name == "live-ana"  # the student's own lab state
    assert tunnelled(ana.topology, Fleet(ana.specs)) == {"192.168.90.11": "web-01"}
    assert tunnelled(ana.topology, None) == {}


def test_a_class_files_known_hosts_is_enforced_and_a_missing_one_is_one_line(tmp_path):
    (tmp_path / "kh").write_text("")
    [ana] = load_class(live_class(tmp_path, extra="known_hosts: kh\n"))
    assert all(s.host_keys_pinned and not s.record_host_keys for s in ana.specs)
    assert {s.known_hosts for s in ana.specs} == {tmp_path / "kh"}
    with pytest.raises(LabError, match=r"students\.ana\.known_hosts: no file"):
        load_class(live_class(tmp_path, student_extra="    known_hosts: missing\n"))


# -- the pages -----------------------------------------------------------------------------


def test_times_are_shown_as_readable_local_times(tmp_path, monkeypatch):
    monkeypatch.setenv("TZ", "Europe/Stockholm")
    time.tzset()
    try:
        early = result("alice", graded_at="2024-05-01T10:00:00+00:00")
        late = result("bob", graded_at="2024-12-01T10:05:00+00:00")
        write_gradebook([early, late], CHECKS, tmp_path, pairs=[])
    finally:
        monkeypatch.undo()
        time.tzset()
    index = " ".join("".join(Page(_text(tmp_path, "index.html")).text).split())
    assert "Graded from 2024-05-01 12:00 CEST to 2024-12-01 11:05 CET." in index
    report = " ".join("".join(Page(_text(tmp_path, "reports/alice.html")).text).split())
    assert "2024-05-01 12:00 CEST" in report
    assert "T10:00:00" not in index + report  # the ISO form only in <time datetime=...>
    assert 'datetime="2024-05-01T10:00:00+00:00"' in _text(tmp_path, "index.html")


def test_most_failed_ranks_by_failures_and_keeps_not_run_apart(tmp_path):
    # lb.haproxy failed twice; web.served-by failed once and did not run three times
    results = [
        result("a", {"lb.haproxy": "fail"}),
        result("b", {"lb.haproxy": "fail", "web.served-by": "not-run"}),
        result("c", {"web.served-by": "fail"}),
        result("d", {"web.served-by": "not-run"}),
        result("e", {"web.served-by": "not-run"}),
    ]
    facts = write_gradebook(results, CHECKS, tmp_path, pairs=[])
    ranked = [(f["id"], f["failed"], f["not_run"]) for f in facts["most_failed"]]
    assert ranked == [("lb.haproxy", 2, 0), ("web.served-by", 1, 3)]
    index = _text(tmp_path, "index.html")
    assert index.index("<code>lb.haproxy</code>") < index.index("<code>web.served-by</code>")
    assert 'title="failed" style="width: 20px"' in index  # 1 of 5 failed ...
    assert 'title="not run" style="width: 60px"' in index  # ... and 3 of 5 did not run


def test_no_green_idempotent_badge_beside_a_score_under_half(tmp_path):
    low = result("low", {c["id"]: "fail" for c in CHECKS[1:]})  # 5 of 25
    high = result("high", {"lb.round-robin": "fail"})  # 15 of 25
    write_gradebook([low, high], CHECKS, tmp_path, pairs=[])
    low_page = _text(tmp_path, "reports/low.html")
    assert "second run: idempotent" in low_page
    assert '<span class="badge pass">idempotent' not in low_page
    high_page = _text(tmp_path, "reports/high.html")
    assert '<span class="badge pass">idempotent</span>' in high_page
    index = _text(tmp_path, "index.html")
    assert '<td class="rerun plain">idempotent</td>' in index
    assert '<td class="rerun pass">idempotent</td>' in index


def test_a_result_kept_under_the_cleaned_name_is_taken_over_not_graded_again(tmp_path):
    from lab.grading.assignment import load as load_assignment
    from lab.grading.class_run import ClassRun

    chosen = load_assignment(Path(__file__).parents[2] / "assignments" / "load-balancer.yml")
    old = result("bob_smith")  # as an earlier version kept "bob smith.zip"
    old.assignment_hash = chosen.digest
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "bob_smith.json").write_text(json.dumps(old.to_dict()))
    save_scripts(tmp_path, "bob_smith", {"1-install_load_balancer": "apt-get install haproxy"})
    run = ClassRun(chosen, tmp_path)
    assert run.kept("bob smith", "00" * 32) is None  # other content: graded again
    found = run.kept("bob smith", old.content_hash)
    assert found is not None and found.student == "bob smith" and found.score == 25
    assert [p.name for p in (tmp_path / "results").iterdir()] == [f"{file_stem('bob smith')}.json"]
    assert load_results(tmp_path / "results")[0].student == "bob smith"
    assert run.kept("bob_smith", old.content_hash) is None  # the name it had is not kept twice
    # the files kept for the near-identical comparison follow the name
    assert load_scripts(tmp_path) == {
        "bob smith": {"1-install_load_balancer": "apt-get install haproxy"}
    }
