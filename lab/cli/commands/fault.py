"""`lab fault`: break one thing on a running lab, watch the site live, restore it, count."""

from __future__ import annotations

import json
import sys

from rich.live import Live

from lab.cli.render import faults as faults_view
from lab.core.errors import ExitCode, LabError
from lab.faults import find
from lab.faults.runner import restore_active, run_fault

HELP = "break one thing on the running lab, watch the site live, restore it: lab fault --list"
MAX_SECONDS = 3600
ORDER = 140  # its place in `lab --help`


def arguments(parser) -> None:
    parser.add_argument("scenario", nargs="?", help="the scenario to run (see --list)")
    parser.add_argument(
        "--seconds",
        type=float,
        default=30,
        metavar="N",
        help="how long the fault holds before it is restored (default 30)",
    )
    parser.add_argument(
        "--json", action="store_true", help="no live view: print one JSON object at the end"
    )
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument(
        "--restore",
        action="store_true",
        help="undo a fault left active by a run that crashed or was killed",
    )


def run(lab) -> ExitCode:
    args = lab.args
    if args.list:
        lab.console.print(faults_view.scenario_list())
        return ExitCode.OK
    if args.restore:
        lab.require_up()
        with lab.state.lock():
            name = restore_active(lab.topology, lab.state, lab.provider)
        lab.console.print(
            f"restored [host]{name}[/] on lab {lab.topology.name!r}"
            if name
            else f"no fault is active on lab {lab.topology.name!r}"
        )
        return ExitCode.OK
    if not args.scenario:
        raise LabError("name a scenario", hint="lab fault --list shows them")
    scenario = find(args.scenario)
    if not 0 < args.seconds <= MAX_SECONDS:
        raise LabError(f"--seconds must be more than 0 and at most {MAX_SECONDS}")
    lab.require_up()
    with lab.state.lock():
        if args.json:
            summary = run_fault(scenario, lab.topology, lab.state, lab.provider, args.seconds)
            sys.stdout.write(json.dumps(summary.as_dict(), indent=2) + "\n")
        else:
            with Live(console=lab.console, auto_refresh=False, transient=False) as live:
                summary = run_fault(
                    scenario,
                    lab.topology,
                    lab.state,
                    lab.provider,
                    args.seconds,
                    on_tick=lambda frame: live.update(faults_view.live_view(frame), refresh=True),
                )
            lab.console.print(faults_view.summary_view(summary))
    if summary.interrupted:
        return ExitCode.INTERRUPTED
    return ExitCode.OK if summary.restored else ExitCode.FAILED
