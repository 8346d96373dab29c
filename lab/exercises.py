"""The self-paced exercises in docs/exercises: find them by number or name."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from lab.errors import LabError

EXERCISES = Path(__file__).resolve().parent.parent / "docs" / "exercises"


@dataclass(frozen=True)
class Exercise:
    number: str
    slug: str
    title: str
    graded_by: str
    path: Path


def all_exercises(directory: Path = EXERCISES) -> list[Exercise]:
    """Every exercise, in order, from its file name and first lines."""
    found = []
    for path in sorted(directory.glob("[0-9][0-9]-*.md")):
        text = path.read_text()
        title = text.splitlines()[0].lstrip("# ").strip()
        graded = re.search(r"^Graded by: (.+)$", text, re.MULTILINE)
        number, _, slug = path.stem.partition("-")
        found.append(
            Exercise(number, slug, title, graded.group(1) if graded else "not graded", path)
        )
    return found


def find(name: str, directory: Path = EXERCISES) -> Exercise:
    """The exercise called name: '2', '02', 'web-server' or '02-web-server'."""
    wanted = name.lower().removesuffix(".md")
    for exercise in all_exercises(directory):
        if wanted in (
            exercise.number,
            exercise.number.lstrip("0"),
            exercise.slug,
            f"{exercise.number}-{exercise.slug}",
        ):
            return exercise
    names = ", ".join(f"{e.number}-{e.slug}" for e in all_exercises(directory))
    raise LabError(f"unknown exercise {name!r}; exercises: {names}")
