"""What `lab exercise list` and `lab progress` show: each exercise and its checks' results."""

from __future__ import annotations

from datetime import datetime

from rich.table import Table
from rich.text import Text

from checks.base import Status
from lab.cli import render
from lab.course import history
from lab.course.exercises import check_ids


def progress_table(items, record: dict, started: str | None = None) -> Table:
    """One row per exercise: its checks with their last results from the lab's one record
    (whichever command ran them), and where it stands."""
    statuses = history.statuses(record)
    table = Table(
        title="exercises (lab exercise N shows one; start, check, hint, solve N)",
        title_justify="left",
    )
    for column in ("#", "exercise", "checks (last run)", "status"):
        table.add_column(column)
    for item in items:
        checks = Text()
        ids = check_ids(item)
        for check_id in ids:
            mark, style = render.MARKS.get(statuses.get(check_id, ""), ("?", "muted"))
            checks.append(f"{mark} {check_id}\n", style=style)
        seen = [statuses.get(c) for c in ids]
        passed = sum(s == Status.PASS for s in seen)
        unchecked = sum(s is None for s in seen)
        if not ids:
            status = Text("not graded", style="muted")
        elif passed == len(seen):
            status = Text("done", style="check.pass")
        elif unchecked == len(seen):
            status = Text("not checked yet", style="muted")
        else:
            status = Text(f"{passed}/{len(seen)} pass", style="check.fail")
            if unchecked:
                status.append(f", {unchecked} not checked yet", style="muted")
        if when := last_checked(record, ids):
            status.append(f"\nchecked {when}", style="muted")
        number = f"{item.number} ▸" if item.number == started else item.number
        checks.rstrip()
        table.add_row(number, item.title, checks or Text("-", style="muted"), status)
    return table


def last_checked(record: dict, ids: list[str]) -> str:
    """When the latest of these checks last ran, in local time: the hour today, else the day
    ('' when none ever did)."""
    times = [record["checks"][c].get("at") for c in ids if c in record.get("checks", {})]
    latest = max((history.moment(at) for at in times), default=None)
    if latest is None or latest == history.moment(None):
        return ""
    local = latest.astimezone()
    today = datetime.now().astimezone().date()
    return local.strftime("%H:%M" if local.date() == today else "%Y-%m-%d")
