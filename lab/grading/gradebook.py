"""The gradebook: grades.csv for a learning platform, grades.json, and the HTML reports."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import statistics
from pathlib import Path

from checks import CATALOGUE
from checks.base import Status
from lab.grading import html, lms
from lab.grading import roster as rosters
from lab.grading.model import (
    ERROR,
    GRADED,
    INVALID,
    UNGRADED,
    UNREACHABLE,
    StudentResult,
    file_stem,
)
from lab.grading.similarity import Pair, near_identical

SCHEMA = "webstack-lab/grades/1"
SCRIPTS_SCHEMA = "webstack-lab/scripts/1"
MAX_SCRIPT_CHARS = 256_000  # what is kept of one submitted file for the comparison
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
BINS = 10


safe_stem = file_stem  # a student's file name under reports/, scripts/ and results/


def report_names(students: list[str]) -> dict[str, str]:
    """Each student's report file under reports/, distinct even on case-insensitive disks."""
    stems = {student: safe_stem(student) for student in students}
    seen: dict[str, int] = {}
    for stem in stems.values():
        seen[stem.lower()] = seen.get(stem.lower(), 0) + 1
    names = {}
    for student, stem in stems.items():
        if seen[stem.lower()] > 1:
            digest = hashlib.sha256(student.encode("utf-8", "surrogateescape")).hexdigest()[:8]
            stem = f"{stem}-{digest}"
        names[student] = f"{stem}.html"
    return names


def save_scripts(out: Path, student: str, files: dict[str, str]) -> Path:
    """Keep a student's submitted files (OUT/scripts/) so that a merge can compare every pair."""
    path = out / "scripts" / f"{safe_stem(student)}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    kept = {name: text[:MAX_SCRIPT_CHARS] for name, text in files.items()}
    data = {"schema": SCRIPTS_SCHEMA, "student": student, "files": kept}
    path.write_text(json.dumps(data, indent=1) + "\n")
    return path


def load_scripts(out: Path) -> dict[str, dict[str, str]]:
    """Every student's kept files: student -> file name -> text."""
    found = {}
    for path in sorted((out / "scripts").glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("schema") == SCRIPTS_SCHEMA:
            found[data["student"]] = data["files"]
    return found


def copy_scripts(source: Path, out: Path, student: str) -> None:
    """Bring one student's kept files from a shard's output into out."""
    files = load_scripts(source).get(student)
    if files is not None:
        save_scripts(out, student, files)


def assignment_checks(points: dict[str, int]) -> list[dict]:
    """An assignment's checks (id -> points) for the gradebook, titled from the catalogue."""
    found = []
    for check_id, value in points.items():
        check = CATALOGUE.get(check_id)
        section, title = (check.section, check.title) if check else ("", "")
        found.append({"id": check_id, "section": section, "title": title, "points": value})
    return found


def read_checks(dirs: list[Path], results: list[StudentResult]) -> list[dict]:
    """The assignment's checks as the shards wrote them, else as the results hold them."""
    for directory in dirs:
        try:
            checks = json.loads((directory / "grades.json").read_text()).get("checks")
        except (OSError, ValueError, AttributeError):
            continue
        if checks:
            return checks
    seen: dict[str, dict] = {}
    for result in results:
        for check in result.first.checks if result.first else []:
            keys = ("id", "section", "title", "points")
            seen.setdefault(check["id"], {key: check.get(key) for key in keys})
    return list(seen.values())


def maximum(checks: list[dict], results: list[StudentResult]) -> int:
    """The most points a student can get."""
    if checks and all(isinstance(check.get("points"), int) for check in checks):
        return sum(check["points"] for check in checks)
    return max((result.max_score for result in results), default=0)


def total(result: StudentResult) -> int | None:
    """The grade: the first run's score; 0 for an unusable submission; none when grading failed
    or the student's servers could not be reached."""
    if result.status in UNGRADED:
        return None
    return result.score if result.status == GRADED else 0


def _cell(text: str) -> str:
    """Text a spreadsheet will not run as a formula."""
    return f"'{text}" if text.startswith(FORMULA_START) else text


def csv_text(results: list[StudentResult], checks: list[dict], check_columns: bool = True) -> str:
    """grades.csv: student, total, maximum, one column per check, rerun, status, error."""
    ids = [check["id"] for check in checks] if check_columns else []
    most = maximum(checks, results)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["student", "total", "maximum", *ids, "rerun", "status", "error"])
    for result in results:
        awarded = result.first.awarded() if result.first and result.status == GRADED else {}
        grade = total(result)
        writer.writerow(
            [
                _cell(result.student),
                "" if grade is None else grade,
                most,
                *(awarded.get(check_id, "") for check_id in ids),
                _cell(result.rerun),
                result.status,
                _cell(result.error),
            ]
        )
    return buffer.getvalue()


def summary(results: list[StudentResult], checks: list[dict]) -> dict:
    """The class at a glance: counts, distribution of totals, most-failed checks."""
    most = maximum(checks, results)
    totals = [grade for grade in map(total, results) if grade is not None]
    bins = [0] * BINS
    for grade in totals:
        bins[min(BINS - 1, grade * BINS // most) if most else 0] += 1
    graded = [r for r in results if r.status == GRADED and r.first]
    failed = []
    for check in checks:
        statuses = [
            found["status"]
            for r in graded
            for found in r.first.checks
            if found["id"] == check["id"]
        ]
        misses = sum(1 for status in statuses if status != Status.PASS)
        if misses:
            failed.append(
                {
                    "id": check["id"],
                    "title": check.get("title") or "",
                    "failed": statuses.count(Status.FAIL),
                    "not_run": statuses.count(Status.NOT_RUN),
                    "of": len(statuses),
                }
            )
    # ranked by failures; a check that only did not run (one it needs failed) comes after
    failed.sort(key=lambda found: (-found["failed"], -found["not_run"]))
    times = sorted(r.graded_at for r in results if r.graded_at)
    return {
        "students": len(results),
        "graded": sum(1 for r in results if r.status == GRADED),
        "invalid": sum(1 for r in results if r.status == INVALID),
        "error": sum(1 for r in results if r.status == ERROR),
        "unreachable": sum(1 for r in results if r.status == UNREACHABLE),
        "maximum": most,
        "mean": round(statistics.fmean(totals), 2) if totals else None,
        "median": statistics.median(totals) if totals else None,
        "distribution": [
            {"from": most * i / BINS, "to": most * (i + 1) / BINS, "students": count}
            for i, count in enumerate(bins)
        ],
        "most_failed": failed,
        "idempotent": sum(1 for r in graded if r.rerun == "idempotent"),
        "broke_on_rerun": sum(1 for r in graded if r.rerun and r.rerun != "idempotent"),
        "first_graded_at": times[0] if times else "",
        "last_graded_at": times[-1] if times else "",
    }


def write_gradebook(
    results: list[StudentResult],
    assignment_checks: list[dict],
    out: Path,
    pairs: list[Pair] | None = None,
    check_columns: bool = True,
) -> dict:
    """Write grades.csv, grades.json, reports/STUDENT.html and index.html into out.

    Near-identical pairs are found among the files kept in out/scripts/ unless given.
    Returns the summary written to grades.json.
    """
    results = sorted(results, key=lambda result: result.student)
    if pairs is None:
        students = {result.student for result in results}
        scripts = {s: files for s, files in load_scripts(out).items() if s in students}
        pairs = near_identical(scripts)
    names = report_names([result.student for result in results])
    facts = summary(results, assignment_checks)
    out.mkdir(parents=True, exist_ok=True)
    (out / "grades.csv").write_text(csv_text(results, assignment_checks, check_columns))
    document = {
        "schema": SCHEMA,
        "assignment": results[0].assignment if results else "",
        "checks": assignment_checks,
        "summary": facts,
        "similar": [pair.to_dict() for pair in pairs],
        "reports": {student: f"reports/{name}" for student, name in names.items()},
        "students": [result.to_dict() for result in results],
    }
    (out / "grades.json").write_text(json.dumps(document, indent=2) + "\n")
    reports = out / "reports"
    reports.mkdir(exist_ok=True)
    anchors = html.check_anchors(results, assignment_checks)
    totals = {result.student: total(result) for result in results}
    for result in results:
        page = html.student_page(
            result, assignment_checks, anchors, totals[result.student], facts["maximum"]
        )
        (reports / names[result.student]).write_text(page)
    page = html.index_page(results, assignment_checks, facts, pairs, names, anchors, totals)
    (out / "index.html").write_text(page)
    return facts


def write_platform_file(
    fmt: str,
    results: list[StudentResult],
    assignment_checks: list[dict],
    out: Path,
    roster: rosters.Roster,
    check_columns: bool = True,
) -> lms.Export:
    """grades-moodle.csv or grades-canvas.csv in out, for the students the roster identifies.

    The grade's column is named after the assignment."""
    results = sorted(results, key=lambda result: result.student)
    column = results[0].assignment if results else "grade"
    totals = {result.student: total(result) for result in results}
    most = maximum(assignment_checks, results)
    sheet = lms.Sheet(results, assignment_checks, roster, column, totals, out, check_columns, most)
    return lms.write(fmt, sheet)
