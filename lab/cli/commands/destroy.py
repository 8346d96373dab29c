"""`lab destroy`: remove everything the lab created, and nothing else."""

from __future__ import annotations

from lab.cli.commands import provider_option
from lab.core.errors import ExitCode
from provision import snapshots

HELP = "remove everything the lab created, and nothing else"
ORDER = 90  # its place in `lab --help`


def arguments(parser) -> None:
    provider_option(parser)
    parser.add_argument(
        "--purge",
        action="store_true",
        help="also delete the lab's download cache (and the base image when no other lab uses it)",
    )


def run(lab) -> ExitCode:
    if not lab.state.exists and not lab.args.purge:
        lab.console.print(f"lab {lab.topology.name!r} is not up; nothing to destroy")
        return ExitCode.OK
    with lab.state.lock():
        provider = lab.provider
        provider.destroy(lab.reporter, purge=lab.args.purge)
        # the snapshots stay; the layers of deleted ones that the hosts still used go
        snapshots.sweep(snapshots.snapshots_dir(lab.topology.name), provider)
    lab.console.print(f"lab {lab.topology.name!r} destroyed")
    return ExitCode.OK
