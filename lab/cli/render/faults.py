"""What `lab fault` shows: the scenarios, the live view of a run, the summary after it."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from lab.faults import SCENARIOS
from lab.faults.runner import Frame
from lab.faults.timeline import Summary


def scenario_list() -> Table:
    """One row per scenario: its name, what it shows, what it does."""
    table = Table(title="fault scenarios (lab fault NAME)", title_justify="left")
    table.add_column("scenario", style="host", no_wrap=True)
    table.add_column("what it shows")
    table.add_column("what it does", style="muted")
    for name, scenario in SCENARIOS.items():
        table.add_row(name, scenario.shows, scenario.does)
    return table


def live_view(frame: Frame) -> Group:
    """The view refreshed once a second: traffic, who answered, HAProxy, the replica."""
    if frame.phase == "fault":
        head = f"[fail]fault[/] {frame.scenario}: {frame.elapsed:.0f} of {frame.seconds:.0f} s"
    else:
        head = f"[skip]{frame.phase}[/] {frame.scenario}: {frame.elapsed:.0f} s since the fault"
    last = [r for r in frame.requests if frame.elapsed - 1 <= r.at < frame.elapsed]
    since = [r for r in frame.requests if r.at >= 0]
    table = Table(show_header=False, box=None, padding=(0, 2))
    table.add_column(style="section")
    table.add_column()
    table.add_row(
        "last second",
        f"{len(last)} req/s, [ok]{sum(r.ok for r in last)} ok[/], "
        f"[fail]{sum(not r.ok for r in last)} failed[/]",
    )
    table.add_row(
        "since the fault",
        f"{len(since)} requests, [ok]{sum(r.ok for r in since)} ok[/], "
        f"[fail]{sum(not r.ok for r in since)} failed[/]",
    )
    served: dict[str, int] = {}
    for request in last:
        if request.ok:
            served[request.served_by or "?"] = served.get(request.served_by or "?", 0) + 1
    table.add_row("answered by", ", ".join(f"{h} {n}" for h, n in sorted(served.items())) or "-")
    table.add_row("HAProxy", balancer_text(frame))
    table.add_row("replica", replica_text(frame))
    return Group(Text.from_markup(head), table)


def balancer_text(frame: Frame) -> Text:
    view = frame.balancer
    if view is None:
        return Text("…", style="muted")
    if not view.servers:
        return Text(view.note, style="skip")
    text = Text()
    for host, status in view.servers.items():
        if text:
            text.append(", ")
        text.append(host, style="host")
        text.append(" ")
        text.append(status, style="ok" if status.startswith("UP") else "fail")
    return text


def replica_text(frame: Frame) -> Text:
    view = frame.replica
    if view is None:
        return Text("…", style="muted")
    if view.note and not view.io:
        return Text(view.note, style="skip")
    text = Text()
    for label, value in (("IO", view.io), ("SQL", view.sql)):
        text.append(f"{label} ")
        text.append(value or "?", style="ok" if value == "Yes" else "fail")
        text.append(", ")
    behind = "?" if view.seconds_behind is None else f"{view.seconds_behind} s"
    text.append(f"behind {behind}")
    if view.missing is not None:
        text.append(", missing ")
        text.append(f"{view.missing} entries", style="ok" if view.missing == 0 else "fail")
    if view.note:
        text.append(f" ({view.note})", style="muted")
    return text


def seconds_text(value: float | None, none: str) -> str:
    return none if value is None else f"{value:.1f} s"


def summary_view(summary: Summary) -> Table:
    """The numbers after a run: requests lost, time to detect, time to recover."""
    table = Table(title=f"{summary.scenario}: summary", title_justify="left", show_header=False)
    table.add_column(style="section")
    table.add_column()
    during = summary.during
    table.add_row("fault held", f"{summary.seconds:.1f} s")
    table.add_row(
        "requests",
        f"{during.requests} sent, [ok]{during.succeeded} succeeded[/], "
        f"[fail]{during.failed} lost[/]",
    )
    if summary.early.requests or summary.late.requests:
        table.add_row(
            "not counted",
            f"{summary.early.requests} sent while the fault was put in place, "
            f"{summary.late.requests} answered only after the restore "
            f"({summary.late.succeeded} of them successfully)",
        )
    if summary.writes.requests:
        for label, counts in (("reads", summary.reads), ("writes", summary.writes)):
            table.add_row(label, f"{counts.succeeded} of {counts.requests} succeeded")
    table.add_row(
        "answered by",
        ", ".join(
            f"{host} {count} (median {summary.latency_ms[host]:.0f} ms)"
            for host, count in summary.served.items()
        )
        or "nobody",
    )
    never = "never" if summary.target else "not applicable (no web server was broken)"
    table.add_row("load balancer noticed", seconds_text(summary.seconds_to_detect, never))
    table.add_row("service back", seconds_text(summary.seconds_to_recover, "never"))
    if summary.replica_behind_max is not None:
        table.add_row("replica behind", f"up to {summary.replica_behind_max} entries")
        table.add_row(
            "replica caught up",
            seconds_text(summary.seconds_to_catch_up, "not within the wait") + " after the restore",
        )
    table.add_row(
        "restored",
        "[ok]yes, the lab is whole again[/]"
        if summary.restored
        else "[fail]not whole again yet[/] (lab check says what is wrong)",
    )
    return table
