"""Grade files that a learning platform's gradebook imports as they are: Moodle's and Canvas's.

Moodle's CSV grade import matches each row to a user by one column (username, e-mail address,
ID number or user id) and stops the whole import at a row that matches nobody; Canvas's
gradebook import wants the columns of its own export (Student, ID, SIS User ID, SIS Login ID,
Section), then one column per assignment. Both are written only for students the roster
identifies, and only with a grade: a student the grader could not finish is left out, so that
the import leaves their grade as it was (an empty Moodle grade would clear it).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from lab.grading import roster as rosters
from lab.grading.model import GRADED, UNGRADED, StudentResult

FORMATS = ("csv", "moodle", "canvas")
FILES = {"moodle": "grades-moodle.csv", "canvas": "grades-canvas.csv"}
# Moodle's "Identify user by" choices: the roster field, and what to choose in "Map to"
MOODLE_IDS = (
    ("username", "username"),
    ("email", "useremail"),
    ("idnumber", "useridnumber"),
    ("id", "userid"),
)
CANVAS_STUDENT = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
CANVAS_FIELDS = ["name", "id", "sis_user_id", "sis_login_id", "section"]
CANVAS_IDS = ("id", "sis_user_id", "sis_login_id")  # what Canvas matches a row by
POINTS_POSSIBLE = "Points Possible"  # the second row of Canvas's own export
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Sheet:
    """What a platform's file is made from: the class's results and how to write them."""

    results: list[StudentResult]
    checks: list[dict]
    roster: rosters.Roster
    column: str  # the grade's column, named after the assignment
    totals: dict[str, int | None]
    out: Path
    check_columns: bool = True
    maximum: int = 0

    def ids(self) -> list[str]:
        """The checks' columns, when asked for."""
        return [check["id"] for check in self.checks] if self.check_columns else []


@dataclass
class Export:
    """What one platform file holds, and who was left out of it and why."""

    format: str
    path: Path
    rows: int = 0
    identifier: str = ""  # Moodle: the column to map from
    left_out: list[tuple[str, str]] = field(default_factory=list)  # student, why

    def lines(self) -> list[str]:
        found = [f"{self.format}: {self.rows} students in {self.path}"]
        if self.identifier:
            found[0] += f" (identify users by `{self.identifier}`)"
        for student, why in self.left_out:
            found.append(f"  left out {student}: {why}")
        return found


def _text(value: str) -> str:
    """A name a spreadsheet will show instead of running it as a formula."""
    return f"'{value}" if value.startswith(FORMULA_START) else value


def _graded(results: list[StudentResult], roster: rosters.Roster, needs, export: Export):
    """(result, roster fields) of each student with a grade whom the roster identifies."""
    found = []
    for result in results:
        fields = roster.get(rosters.key(result.student))
        if result.status in UNGRADED:
            export.left_out.append((result.student, f"not graded ({result.status}): grade again"))
        elif fields is None:
            export.left_out.append((result.student, "not in the roster"))
        elif not any(fields.get(name) for name in needs):
            export.left_out.append((result.student, "the roster gives none of " + ", ".join(needs)))
        else:
            found.append((result, fields))
    return found


def _grades(result: StudentResult, ids: list[str], grade: int) -> list:
    awarded = result.first.awarded() if result.first and result.status == GRADED else {}
    return [grade, *(awarded.get(check_id, 0) for check_id in ids)]


def moodle(sheet: Sheet) -> tuple[str, Export]:
    """grades-moodle.csv: one identifier column, the grade, (the checks' points)."""
    export = Export("moodle", sheet.out / FILES["moodle"])
    graded = _graded(sheet.results, sheet.roster, [name for name, _ in MOODLE_IDS], export)
    # one identifier for every row (Moodle maps from one column); the first that all have,
    # else the one most have (the others are left out and named)
    counts = {name: sum(1 for _, f in graded if f.get(name)) for name, _ in MOODLE_IDS}
    complete = [name for name, _ in MOODLE_IDS if graded and counts[name] == len(graded)]
    chosen = complete[0] if complete else max(counts, key=lambda name: counts[name])
    export.identifier = chosen
    ids = sheet.ids()
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([chosen, sheet.column, *ids])
    for result, fields in graded:
        if not fields.get(chosen):
            export.left_out.append((result.student, f"the roster gives no {chosen}"))
            continue
        writer.writerow([fields[chosen], *_grades(result, ids, sheet.totals[result.student] or 0)])
        export.rows += 1
    return buffer.getvalue(), export


def canvas(sheet: Sheet) -> tuple[str, Export]:
    """grades-canvas.csv: Canvas's five student columns, the assignment, (the checks)."""
    export = Export("canvas", sheet.out / FILES["canvas"])
    graded = _graded(sheet.results, sheet.roster, list(CANVAS_IDS), export)
    ids = sheet.ids()
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*CANVAS_STUDENT, sheet.column, *ids])
    possible = (check.get("points", "") for check in sheet.checks if check["id"] in ids)
    points = [sheet.maximum, *possible]
    writer.writerow([f"    {POINTS_POSSIBLE}", "", "", "", "", *points])
    for result, fields in graded:
        student = [fields.get(name, "") for name in CANVAS_FIELDS]
        student[0] = _text(student[0] or result.student)
        writer.writerow([*student, *_grades(result, ids, sheet.totals[result.student] or 0)])
        export.rows += 1
    return buffer.getvalue(), export


def write(fmt: str, sheet: Sheet) -> Export:
    """Write the platform's file into sheet.out; what it holds and left out is in the Export."""
    text, export = moodle(sheet) if fmt == "moodle" else canvas(sheet)
    export.path.write_text(text, encoding="utf-8")
    return export
