"""The self-paced exercises: pages in docs/exercises, and what each builds and is graded by."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from lab import resources
from lab.errors import LabError

EXERCISES = resources.exercises_dir()


@dataclass(frozen=True)
class Work:
    """What an exercise's reference solution applies, and the checks that grade the exercise."""

    components: tuple[str, ...] = ()
    checks: tuple[str, ...] = ()
    sections: tuple[str, ...] = ()  # every check of these sections grades it too
    extra: bool = False  # fixes an issue of the design: starts from the base design, not before it


# One definition per exercise. A check belongs to the first exercise after which it can pass
# when the exercises before it are done the reference way: Nginx's static files and
# X-Served-By need the application files (03); the application's database, and everything
# the grader writes through it, needs the database (04).
WORK = {
    "01": Work((), ("servers.reachable",)),
    "02": Work(("web",), ("web.nginx",)),
    "03": Work(
        ("app",),
        ("web.static", "web.reverse-proxy", "web.served-by", "app.server", "files.code-base"),
    ),
    "04": Work(
        ("database",),
        ("app.database", "db.servers", "db.replication", "db.replica-read-only", "db.app-roles"),
    ),
    "05": Work(("lb",), ("lb.haproxy", "lb.round-robin", "lb.active-active", "lb.health-checks")),
    "06": Work(("dns",), ("dns.www", "http.www")),
    # The issues the design document names, each fixed on top of the whole base design
    "08": Work(("firewall",), sections=("firewall",), extra=True),
    "09": Work(("https",), sections=("https",), extra=True),
    "10": Work(("monitoring",), sections=("monitoring",), extra=True),
    "11": Work(("ha",), sections=("ha",), extra=True),
}


@dataclass(frozen=True)
class Exercise:
    number: str
    slug: str
    title: str
    graded_by: str
    path: Path

    @property
    def work(self) -> Work:
        return WORK.get(self.number, Work())

    @property
    def name(self) -> str:
        return f"{self.number}-{self.slug}"


def starting_components(exercise: Exercise, directory: Path | None = None) -> tuple[str, ...]:
    """The components the exercises before this one apply: its starting point (for an extra,
    the base design's exercises only)."""
    found = all_exercises(directory or EXERCISES)
    before = [e for e in found if e.number < exercise.number and not e.work.extra]
    return tuple(c for e in before for c in e.work.components)


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
