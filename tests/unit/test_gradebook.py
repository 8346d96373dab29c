"""The gradebook: grades.csv and grades.json, the HTML pages, near-identical pairs, shards."""

from __future__ import annotations

import csv
import io
import json
import random
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from lab.core.errors import LabError
from lab.grading.gradebook import (
    assignment_checks,
    report_names,
    safe_stem,
    save_scripts,
    write_gradebook,
)
from lab.grading.model import ERROR, GRADED, INVALID, Pass, ScriptRun, StudentResult
from lab.grading.shard import in_shard, merge, merge_command, parse_shard
from lab.grading.similarity import near_identical, normalise

FIXTURES = Path(__file__).parent / "fixtures" / "grades"
CHECKS = [
    {"id": "lb.haproxy", "section": "load balancer", "title": "HAProxy answers", "points": 5},
    {"id": "web.served-by", "section": "web server", "title": "X-Served-By", "points": 5},
    {"id": "lb.round-robin", "section": "load balancer", "title": "Round robin", "points": 10},
    {"id": "lb.health-checks", "section": "load balancer", "title": "Health checks", "points": 5},
]
HOSTILE = ["<script>alert(1)</script>", "../x", "a/b", "CON", "Alice", "alice", "\"q\" & 's'"]


def checks_with(statuses: dict[str, str], evidence: str = "") -> list[dict]:
    """The check dicts of one pass: each check's status as given, pass otherwise."""
    found = []
    for check in CHECKS:
        status = statuses.get(check["id"], "pass")
        found.append(
            {
                **check,
                "status": status,
                "awarded": check["points"] if status == "pass" else 0,
                "evidence": evidence or f"{check['id']} {status}: seen on web-01",
                "hint": "" if status == "pass" else f"look at {check['id']}",
            }
        )
    return found


def result(
    student: str,
    statuses: dict[str, str] | None = None,
    status: str = GRADED,
    rerun: str = "idempotent",
    graded_at: str = "2024-05-01T10:00:00+00:00",
    evidence: str = "",
    output: str = "Setting up haproxy ...\n",
) -> StudentResult:
    """A synthetic result, as the engine would keep it."""
    base = StudentResult(
        student=student,
        source=f"submissions/{student}.zip",
        content_hash="ab" * 32,
        assignment="load-balancer",
        assignment_hash="cd" * 32,
        status=status,
        graded_at=graded_at,
        lab=f"grade-{abs(hash(student)) % 1000}",
    )
    if status != GRADED:
        base.error = "the archive cannot be read: not a zip file"
        return base
    runs = [
        ScriptRun("0-custom_http_response_header", "web-01", 0, 3.2, output, len(output)),
        ScriptRun("0-custom_http_response_header", "web-02", 0, 3.1, output, len(output)),
        ScriptRun("1-install_load_balancer", "lb-01", 1, 2.0, "E: oops\n", 5_000_000),
    ]
    base.first = Pass(runs, checks_with(statuses or {}, evidence), 12.5)
    base.second = Pass(runs[:2], checks_with(statuses or {}, evidence), 6.0)
    base.rerun = rerun
    base.files = {"1-install_load_balancer": "0x0F-load_balancer/1-install_load_balancer"}
    base.substitutions = [
        {"file": "1-install_load_balancer", "found": "54.1.2.3", "replaced_by": "10.0.0.11"}
        | {"host": "web-01"}
    ]
    base.timings = {"lab": 2.0, "first run": 12.5, "second run": 6.0}
    return base


def synthetic_class(size: int, seed: int = 7) -> list[StudentResult]:
    """A class with every kind of outcome, the same for the same seed."""
    pick = random.Random(seed)
    found = []
    for index in range(size):
        name = f"student{index:03d}"
        roll = pick.random()
        if roll < 0.08:
            found.append(result(name, status=INVALID))
        elif roll < 0.12:
            found.append(result(name, status=ERROR))
        else:
            statuses = {
                check["id"]: pick.choice(["pass", "pass", "pass", "fail", "not-run"])
                for check in CHECKS
            }
            rerun = "idempotent" if pick.random() < 0.8 else "lb.round-robin failed after re-run"
            found.append(result(name, statuses, rerun=rerun))
    return found


class Page(HTMLParser):
    """What the tests look at in a page: ids, links, classes of grid cells, text."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[str] = []
        self.cells: list[tuple[str, str]] = []  # (class, href) of each grid cell
        self.tags: list[str] = []
        self.text: list[str] = []
        self._cell_class = ""
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "td" and "cell" in (attrs.get("class") or "").split():
            self._cell_class = attrs["class"]
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
            if self._cell_class:
                self.cells.append((self._cell_class, attrs["href"]))
                self._cell_class = ""

    def handle_data(self, data):
        self.text.append(data)

    @property
    def all_text(self) -> str:
        return "".join(self.text)


def read_csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text())))


# grades.csv and grades.json


def test_csv_has_one_row_per_student_and_the_assignments_check_order(tmp_path):
    results = [
        result("bob", {"lb.round-robin": "fail"}, rerun="lb.round-robin failed after re-run"),
        result("alice"),
        result("carol", status=INVALID),
        result("dave", status=ERROR),
    ]
    write_gradebook(results, CHECKS, tmp_path, pairs=[])
    header = (tmp_path / "grades.csv").read_text().splitlines()[0]
    assert header == (
        "student,total,maximum,lb.haproxy,web.served-by,lb.round-robin,lb.health-checks,"
        "rerun,status,error"
    )
    rows = {row["student"]: row for row in read_csv(tmp_path / "grades.csv")}
    assert list(rows) == ["alice", "bob", "carol", "dave"]
    assert rows["alice"]["total"] == "25" and rows["alice"]["maximum"] == "25"
    assert rows["bob"]["total"] == "15" and rows["bob"]["lb.round-robin"] == "0"
    assert rows["bob"]["lb.haproxy"] == "5"
    assert rows["bob"]["rerun"] == "lb.round-robin failed after re-run"
    # an unusable submission gets 0; one the grader could not finish gets no grade at all
    assert rows["carol"]["total"] == "0" and rows["carol"]["status"] == "invalid"
    assert rows["dave"]["total"] == "" and rows["dave"]["status"] == "error"
    for name in ("carol", "dave"):
        assert [rows[name][check["id"]] for check in CHECKS] == ["", "", "", ""]
        assert rows[name]["error"] == "the archive cannot be read: not a zip file"
        assert rows[name]["maximum"] == "25"


def test_csv_cells_never_start_a_spreadsheet_formula(tmp_path):
    hostile = result("=HYPERLINK(1)", status=INVALID)
    hostile.error = "+cmd|' /C calc'!A0"
    write_gradebook([hostile, result("-x")], CHECKS, tmp_path, pairs=[])
    rows = read_csv(tmp_path / "grades.csv")
    assert [row["student"] for row in rows] == ["'-x", "'=HYPERLINK(1)"]
    assert rows[1]["error"] == "'+cmd|' /C calc'!A0"


def test_grades_json_holds_every_result_and_the_class_summary(tmp_path):
    results = [
        result("bob", {"lb.round-robin": "fail"}),
        result("alice"),
        result("c", status=ERROR),
    ]
    write_gradebook(results, CHECKS, tmp_path, pairs=[])
    data = json.loads((tmp_path / "grades.json").read_text())
    assert data["schema"] == "webstack-lab/grades/1"
    assert [check["id"] for check in data["checks"]] == [check["id"] for check in CHECKS]
    back = [StudentResult.from_dict(student) for student in data["students"]]
    assert [r.to_dict() for r in back] == [
        results[1].to_dict(),
        results[0].to_dict(),
        results[2].to_dict(),
    ]
    summary = data["summary"]
    assert (summary["students"], summary["graded"], summary["error"]) == (3, 2, 1)
    assert summary["mean"] == 20 and summary["maximum"] == 25
    assert summary["most_failed"] == [
        {"id": "lb.round-robin", "title": "Round robin", "failed": 1, "not_run": 0, "of": 2}
    ]
    assert sum(b["students"] for b in summary["distribution"]) == 2
    assert summary["distribution"][-1]["students"] == 1  # 25 of 25 is in the top tenth
    assert summary["distribution"][6]["students"] == 1  # 15 of 25
    assert data["reports"] == {"alice": "reports/alice.html", "bob": "reports/bob.html"} | {
        "c": "reports/c.html"
    }


def test_an_assignments_checks_come_in_its_order_titled_by_the_catalogue():
    found = assignment_checks({"lb.round-robin": 25, "web.served-by": 20})
    assert [(c["id"], c["points"]) for c in found] == [
        ("lb.round-robin", 25),
        ("web.served-by", 20),
    ]
    assert found[1]["title"].startswith("Every response names the server")
    assert found[0]["section"] == "load balancer"


# the HTML pages


def test_the_overview_links_every_cell_to_its_evidence_and_colours_it_by_status(tmp_path):
    results = synthetic_class(25)
    write_gradebook(results, CHECKS, tmp_path, pairs=[])
    index = Page((tmp_path / "index.html").read_text())
    assert "html" in index.tags and "script" not in index.tags
    for student in results:
        assert student.student in index.all_text
    for check in CHECKS:
        assert check["id"] in index.all_text
    assert len(index.cells) == len(results) * len(CHECKS)
    pages: dict[str, Page] = {}
    for (css, href), (student, check) in zip(
        index.cells, [(r, c) for r in results for c in CHECKS], strict=True
    ):
        path, anchor = href.split("#")
        page = pages.setdefault(path, Page((tmp_path / path).read_text()))
        assert anchor in page.ids, href
        found = {c["id"]: c for c in student.first.checks} if student.first else {}
        expected = found[check["id"]]["status"] if student.status == GRADED else "none"
        assert css.split() == ["cell", {"not-run": "notrun"}.get(expected, expected)], href
    for link in index.links:
        if not link.startswith("reports/"):
            continue
        assert (tmp_path / link.split("#")[0]).is_file(), link


def test_a_report_shows_checks_evidence_hints_logs_substitutions_and_timings(tmp_path):
    alice = result("alice", {"lb.round-robin": "fail", "lb.health-checks": "not-run"})
    alice.second.checks[2] = {**alice.second.checks[2], "status": "pass", "evidence": "now fine"}
    write_gradebook([alice], CHECKS, tmp_path, pairs=[])
    page = Page((tmp_path / "reports" / "alice.html").read_text())
    text = page.all_text
    for check in CHECKS:
        assert f"check-{check['id']}" in page.ids
        assert f"{check['id']} " in text
    assert "Hint: look at lb.round-robin" in text and "Hint: look at lb.haproxy" not in text
    assert "now fine" in text  # the second run changed this check: its evidence is shown
    assert "exit 0" in text and "exit 1" in text
    assert "output truncated: 8 of 5,000,000 bytes shown" in text
    assert "54.1.2.3" in text and "10.0.0.11" in text
    assert "First run" in text and "Second run" in text and "12.5 s" in text
    assert "first run" in text  # a timing


def test_a_report_marks_a_run_that_hit_the_disk_limit_and_keeps_its_log(tmp_path):
    from lab.grading.class_run import disk_verdict

    filled = result("fay", output="dd: error writing '/root/f': No space left on device\n")
    filled.first.scripts[0] = disk_verdict(filled.first.scripts[0], True, 300)
    write_gradebook([filled], CHECKS, tmp_path, pairs=[])
    text = Page((tmp_path / "reports" / "fay.html").read_text()).all_text
    assert "exit 0; disk limit reached" in text
    assert "[grader] disk limit (300 MiB) reached on web-01" in text
    again = StudentResult.from_dict(json.loads(json.dumps(filled.to_dict())))
    assert again.first.scripts[0].disk_limit and not again.first.scripts[1].disk_limit


@pytest.mark.parametrize("status", [INVALID, ERROR])
def test_a_submission_that_was_not_graded_says_why_in_one_line(tmp_path, status):
    write_gradebook([result("zed", status=status)], CHECKS, tmp_path, pairs=[])
    page = Page((tmp_path / "reports" / "zed.html").read_text())
    assert "the archive cannot be read: not a zip file" in page.all_text
    assert {f"check-{check['id']}" for check in CHECKS} <= page.ids  # the grid's links land


def test_hostile_names_and_evidence_are_escaped_and_files_stay_in_reports(tmp_path):
    evidence = "<img src=x onerror=alert(1)> </pre><script>alert(2)</script>"
    results = [result(name, evidence=evidence, output=evidence) for name in HOSTILE]
    hostile_checks = [*CHECKS, {"id": '"><script>x</script>', "title": "<i>", "points": 1}]
    write_gradebook(results, hostile_checks, tmp_path, pairs=[])
    names = report_names(HOSTILE)
    assert len({name.lower() for name in names.values()}) == len(HOSTILE)
    written = sorted(path.name for path in (tmp_path / "reports").iterdir())
    assert written == sorted(names.values())
    assert all(
        (tmp_path / "reports" / name).resolve().parent == tmp_path / "reports" for name in written
    )
    assert not (tmp_path / "x.html").exists()
    for path in [tmp_path / "index.html", *(tmp_path / "reports").iterdir()]:
        text = path.read_text()
        page = Page(text)
        assert "script" not in page.tags and "img" not in page.tags and "i" not in page.tags
        assert "<script>" not in text
    index = Page((tmp_path / "index.html").read_text())
    for name in HOSTILE:
        assert name in index.all_text  # shown as written, escaped
    assert not any(name.upper() == "CON.HTML" for name in written)


def test_safe_stems_keep_plain_names_and_mark_changed_ones():
    assert safe_stem("jane.doe_42") == "jane.doe_42"
    assert safe_stem("../x").startswith("x-") and "/" not in safe_stem("a/b")
    assert safe_stem("Jöns Ås") != safe_stem("J_ns__s")
    assert safe_stem("").startswith("student-")


# near-identical submissions


def fixture_submissions() -> dict[str, dict[str, str]]:
    root = FIXTURES / "scripts"
    return {d.name: {f.name: f.read_text() for f in d.iterdir()} for d in sorted(root.iterdir())}


def test_the_copy_with_other_comments_spacing_and_addresses_is_found_and_nothing_else():
    pairs = near_identical(fixture_submissions())
    assert [(pair.a, pair.b) for pair in pairs] == [("alice", "bob")]
    assert pairs[0].ratio >= 0.99
    assert [match.file for match in pairs[0].files] == [
        "0-custom_http_response_header",
        "1-install_load_balancer",
    ]


def test_pairs_come_most_alike_first_and_below_the_threshold_not_at_all():
    scripts = fixture_submissions()
    tweaked = scripts["alice"]["1-install_load_balancer"].replace("roundrobin", "leastconn")
    scripts["dora"] = {**scripts["alice"], "1-install_load_balancer": tweaked + "echo done\n"}
    pairs = near_identical(scripts)
    assert [(p.a, p.b) for p in pairs][:1] == [("alice", "bob")]
    assert {(p.a, p.b) for p in pairs} == {("alice", "bob"), ("alice", "dora"), ("bob", "dora")}
    assert [p.ratio for p in pairs] == sorted((p.ratio for p in pairs), reverse=True)
    assert pairs[-1].ratio < 1
    assert near_identical(scripts, threshold=1.0) == pairs[:1]


def test_normalising_drops_comments_but_not_hashes_that_are_code():
    text = (
        "#!/bin/bash\n"
        "   # a full-line comment\n"
        "echo \"# kept\" '# kept too'  # dropped\n"
        "echo $# ${#name} a#b; # dropped\n"
        "cat <<EOF > /etc/haproxy/haproxy.cfg\n"
        "# a config comment\n"
        "  server web-01 54.210.33.12:80 check   # it's the first\n"
        "EOF\n"
        "\n\n   curl   http://10.0.0.1/   \n"
    )
    assert normalise(text) == (
        "echo \"# kept\" '# kept too'\n"
        "echo $# ${#name} a#b;\n"
        "cat <<EOF > /etc/haproxy/haproxy.cfg\n"
        "server web-01 IP:80 check # it's the first\n"
        "EOF\n"
        "curl http://IP/"
    )


def test_tiny_scripts_are_alike_by_necessity_and_not_flagged():
    tiny = {"0-custom_http_response_header": "apt-get install -y nginx\n"}
    assert near_identical({"a": tiny, "b": dict(tiny)}) == []


def test_the_overview_lists_the_pairs_as_something_to_look_at(tmp_path):
    scripts = fixture_submissions()
    for student, files in scripts.items():
        save_scripts(tmp_path, student, files)
    write_gradebook([result(name) for name in scripts], CHECKS, tmp_path)
    text = Page((tmp_path / "index.html").read_text()).all_text
    assert "Look at these" in text and "not a verdict" in text
    assert "alice and bob" in " ".join(text.split())
    data = json.loads((tmp_path / "grades.json").read_text())
    assert [(p["a"], p["b"]) for p in data["similar"]] == [("alice", "bob")]


def test_the_overview_shows_the_hundred_most_alike_pairs_and_grades_json_all(tmp_path):
    copies = {f"s{i:03d}": fixture_submissions()["carol"] for i in range(16)}  # 120 pairs
    write_gradebook([result(name) for name in copies], CHECKS, tmp_path, near_identical(copies))
    text = " ".join(Page((tmp_path / "index.html").read_text()).all_text.split())
    assert text.count("100.0 % 0-custom") == 100
    assert "And 20 more pairs, less alike" in text
    assert len(json.loads((tmp_path / "grades.json").read_text())["similar"]) == 120


# shards


@pytest.mark.parametrize(
    "text", ["0/4", "5/4", "1/0", "0/0", "x", "", "2/4/1", "-1/3", "2 of 4", "1.5/3"]
)
def test_a_bad_shard_is_one_clear_error(text):
    with pytest.raises(LabError, match=r"--shard must be K/N with 1 <= K <= N"):
        parse_shard(text)


def test_shards_parse():
    assert parse_shard("2/4") == (2, 4) and parse_shard(" 1 / 1 ") == (1, 1)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 16])
def test_every_student_is_in_exactly_one_shard(n):
    students = [f"student{i}" for i in range(500)] + HOSTILE + ["Émilie", "李"]
    for student in students:
        assert sum(in_shard(student, k, n) for k in range(1, n + 1)) == 1, (student, n)
    sizes = [sum(in_shard(s, k, n) for s in students) for k in range(1, n + 1)]
    assert min(sizes) > 0.6 * len(students) / n  # a fair share, not all in one


def test_shards_are_the_same_on_every_machine():
    # pinned: a shard must not depend on Python's per-process hash() or on the machine
    assert [k for k in range(1, 5) if in_shard("alice", k, 4)] == [4]
    assert [k for k in range(1, 8) if in_shard("bob", k, 7)] == [2]


def write_shard(out: Path, results: list[StudentResult], scripts: dict) -> None:
    """What one `lab grade --shard` leaves behind."""
    for found in results:
        found.save(out / "results")
        if found.student in scripts:
            save_scripts(out, found.student, scripts[found.student])
    write_gradebook(results, CHECKS, out)


@pytest.mark.parametrize("n", [2, 3, 5])
def test_merging_the_shards_gives_the_gradebook_of_one_run(tmp_path, n):
    results = synthetic_class(20, seed=n)
    scripts = {r.student: files for r, files in zip(results, _class_scripts(20), strict=True)}
    write_shard(tmp_path / "one", results, scripts)
    shards = []
    for k in range(1, n + 1):
        share = [r for r in results if in_shard(r.student, k, n)]
        write_shard(tmp_path / f"OUT-{k}", share, scripts)
        shards.append(tmp_path / f"OUT-{k}")
    summary = merge(shards, tmp_path / "OUT")
    assert summary.students == len(results) and summary.duplicates == []
    for name in ("grades.csv", "grades.json", "index.html"):
        assert (tmp_path / "OUT" / name).read_text() == (tmp_path / "one" / name).read_text(), name
    assert sorted(p.name for p in (tmp_path / "OUT" / "reports").iterdir()) == sorted(
        p.name for p in (tmp_path / "one" / "reports").iterdir()
    )
    assert json.loads((tmp_path / "OUT" / "grades.json").read_text())["similar"]


def _class_scripts(size: int) -> list[dict[str, str]]:
    """Scripts for a class: students 3 and 17 hand in alice's, the others write their own."""
    words = [f"w{i}" for i in range(300)]
    found = []
    for index in range(size):
        pick = random.Random(index)
        own = "\n".join(" ".join(pick.choices(words, k=6)) for _ in range(20))
        found.append(fixture_submissions()["alice"] if index in (3, 17) else {"script": own})
    return found


def test_a_student_in_two_shards_keeps_the_newest_grade_and_says_so(tmp_path):
    old = result("alice", {"lb.round-robin": "fail"}, graded_at="2024-05-01T10:00:00+00:00")
    new = result("alice", graded_at="2024-05-02T09:00:00+00:00")
    write_shard(tmp_path / "A", [new, result("bob")], {})
    write_shard(tmp_path / "B", [old, result("carol")], {})
    lines = merge_command([tmp_path / "B", str(tmp_path / "A")], tmp_path / "OUT").lines()
    rows = {row["student"]: row for row in read_csv(tmp_path / "OUT" / "grades.csv")}
    assert list(rows) == ["alice", "bob", "carol"] and rows["alice"]["total"] == "25"
    assert lines[0] == f"3 students from 2 shards into {tmp_path / 'OUT'}"
    assert lines[1] == (
        f"alice was graded in more than one shard: kept {tmp_path / 'A'} (graded last), "
        f"dropped {tmp_path / 'B'}"
    )


def test_merge_refuses_what_is_not_a_shard_and_shards_of_other_assignments(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(LabError, match=r"holds no results/\*\.json"):
        merge([tmp_path / "empty"], tmp_path / "OUT")
    with pytest.raises(LabError, match="is not a directory"):
        merge([tmp_path / "missing"], tmp_path / "OUT")
    with pytest.raises(LabError, match="nothing to merge"):
        merge([], tmp_path / "OUT")
    other = result("bob")
    other.assignment_hash = "ef" * 32
    write_shard(tmp_path / "A", [result("alice")], {})
    write_shard(tmp_path / "B", [other], {})
    with pytest.raises(LabError, match="different versions of the assignment"):
        merge([tmp_path / "A", tmp_path / "B"], tmp_path / "OUT")


def test_the_ci_examples_in_the_docs_are_valid_yaml_with_one_job_per_shard():
    text = (Path(__file__).parents[2] / "docs" / "grading.md").read_text()
    blocks = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", text, re.S)]
    github = next(b for b in blocks if isinstance(b, dict) and "jobs" in b)
    gitlab = next(b for b in blocks if isinstance(b, dict) and "grade" in b and "merge" in b)
    assert github["jobs"]["grade"]["strategy"]["matrix"]["shard"] == [1, 2, 3, 4]
    assert github["jobs"]["merge"]["needs"] == "grade"
    assert gitlab["grade"]["parallel"]["matrix"] == [{"SHARD": ["1", "2", "3", "4"]}]
    assert "lab grade merge OUT-* --out OUT" in gitlab["merge"]["script"]
