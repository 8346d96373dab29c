"""`lab check --watch`: re-run the chosen checks every few seconds in a live table until Ctrl-C."""

from __future__ import annotations

import argparse
import time
from datetime import datetime

from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from checks import history
from checks.runner import run_on_lab
from lab.connection import Fleet
from lab.errors import ExitCode
from lab.render import CHECK_MARKS

EVIDENCE_WIDTH = 90  # characters of evidence per line; the full text is in `lab check`


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
    """One line per check (status, id, points, evidence) and a line saying when and what next."""
    table = Table(expand=True, show_edge=False, pad_edge=False)
    table.add_column("", no_wrap=True, width=6)
    table.add_column("check", no_wrap=True)
    table.add_column("points", justify="right", no_wrap=True)
    table.add_column("evidence", ratio=1, overflow="ellipsis", no_wrap=True)
    if report is not None:
        for r in report.results:
            status = r.status.value
            evidence = r.evidence if len(r.evidence) <= EVIDENCE_WIDTH else r.evidence[:89] + "…"
            table.add_row(
                Text(CHECK_MARKS[status], style=f"check.{status}"),
                Text(r.id),
                f"{r.awarded}/{r.points}",
                Text(evidence, style="muted"),
            )
    if report is None:
        summary = Text("first run…", style="muted")
    else:
        style = "check.pass" if report.all_passed else "check.fail"
        summary = Text.assemble(
            (f"score {report.score}/{report.max_score}", style),
            f" · {report.count_pass} passed, {report.count_fail} failed, "
            f"{report.count_not_run} not run · run {rounds} {state}",
        )
    if state.endswith("stopped"):
        return Group(table, summary)
    footer = Text(f"every {every:g} s · Ctrl-C stops", style="muted")
    return Group(table, summary, footer)


def watch_checks(lab, chosen, every: float, times: int = 0) -> ExitCode:
    """Run chosen checks over and over (times > 0: that many runs) until Ctrl-C; exit 0."""
    report, rounds = None, 0
    with (
        Fleet(lab.specs()) as fleet,
        Live(watch_table(None, 0, every, ""), console=lab.console, auto_refresh=False) as live,
    ):
        try:
            while not times or rounds < times:
                if report is not None:
                    live.update(
                        watch_table(report, rounds, every, "· checking again…"), refresh=True
                    )
                report = run_on_lab(chosen, lab.topology, fleet)
                rounds += 1
                history.save(lab.state.dir, report)
                clock = datetime.now().strftime("%H:%M:%S")
                live.update(watch_table(report, rounds, every, f"at {clock}"), refresh=True)
                if not times or rounds < times:
                    time.sleep(every)
        except KeyboardInterrupt:
            if report is not None:
                clock = datetime.now().strftime("%H:%M:%S")
                live.update(
                    watch_table(report, rounds, every, f"at {clock} · stopped"), refresh=True
                )
    return ExitCode.OK
