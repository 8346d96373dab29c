"""An assignment file: which student files run where, what the lab gives, what counts, limits."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from checks import CATALOGUE
from lab.core.errors import LabError
from lab.grading.profile import DEFAULT as DEFAULT_PROFILE
from lab.grading.profile import PROFILES
from provision import COMPONENTS

FILE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$")
FOLDER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}(/[A-Za-z0-9][A-Za-z0-9._+-]{0,99})*$")
HOSTS = ("lb-01", "web-01", "web-02")
KEYS = {"name", "title", "given", "profile", "steps", "checks", "folders", "limits"}
STEP_KEYS = {"file", "hosts", "substitute"}
LIMIT_KEYS = {"script_seconds", "output_kib", "memory_mib", "processes", "cpus", "disk_mib"}
LIMIT_LOWEST = {"disk_mib": 64}  # a smaller file system cannot hold a host's own changes


@dataclass(frozen=True)
class Step:
    """One of the student's files, run as root on each of hosts in turn."""

    file: str
    hosts: tuple[str, ...]
    substitute: tuple[str, ...] = ()  # hosts whose addresses replace the file's server IPs


@dataclass(frozen=True)
class Limits:
    """Per script and per host."""

    script_seconds: int = 300
    output_kib: int = 256
    memory_mib: int = 1024
    processes: int = 1024
    cpus: float = 1.0
    disk_mib: int = 4096  # the host's writable layer: a file system of its own of this size


@dataclass(frozen=True)
class Assignment:
    """What one assignment asks for and how it is graded."""

    name: str
    title: str
    path: Path
    given: tuple[str, ...]  # reference components the lab builds before the student's files
    steps: tuple[Step, ...]
    checks: dict[str, int]  # check id -> points, in catalogue order
    folders: tuple[str, ...]  # where the files may sit inside a submission ("" = its top)
    limits: Limits
    digest: str  # sha256 of the file: results graded under another version are re-graded
    profile: str = DEFAULT_PROFILE  # how the hosts look to the scripts (lab/grading/profile.py)

    @property
    def max_score(self) -> int:
        return sum(self.checks.values())

    @property
    def files(self) -> list[str]:
        return list(dict.fromkeys(step.file for step in self.steps))


def load(path: Path) -> Assignment:
    """Read and validate an assignment file; every mistake is one LabError naming the field."""
    try:
        raw = path.read_bytes()
        data = yaml.safe_load(raw)
    except FileNotFoundError:
        raise LabError(f"assignment file not found: {path}") from None
    except (OSError, yaml.YAMLError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LabError(f"{path}: cannot read the assignment: {first}") from None
    return parse(data, path, hashlib.sha256(raw).hexdigest())


def parse(data: object, path: Path, digest: str = "") -> Assignment:
    def fail(message: str) -> LabError:
        return LabError(f"{path}: {message}", hint="the format is in docs/grading.md")

    if not isinstance(data, dict):
        raise fail("expected a mapping with name, steps and checks")
    unknown = sorted(set(data) - KEYS)
    if unknown:
        raise fail(f"unknown key {unknown[0]!r}; known: {', '.join(sorted(KEYS))}")
    name = data.get("name")
    if not isinstance(name, str) or not re.match(r"^[a-z0-9][a-z0-9-]{0,40}$", name):
        raise fail("name: expected lowercase letters, digits and '-'")
    given = _words(data.get("given", []), "given", fail)
    for component in given:
        if component not in COMPONENTS:
            raise fail(f"given: unknown component {component!r}; one of {', '.join(COMPONENTS)}")
    steps = data.get("steps")
    if not isinstance(steps, list) or not steps:
        raise fail("steps: expected a list of {file, hosts}")
    profile = data.get("profile", DEFAULT_PROFILE)
    if profile not in PROFILES:
        raise fail(f"profile: expected one of {', '.join(PROFILES)}, not {profile!r}")
    folders = _words(data.get("folders", [""]), "folders", fail)
    for folder in folders:
        if folder and not FOLDER_RE.match(folder):
            raise fail(f"folders: {folder!r} is not a relative folder name")
    return Assignment(
        name=name,
        title=str(data.get("title", name)),
        path=path,
        given=tuple(c for c in COMPONENTS if c in given),
        steps=tuple(_step(s, i, fail) for i, s in enumerate(steps)),
        checks=_checks(data.get("checks"), fail),
        folders=tuple(folders),
        limits=_limits(data.get("limits", {}), fail),
        digest=digest,
        profile=profile,
    )


def _words(value, field, fail) -> list[str]:
    if isinstance(value, str):
        value = value.split()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise fail(f"{field}: expected a list of names")
    return value


def _step(spec, index, fail) -> Step:
    where = f"steps[{index}]"
    if not isinstance(spec, dict) or set(spec) - STEP_KEYS or "file" not in spec:
        raise fail(f"{where}: expected file, hosts and optionally substitute")
    file = spec["file"]
    if not isinstance(file, str) or not FILE_RE.match(file):
        raise fail(f"{where}.file: expected a file name (no folders)")
    hosts = _words(spec.get("hosts", []), f"{where}.hosts", fail)
    substitute = _words(spec.get("substitute", []), f"{where}.substitute", fail)
    for host in (*hosts, *substitute):
        if host not in HOSTS:
            raise fail(f"{where}: unknown host {host!r}; hosts: {', '.join(HOSTS)}")
    if not hosts:
        raise fail(f"{where}.hosts: name at least one host")
    return Step(file, tuple(hosts), tuple(substitute))


def _checks(spec, fail) -> dict[str, int]:
    """check id or section -> points (a section, or no points: the catalogue's points)."""
    if not isinstance(spec, dict) or not spec:
        raise fail("checks: expected a mapping of check id (or section) to points")
    sections = {cls.section for cls in CATALOGUE.values()}
    chosen: dict[str, int] = {}
    for key, points in spec.items():
        if points is not None and (isinstance(points, bool) or not isinstance(points, int)):
            raise fail(f"checks.{key}: points must be a whole number (or empty)")
        if key in CATALOGUE:
            chosen[key] = CATALOGUE[key].points if points is None else points
        elif key in sections:
            if points is not None:
                raise fail(f"checks.{key}: a section takes its checks' own points (leave empty)")
            chosen.update({c.id: c.points for c in CATALOGUE.values() if c.section == key})
        else:
            raise fail(f"checks: unknown check or section {key!r} (see `lab check --list`)")
    return {cid: chosen[cid] for cid in CATALOGUE if cid in chosen}


def _limits(spec, fail) -> Limits:
    if not isinstance(spec, dict) or set(spec) - LIMIT_KEYS:
        raise fail(f"limits: expected some of {', '.join(sorted(LIMIT_KEYS))}")
    values = {}
    for key in LIMIT_KEYS & set(spec):
        value = spec[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise fail(f"limits.{key}: expected a positive number")
        if value < LIMIT_LOWEST.get(key, 0):
            raise fail(f"limits.{key}: expected a number of at least {LIMIT_LOWEST[key]}")
        values[key] = float(value) if key == "cpus" else int(value)
    return Limits(**values)
