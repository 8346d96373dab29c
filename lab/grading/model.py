"""One student's grading result, as kept in results/STUDENT.json (schema webstack-lab/grade/1)."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

SCHEMA = "webstack-lab/grade/1"

GRADED = "graded"  # the checks ran (whatever they found)
INVALID = "invalid"  # the submission could not be used: empty, unreadable archive, no clone
ERROR = "error"  # the grader could not finish (e.g. the lab did not come up)
UNREACHABLE = "unreachable"  # live mode: a server of the student's could not be reached
UNGRADED = (ERROR, UNREACHABLE)  # no grade at all: an import must not record a 0

UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
RESERVED = {
    "con",
    "prn",
    "aux",
    "nul",
    *(f"com{i}" for i in range(10)),
    *(f"lpt{i}" for i in range(10)),
}


def file_stem(name: str) -> str:
    """A file name for a student: letters, digits, '.', '_', '-'; a hash added if it had others.

    The same name always gives the same stem, and two names that clean up alike get distinct
    stems (each keeps a short hash of the name as it was written).
    """
    stem = UNSAFE.sub("_", name).strip("._-")[:80]
    if stem and stem == name and stem.split(".")[0].lower() not in RESERVED:
        return stem
    digest = hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    return f"{stem or 'student'}-{digest}"


@dataclass
class ScriptRun:
    """One of the student's files run on one host, in one pass."""

    file: str
    host: str
    exit_code: int | None  # None: it never finished (timed out, or the host went away)
    seconds: float
    output: str  # stdout and stderr together, capped
    output_bytes: int  # how much it printed in all
    timed_out: bool = False
    disk_limit: bool = False  # the host's own disk was full after it (or it ran out of space)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


@dataclass
class Pass:
    """The student's files run once, then the assignment's checks."""

    scripts: list[ScriptRun]
    checks: list[dict]  # per check: id, section, title, status, points, awarded, evidence, hint
    seconds: float

    @property
    def score(self) -> int:
        return sum(c["awarded"] for c in self.checks)

    @property
    def max_score(self) -> int:
        return sum(c["points"] for c in self.checks)

    def awarded(self) -> dict[str, int]:
        return {c["id"]: c["awarded"] for c in self.checks}


@dataclass
class StudentResult:
    """Everything known about one student's submission after grading it."""

    student: str  # the name as given: the folder or archive name, or the roster's
    source: str  # where the submission came from (folder, archive or git URL and ref)
    content_hash: str  # sha256 of the submission's files: a changed submission is re-graded
    assignment: str
    assignment_hash: str
    status: str = GRADED
    error: str = ""  # one line, when status is not graded
    files: dict[str, str] = field(default_factory=dict)  # assignment file -> path in submission
    substitutions: list[dict] = field(default_factory=list)  # file, found, replaced_by, host
    first: Pass | None = None
    second: Pass | None = None  # the same files run again on the same hosts
    rerun: str = ""  # the re-run column: "idempotent", or what went wrong on the second run
    timings: dict[str, float] = field(default_factory=dict)
    graded_at: str = ""
    lab: str = ""  # the lab it was graded in (removed afterwards)
    flags: list[str] = field(default_factory=list)  # for the instructor to look at; not scored

    @property
    def score(self) -> int:
        return self.first.score if self.first else 0

    @property
    def max_score(self) -> int:
        return self.first.max_score if self.first else 0

    def to_dict(self) -> dict:
        data = asdict(self)
        data["schema"] = SCHEMA
        data["score"], data["max_score"] = self.score, self.max_score
        return data

    @classmethod
    def from_dict(cls, data: dict) -> StudentResult:
        data = {k: v for k, v in data.items() if k not in ("schema", "score", "max_score")}
        for name in ("first", "second"):
            if data.get(name):
                runs = [ScriptRun(**run) for run in data[name]["scripts"]]
                data[name] = Pass(runs, data[name]["checks"], data[name]["seconds"])
        return cls(**data)

    def save(self, directory: Path) -> Path:
        path = directory / f"{file_stem(self.student)}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        tmp.replace(path)
        return path


def load_results(directory: Path) -> list[StudentResult]:
    """Every result kept in directory (results/*.json), by student name."""
    found = []
    for path in sorted(directory.glob("*.json")):
        data = json.loads(path.read_text())
        if data.get("schema") == SCHEMA:
            found.append(StudentResult.from_dict(data))
    return found
