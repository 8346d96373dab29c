"""Everything `lab` prints: styles by meaning, progress, tables and error lines."""

from __future__ import annotations

import os
import time
from contextlib import contextmanager

from rich.console import Console, Group
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text
from rich.theme import Theme

from checks.base import EXTRA_SECTIONS, MARK, Status

THEME = Theme(
    {
        "ok": "green",
        "fail": "bold red",
        "skip": "yellow",
        "muted": "dim",
        "host": "cyan",
        "error": "bold red",
        "hint": "yellow",
        "state.running": "green",
        "state.stopped": "yellow",
        "state.absent": "dim",
        "check.pass": "bold green",
        "check.fail": "bold red",
        "check.not-run": "yellow",
        "section": "bold",
    }
)


def make_console(no_color: bool = False, **kwargs) -> Console:
    """The console every command prints to: colour only on a terminal, none with NO_COLOR set."""
    no_color = no_color or bool(os.environ.get("NO_COLOR"))
    return Console(theme=THEME, highlight=False, no_color=no_color, **kwargs)


class Step:
    """A running step: lets the worker update the spinner line and name its result."""

    def __init__(self, progress: Progress | None, task, title: str):
        self._progress, self._task, self.title = progress, task, title
        self.result = ""
        self.ok = True

    def update(self, text: str) -> None:
        if self._progress is not None:
            self._progress.update(self._task, description=f"{self.title}: {text}")

    def done(self, result: str, ok: bool = True) -> None:
        self.result, self.ok = result, ok


class Reporter:
    """Shows long steps with a spinner and elapsed time, then one line per finished step."""

    def __init__(self, console: Console):
        self.console = console

    @contextmanager
    def step(self, title: str):
        started = time.monotonic()
        columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
        with Progress(
            *columns, console=self.console, transient=True, disable=not self.console.is_terminal
        ) as progress:
            step = Step(progress, progress.add_task(title), title)
            try:
                yield step
            except BaseException:
                self.console.print(f"[fail]✗[/] {title}")
                raise
        elapsed = time.monotonic() - started
        detail = f": {step.result}" if step.result else ""
        mark = "[ok]✓[/]" if step.ok else "[fail]✗[/]"
        self.console.print(f"{mark} {title}{detail} [muted]({elapsed:.1f} s)[/]")


def status_table(rows, lab_name: str) -> Table:
    """host | address | state | provider."""
    table = Table(title=f"lab {lab_name}", title_justify="left")
    for column in ("host", "address", "state", "provider"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            f"[host]{row.name}[/]", row.address, f"[state.{row.state}]{row.state}[/]", row.provider
        )
    return table


def doctor_table(results) -> Table:
    """One line per prerequisite: ok or what to do."""
    table = Table(show_header=True)
    table.add_column("")
    table.add_column("prerequisite")
    table.add_column("fix")
    for what, ok, fix in results:
        table.add_row("[ok]✓[/]" if ok else "[fail]✗[/]", what, "" if ok else f"[hint]{fix}[/]")
    return table


def error_line(console: Console, message: str, hint: str = "") -> None:
    """The one line an expected failure gets (plus its hint)."""
    console.print(Text.assemble(("error:", "error"), " ", message), soft_wrap=True)
    if hint:
        console.print(Text.assemble(("hint:", "hint"), " ", hint), soft_wrap=True)


def provision_summary(summary) -> Table:
    """Changes per host and component; failures with the host's own error lines."""
    table = Table(title="provisioning", title_justify="left")
    table.add_column("host")
    for component in summary.components:
        table.add_column(component, justify="right")
    table.add_column("result")
    for host, per_component in summary.changes.items():
        counts = [str(per_component.get(c, 0)) for c in summary.components]
        result = "[fail]FAILED[/]" if host in summary.failures else "[ok]ok[/]"
        table.add_row(f"[host]{host}[/]", *counts, result)
    caption = f"{summary.total_changed} changed"
    if summary.failures:
        caption += f", {len(summary.failures)} host(s) failed"
    table.caption = caption
    failures = [
        Text.assemble(("✗", "fail"), " ", (host, "host"), " ", reason)
        for host, reason in summary.failures.items()
    ]
    return Group(table, *failures)


MARKS = {status: (MARK[status], f"check.{status}") for status in Status}  # with its style
CHECK_MARKS = {  # ... and with a word, in reports
    status: f"{mark} {word}"
    for (status, (mark, _)), word in zip(MARKS.items(), ("PASS", "FAIL", "SKIP"), strict=True)
}


def check_report(report) -> Group:
    """The grader's report: sections, a line per check, evidence, hints, score."""
    parts, section = [], None
    for r in report.results:
        if r.section != section:
            section = r.section
            parts.append(Text(f"\n{section}", style="section"))
        status = r.status.value
        line = Table.grid(expand=True, padding=(0, 1))
        line.add_column(width=6, no_wrap=True)
        line.add_column(ratio=1)
        line.add_column(justify="right", no_wrap=True)
        line.add_row(
            Text(CHECK_MARKS[status], style=f"check.{status}"),
            Text(f"{r.title} [{r.id}]"),
            f"{r.awarded}/{r.points}",
        )
        line.add_row("", Text(r.evidence, style="muted"), "")
        if r.hint:
            line.add_row("", Text(f"hint: {r.hint}", style="hint"), "")
        parts.append(line)
    counts = (
        f"{report.count_pass} passed, {report.count_fail} failed, {report.count_not_run} not run"
    )
    style = "check.pass" if report.all_passed else "check.fail"
    parts.append(
        Text(
            f"\nscore {report.score}/{report.max_score} · {counts} · {report.seconds:.1f} s",
            style=style,
        )
    )
    return Group(*parts)


def check_list(catalogue) -> Table:
    """The catalogue: id, section, points, title; the extra sections marked as asked for."""
    table = Table(
        title="check catalogue (* graded when asked for: lab check SECTION, or --all)",
        title_justify="left",
    )
    for column in ("id", "section", "points", "title"):
        table.add_column(column)
    for cls in catalogue.values():
        extra = "*" if cls.section in EXTRA_SECTIONS else ""
        table.add_row(cls.id, cls.section + extra, str(cls.points), cls.title)
    return table


def exercise(page) -> Group:
    """An exercise page under a line naming the lab whose addresses it shows."""
    lab = page.lab
    hosts = " · ".join(f"{host.name} {host.address}" for host in lab.hosts)
    if lab.virtual_address:
        hosts += f" · virtual {lab.virtual_address}"
    if page.translated:
        line = f"lab {lab.name} ({lab.subnet}): {hosts}; the page shows these addresses"
    else:
        line = (
            f"lab {lab.name} ({lab.subnet}): {hosts}; it lacks hosts this page needs, so the "
            f"page shows {page.reference}'s addresses (`lab --topology {page.reference} "
            f"exercise {page.exercise.number}`, or with your own such topology, shows that lab's)"
        )
    from rich.markdown import Markdown  # only pages need it: 35 ms off every other command

    return Group(Text(line, style="muted"), Markdown(page.text))
