"""Grading a class on several machines: a stable share per shard, and one gradebook from all."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from lab.core.errors import LabError
from lab.grading.gradebook import copy_scripts, read_checks, write_gradebook
from lab.grading.model import StudentResult, load_results

SHARD_FORM = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


def parse_shard(text: str) -> tuple[int, int]:
    """'2/4' -> (2, 4): the second of four shards."""
    match = SHARD_FORM.fullmatch(text or "")
    k, n = (int(match[1]), int(match[2])) if match else (0, 0)
    if not match or n < 1 or not 1 <= k <= n:
        raise LabError(
            f"--shard must be K/N with 1 <= K <= N, not {text!r}",
            hint="e.g. --shard 2/4 grades the second of four shares of the class",
        )
    return k, n


def in_shard(student: str, k: int, n: int) -> bool:
    """Whether shard k of n grades this student: the same answer on every machine, every run."""
    digest = hashlib.sha256(student.encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "big") % n == k - 1


@dataclass
class Duplicate:
    """A student graded in more than one shard: the newest result is kept."""

    student: str
    kept: Path
    dropped: list[Path]


@dataclass
class MergeSummary:
    """What `lab grade merge` did."""

    out: Path
    shards: list[Path]
    students: int
    duplicates: list[Duplicate] = field(default_factory=list)
    results: list[StudentResult] = field(default_factory=list)  # the gradebook's, as merged
    checks: list[dict] = field(default_factory=list)

    def lines(self) -> list[str]:
        found = [f"{self.students} students from {len(self.shards)} shards into {self.out}"]
        for dup in self.duplicates:
            dropped = ", ".join(str(path) for path in dup.dropped)
            found.append(
                f"{dup.student} was graded in more than one shard: kept {dup.kept} "
                f"(graded last), dropped {dropped}"
            )
        return found


def _graded_at(result: StudentResult) -> tuple[int, datetime | str]:
    """A sort key: results without a readable time are older than any with one."""
    try:
        return 1, datetime.fromisoformat(result.graded_at)
    except ValueError:
        return 0, result.graded_at


def _shard_results(directory: Path) -> list[StudentResult]:
    results_dir = directory / "results"
    if not directory.is_dir():
        raise LabError(f"{directory} is not a directory", hint="name each shard's --out folder")
    if not results_dir.is_dir() or not any(results_dir.glob("*.json")):
        raise LabError(
            f"{directory} holds no results/*.json: not the output of `lab grade`",
            hint="name each shard's --out folder",
        )
    try:
        return load_results(results_dir)
    except (ValueError, TypeError, KeyError) as error:
        raise LabError(f"{results_dir} holds a result that cannot be read: {error}") from None


def merge(dirs: list[Path], out: Path, check_columns: bool = True) -> MergeSummary:
    """Join the shards' results into out/results and write one gradebook from all of them."""
    if not dirs:
        raise LabError("nothing to merge", hint="lab grade merge OUT-1 OUT-2 ... --out OUT")
    dirs = [Path(d) for d in dirs]
    graded: dict[str, list[tuple[StudentResult, Path]]] = {}
    for directory in dirs:
        for result in _shard_results(directory):
            graded.setdefault(result.student, []).append((result, directory))
    kept: list[tuple[StudentResult, Path]] = []
    duplicates = []
    for student in sorted(graded):
        versions = sorted(graded[student], key=lambda found: _graded_at(found[0]), reverse=True)
        kept.append(versions[0])
        if len(versions) > 1:
            duplicates.append(Duplicate(student, versions[0][1], [d for _, d in versions[1:]]))
    assignments = {result.assignment_hash for result, _ in kept}
    if len(assignments) > 1:
        raise LabError(
            "the shards graded different versions of the assignment",
            hint="grade every shard with the same assignment file (re-run the stale shards)",
        )
    results_dir = Path(out) / "results"
    for result, directory in kept:
        result.save(results_dir)
        copy_scripts(directory, Path(out), result.student)
    results = [result for result, _ in kept]
    checks = read_checks(dirs, results)
    write_gradebook(results, checks, Path(out), check_columns=check_columns)
    return MergeSummary(Path(out), dirs, len(kept), duplicates, results, checks)


def merge_command(
    dirs: list[Path | str], out: Path | str, check_columns: bool = True
) -> MergeSummary:
    """What `lab grade merge OUT-1 OUT-2 ... --out OUT` runs; summary.lines() says what it did."""
    return merge([Path(d) for d in dirs], Path(out), check_columns)
