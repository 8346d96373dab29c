"""The one record of check results per lab: every run of a check (`lab check`, `lab check
SECTION|ID`, `lab exercise check N`, `lab check --watch`) merges its results in, per check id,
and progress, the diagram and the quiz read it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from checks.base import Report, Status
from checks.report import to_dict
from lab.core.state import write_private

FILE_NAME = "last-check.json"
SCHEMA = "webstack-lab/last-check/1"
STATUSES = tuple(Status)
# Before the one record, `lab exercise check` kept bare statuses here ("checks") with the time
# of each exercise's last run ("ran"); they are read where the record has nothing newer.
LEGACY_FILE = "exercises.json"


def path(state_dir: Path) -> Path:
    return Path(state_dir) / FILE_NAME


def empty() -> dict:
    return {"schema": SCHEMA, "lab": "", "updated": None, "checks": {}}


def load(state_dir: Path) -> dict:
    """{"schema", "lab", "updated", "checks": {id: check dict + "at" (+ "by")}}; empty when
    nothing was ever checked. Statuses an older `lab exercise check` left in exercises.json
    count where the record has nothing as recent for that check.

    A file that cannot be read as this schema counts as no record (the next run rewrites it).
    """
    try:
        data = json.loads(path(state_dir).read_text())
    except (OSError, ValueError):
        data = empty()
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        data = empty()
    checks = data.get("checks")
    data["checks"] = {
        cid: item
        for cid, item in (checks.items() if isinstance(checks, dict) else ())
        if isinstance(item, dict) and item.get("status") in STATUSES
    }
    for cid, item in legacy(state_dir).items():
        if moment(item["at"]) > moment(data["checks"].get(cid, {}).get("at")):
            data["checks"][cid] = item
            data["updated"] = max(data.get("updated") or "", item["at"], key=moment)
    return data


def merge(saved: dict, report: dict, at: str, by: str = "") -> dict:
    """saved with the checks of report (to_dict shape) replacing those with the same id."""
    checks = dict(saved.get("checks") or {})
    for item in report["checks"]:
        checks[item["id"]] = {**item, "at": at, **({"by": by} if by else {})}
    return {"schema": SCHEMA, "lab": report["lab"], "updated": at, "checks": checks}


def save(state_dir: Path, report: Report, by: str = "") -> dict:
    """Merge a run's results into the lab's record (0600) and return the new record; by names
    the command that ran them (e.g. `lab exercise check 09`)."""
    at = datetime.now(UTC).isoformat(timespec="seconds")
    merged = merge(load(state_dir), to_dict(report), at, by)
    write_private(path(state_dir), json.dumps(merged, indent=2) + "\n")
    _retire_legacy(state_dir)
    return merged


def statuses(record: dict) -> dict[str, str]:
    """check id → its last status (pass, fail, not-run); checks never run are absent."""
    return {cid: item["status"] for cid, item in record.get("checks", {}).items()}


def moment(at) -> datetime:
    """An "at" as a time to compare (missing or unreadable: the earliest)."""
    try:
        return datetime.fromisoformat(at)
    except (TypeError, ValueError):
        return datetime.min.replace(tzinfo=UTC)


def legacy(state_dir: Path) -> dict[str, dict]:
    """The statuses an older `lab exercise check` kept in exercises.json, each timed by the last
    run of an exercise that graded it (or the file's own time), in the record's shape."""
    file = Path(state_dir) / LEGACY_FILE
    try:
        data = json.loads(file.read_text())
        mtime = file.stat().st_mtime
    except (OSError, ValueError):
        return {}
    found = data.get("checks") if isinstance(data, dict) else None
    if not isinstance(found, dict):
        return {}
    ran = data.get("ran") if isinstance(data.get("ran"), dict) else {}
    ran = {n: t for n, t in ran.items() if isinstance(t, int | float)}
    runs = _runs_per_check(ran)
    fallback = max(ran.values(), default=mtime)
    from checks import catalogue

    known = catalogue()
    items = {}
    for cid, status in found.items():
        if status not in STATUSES:
            continue
        at = datetime.fromtimestamp(runs.get(cid, fallback), UTC).isoformat(timespec="seconds")
        cls = known.get(cid)
        items[cid] = {
            "id": cid,
            "section": cls.section if cls else "",
            "title": cls.title if cls else cid,
            "status": status,
            "evidence": "",
            "at": at,
            "by": "lab exercise check (an earlier version; its evidence was not kept)",
        }
    return items


def _runs_per_check(ran: dict[str, float]) -> dict[str, float]:
    """check id → the latest time an exercise whose run included it was checked."""
    from checks import catalogue
    from checks.runner import with_dependencies
    from lab.course.exercises import WORK

    known = catalogue()
    latest: dict[str, float] = {}
    for number, when in ran.items():
        work = WORK.get(number)
        if work is None:
            continue
        graded = [c for c in known.values() if c.id in work.checks or c.section in work.sections]
        for cls in with_dependencies(known, graded):
            latest[cls.id] = max(latest.get(cls.id, 0.0), when)
    return latest


def _retire_legacy(state_dir: Path) -> None:
    """Once the record holds them, drop the old statuses from exercises.json (its other keys,
    the exercise started and the hints given, stay)."""
    file = Path(state_dir) / LEGACY_FILE
    try:
        data = json.loads(file.read_text())
    except (OSError, ValueError):
        return
    if isinstance(data, dict) and ("checks" in data or "ran" in data):
        kept = {k: v for k, v in data.items() if k not in ("checks", "ran")}
        write_private(file, json.dumps(kept, indent=2) + "\n")
