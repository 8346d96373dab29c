"""A class roster: who each submission belongs to on the learning platform.

Each student (the folder or archive name without its extension, or the roster's name) maps to
the identifiers a platform's grade import matches rows by. A roster is a YAML file (the same
`students:` file that can list git repositories and paths) or a CSV file with a header row.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from pathlib import Path

import yaml

from lab.core.errors import LabError

# what a roster may say about a student, and what it means
FIELDS = {
    "name": "the student's name as the platform shows it (Canvas: Student)",
    "username": "the platform's username (Moodle: username)",
    "email": "the e-mail address (Moodle: email address)",
    "idnumber": "Moodle's ID number",
    "id": "the platform's own user id (Moodle: user id; Canvas: ID)",
    "sis_user_id": "Canvas: SIS User ID",
    "sis_login_id": "Canvas: SIS Login ID",
    "section": "Canvas: Section",
}
SUBMISSION_FIELDS = {"git", "ref", "path"}  # a submissions roster's own fields
# CSV headers as platforms and spreadsheets write them (lowercase, spaces as '_')
ALIASES = {
    "folder": "student",
    "e_mail": "email",
    "email_address": "email",
    "id_number": "idnumber",
    "user_id": "id",
    "userid": "id",
    "full_name": "name",
}
Roster = dict[str, dict[str, str]]  # student -> field -> value


def key(name: str) -> str:
    """How names are compared: the same letters however they were composed (NFC)."""
    return unicodedata.normalize("NFC", name)


def load(path: Path) -> Roster:
    """A roster file (.yml/.yaml or .csv); every mistake is one line naming the place."""
    if not path.is_file():
        raise LabError(f"no roster file {path}", hint="a .yml (students: ...) or .csv roster")
    if path.suffix.lower() in (".yml", ".yaml"):
        return _from_yaml(path)
    if path.suffix.lower() == ".csv":
        return _from_csv(path)
    raise LabError(f"{path}: a roster is a .yml, .yaml or .csv file")


def _value(value) -> str:
    return "" if value is None else str(value).strip()


def _from_yaml(path: Path) -> Roster:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise LabError(f"{path}: cannot read the roster: {str(exc).splitlines()[0]}") from None
    students = data.get("students") if isinstance(data, dict) else None
    if not isinstance(students, dict) or not students:
        raise LabError(f"{path}: expected `students:` with one entry per student")
    found: Roster = {}
    for raw, entry in students.items():
        if entry is None:
            entry = {}
        if not isinstance(entry, dict):
            raise LabError(f"{path}: students.{raw}: expected fields such as username, email, id")
        unknown = set(map(str, entry)) - set(FIELDS) - SUBMISSION_FIELDS
        if unknown:
            raise LabError(
                f"{path}: students.{raw}.{sorted(unknown)[0]}: unknown field",
                hint="a student's fields: " + ", ".join(FIELDS),
            )
        fields = {name: _value(entry[name]) for name in FIELDS if _value(entry.get(name))}
        found[key(str(raw))] = fields
    return found


def _header(name: str) -> str:
    name = re.sub(r"[\s-]+", "_", name.strip().lower())
    return ALIASES.get(name, name)


def _from_csv(path: Path) -> Roster:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise LabError(f"{path}: cannot read the roster (UTF-8 expected): {exc}") from None
    reader = csv.reader(text.splitlines())
    header = [_header(cell) for cell in next(reader, [])]
    if "student" not in header:
        raise LabError(
            f"{path}: the header row has no `student` column",
            hint="student (the folder or archive name), then any of: " + ", ".join(FIELDS),
        )
    columns = {name: header.index(name) for name in [*FIELDS, "student"] if name in header}
    found: Roster = {}
    for line, row in enumerate(reader, start=2):
        cells = {name: row[i].strip() if i < len(row) else "" for name, i in columns.items()}
        student = cells.pop("student")
        if not student:
            continue
        if key(student) in found:
            raise LabError(f"{path}: line {line}: {student!r} is listed twice")
        found[key(student)] = {name: value for name, value in cells.items() if value}
    if not found:
        raise LabError(f"{path}: the roster lists no students")
    return found
