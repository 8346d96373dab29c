"""The last result of every check on a lab, kept in its state directory and merged per check id."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from checks.base import Report
from checks.report import to_dict
from lab.state import write_private

FILE_NAME = "last-check.json"
SCHEMA = "webstack-lab/last-check/1"
STATUSES = ("pass", "fail", "not-run")


def path(state_dir: Path) -> Path:
    return Path(state_dir) / FILE_NAME


def load(state_dir: Path) -> dict:
    """{"schema", "lab", "updated", "checks": {id: check dict + "at"}}; empty when none is saved.

    A file that cannot be read as this schema counts as no history (the next run rewrites it).
    """
    try:
        data = json.loads(path(state_dir).read_text())
    except (OSError, ValueError):
        return {"schema": SCHEMA, "lab": "", "updated": None, "checks": {}}
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        return {"schema": SCHEMA, "lab": "", "updated": None, "checks": {}}
    checks = data.get("checks")
    data["checks"] = {
        cid: item
        for cid, item in (checks.items() if isinstance(checks, dict) else ())
        if isinstance(item, dict) and item.get("status") in STATUSES
    }
    return data


def merge(saved: dict, report: dict, at: str) -> dict:
    """saved with the checks of report (to_dict shape) replacing those with the same id."""
    checks = dict(saved.get("checks") or {})
    for item in report["checks"]:
        checks[item["id"]] = {**item, "at": at}
    return {"schema": SCHEMA, "lab": report["lab"], "updated": at, "checks": checks}


def save(state_dir: Path, report: Report) -> dict:
    """Merge a run's results into the lab's saved history (0600) and return the new history."""
    at = datetime.now(UTC).isoformat(timespec="seconds")
    merged = merge(load(state_dir), to_dict(report), at)
    write_private(path(state_dir), json.dumps(merged, indent=2) + "\n")
    return merged


def statuses(history: dict) -> dict[str, str]:
    """check id → its last status (pass, fail, not-run); checks never run are absent."""
    return {cid: item["status"] for cid, item in history.get("checks", {}).items()}
