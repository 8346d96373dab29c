"""`lab status`: each host, its address and state."""

from __future__ import annotations

import json
import sys

from lab.cli import render
from lab.cli.commands import provider_option
from lab.core.errors import ExitCode

HELP = "show each host, its address and state"
ORDER = 20  # its place in `lab --help`


def arguments(parser) -> None:
    provider_option(parser)
    parser.add_argument("--json", action="store_true", help="print the status as JSON")


def run(lab) -> ExitCode:
    if lab.args.json:
        sys.stdout.write(json.dumps(status_record(lab), indent=2) + "\n")
        return ExitCode.OK
    if not lab.state.exists:
        lab.console.print(f"lab {lab.topology.name!r} is not up ([muted]`lab up` creates it[/])")
        return ExitCode.OK
    lab.console.print(render.status_table(lab.provider.status(), lab.topology.name))
    return ExitCode.OK


def status_record(lab) -> dict:
    """`lab status --json`: the lab, whether it is up, its provider and each host's state."""
    up = lab.state.exists
    hosts = (
        [vars(row) for row in lab.provider.status()]
        if up
        else [
            {"name": host.name, "address": host.address, "state": "absent", "provider": None}
            for host in lab.topology.hosts
        ]
    )
    return {
        "lab": lab.topology.name,
        "up": up,
        "provider": lab.provider.name if up else None,
        "topology": str(lab.topology.source),
        "hosts": hosts,
    }
