"""`lab check`: grade the live lab against every requirement of the design."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from checks import catalogue
from checks.report import to_json, to_junit
from checks.runner import DEADLINE, run_on_lab, select
from lab.cli import render
from lab.cli.watch import positive_seconds, watch_checks
from lab.core.errors import ExitCode
from lab.course import history
from lab.remote.connection import Fleet

HELP = "grade the live lab against every requirement of the design"
ORDER = 40  # its place in `lab --help`


def arguments(parser) -> None:
    parser.add_argument(
        "what",
        nargs="*",
        metavar="SECTION|ID",
        help="sections or check ids to run (default: the base design's checks)",
    )
    parser.add_argument(
        "--all",
        action="store_true",
        help="also the sections of the design's issues (firewall, https, monitoring, ha)",
    )
    parser.add_argument("--json", action="store_true", help="print the JSON report")
    parser.add_argument("--junit", metavar="FILE", help="also write a JUnit XML report")
    parser.add_argument("--list", action="store_true", help="list the checks and exit")
    parser.add_argument(
        "--watch", action="store_true", help="re-run the checks every few seconds until Ctrl-C"
    )
    parser.add_argument(
        "--every", type=positive_seconds, default=3.0, metavar="N", help="seconds between runs"
    )
    parser.add_argument(
        "--deadline",
        type=deadline_seconds,
        metavar="N",
        help=f"seconds the whole run may take (default {DEADLINE:g}, plus what alert and "
        "failover checks wait on purpose); a check still running then fails with what it "
        "was waiting for",
    )
    parser.add_argument("--times", type=int, default=0, help=argparse.SUPPRESS)


def run(lab) -> ExitCode:
    if lab.args.list:
        lab.console.print(render.check_list(catalogue()))
        return ExitCode.OK
    chosen = select(catalogue(), lab.args.what, lab.args.all)
    specs = lab.specs()
    if lab.args.watch:
        by = check_command(lab.args)
        return watch_checks(lab, chosen, lab.args.every, lab.args.times, by, lab.args.deadline)
    with Fleet(specs) as fleet:
        report = run_on_lab(chosen, lab.topology, fleet, deadline=lab.args.deadline)
    history.save(lab.state.dir, report, check_command(lab.args))
    if lab.args.junit:
        Path(lab.args.junit).write_text(to_junit(report))
    if lab.args.json:
        sys.stdout.write(to_json(report))
    else:
        lab.console.print(render.check_report(report))
    return ExitCode.OK if report.all_passed else ExitCode.FAILED


def deadline_seconds(text: str) -> float:
    """--deadline N: a number of seconds of at least 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value >= 1:  # NaN too
        raise argparse.ArgumentTypeError("a run needs at least 1 second")
    return value


def check_command(args: argparse.Namespace) -> str:
    """The `lab check` command line as the record names it, e.g. `lab check firewall`."""
    words = ["lab", "check", *args.what, *(["--all"] if args.all else [])]
    return " ".join(words + (["--watch"] if args.watch else []))
