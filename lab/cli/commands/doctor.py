"""`lab doctor`: what this machine lacks to run the lab, and how to fix it."""

from __future__ import annotations

from lab import providers
from lab.cli import render
from lab.cli.commands import provider_option
from lab.core import platform
from lab.core.errors import ExitCode

HELP = "list what this machine lacks to run the lab, and how to fix it"
ORDER = 100  # its place in `lab --help`


def arguments(parser) -> None:
    provider_option(parser)


def run(lab) -> ExitCode:
    name = lab.args.provider or providers.choose(
        None, lab.state.load().get("provider"), lab.topology.provider
    )
    lab.console.print(f"provider: [host]{name}[/] (topology {lab.topology.source})")
    results = [platform.python_support(), *providers.load(name, lab.topology, lab.state).doctor()]
    lab.console.print(render.doctor_table(results))
    return ExitCode.OK if all(ok for _, ok, _ in results) else ExitCode.FAILED
