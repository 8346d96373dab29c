"""`lab check --watch`: re-run the chosen checks every few seconds in a live table until Ctrl-C."""

from __future__ import annotations

import argparse
import time
from datetime import datetime

from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from checks.runner import run_on_lab
from lab.cli.render import CHECK_MARKS
from lab.core.errors import ExitCode
from lab.course import history
from lab.remote.connection import Fleet


def positive_seconds(text: str) -> float:
    """--every N: a number of seconds of at least 0.5."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if value < 0.5:
        raise argparse.ArgumentTypeError("at least 0.5 seconds between runs")
    return value


def watch_table(report, rounds: int, every: float, state: str) -> Group:
    """One line per check (status, id, points, evidence wrapped) and a line saying when and
    what next."""
    table = Table(expand=True, show_edge=False, pad_edge=False)
    table.add_column("", no_wrap=True, width=6)
    table.add_column("check", no_wrap=True)
    table.add_column("points", justify="right", no_wrap=True)
    table.add_column("evidence", ratio=1)
    if report is not None:
        for r in report.results:
            status = r.status.value
            table.add_row(
                Text(CHECK_MARKS[status], style=f"check.{status}"),
                Text(r.id),
                f"{r.awarded}/{r.points}",
                Text(r.evidence, style="muted"),
            )
    if report is None:
        summary = Text("first run…", style="muted")
    else:
        summary = score_line(report, f" · run {rounds} {state}")
    if state.endswith("stopped"):
        return Group(table, summary)
    footer = Text(f"every {every:g} s · Ctrl-C stops", style="muted")
    return Group(table, summary, footer)


def score_line(report, after: str = "") -> Text:
    style = "check.pass" if report.all_passed else "check.fail"
    return Text.assemble(
        (f"score {report.score}/{report.max_score}", style),
        f" · {report.count_pass} passed, {report.count_fail} failed, "
        f"{report.count_not_run} not run{after}",
    )


def watch_block(report, rounds: int, clock: str) -> Group:
    """One round as plain lines, for output that is not a terminal (a pipe, a file): a line
    per check with its evidence (and hint) wrapped below it, then the score."""
    lines = Table.grid(expand=True, padding=(0, 1))
    lines.add_column(width=6, no_wrap=True)
    lines.add_column(ratio=1)
    lines.add_column(justify="right", no_wrap=True)
    for r in report.results:
        status = r.status.value
        lines.add_row(
            Text(CHECK_MARKS[status], style=f"check.{status}"),
            Text(r.id),
            f"{r.awarded}/{r.points}",
        )
        lines.add_row("", Text(r.evidence, style="muted"), "")
        if r.hint:
            lines.add_row("", Text(f"hint: {r.hint}", style="hint"), "")
    return Group(Text(f"\nrun {rounds} at {clock}", style="section"), lines, score_line(report))


def watch_checks(
    lab, chosen, every: float, times: int = 0, by: str = "lab check --watch", deadline=None
):
    """Run chosen checks over and over (times > 0: that many runs, each within deadline s)
    until Ctrl-C; exit 0."""
    with Fleet(lab.specs()) as fleet:

        def run():
            if deadline is None:
                return run_on_lab(chosen, lab.topology, fleet)
            return run_on_lab(chosen, lab.topology, fleet, deadline=deadline)

        return watch(lab, run, every, times, by)


def watch(lab, run, every: float, times: int = 0, by: str = "", sleep=time.sleep) -> ExitCode:
    """Call run() (a Report) every `every` seconds, recording each round in the lab's record:
    a live table on a terminal, else one plain block per round."""
    if lab.console.is_terminal:
        return _watch_live(lab, run, every, times, by, sleep)
    rounds = 0
    try:
        while not times or rounds < times:
            report = run()
            rounds += 1
            history.save(lab.state.dir, report, by)
            lab.console.print(watch_block(report, rounds, datetime.now().strftime("%H:%M:%S")))
            if not times or rounds < times:
                sleep(every)
    except KeyboardInterrupt:
        lab.console.print(f"stopped after {rounds} run{'s' if rounds != 1 else ''}")
    return ExitCode.OK


def _watch_live(lab, run, every, times, by, sleep) -> ExitCode:
    report, rounds = None, 0
    with Live(watch_table(None, 0, every, ""), console=lab.console, auto_refresh=False) as live:
        try:
            while not times or rounds < times:
                if report is not None:
                    live.update(
                        watch_table(report, rounds, every, "· checking again…"), refresh=True
                    )
                report = run()
                rounds += 1
                history.save(lab.state.dir, report, by)
                clock = datetime.now().strftime("%H:%M:%S")
                live.update(watch_table(report, rounds, every, f"at {clock}"), refresh=True)
                if not times or rounds < times:
                    sleep(every)
        except KeyboardInterrupt:
            if report is not None:
                clock = datetime.now().strftime("%H:%M:%S")
                live.update(
                    watch_table(report, rounds, every, f"at {clock} · stopped"), refresh=True
                )
    return ExitCode.OK
