"""The `lab` command: parse arguments, run one command, turn expected failures into one line."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from functools import cached_property

import argcomplete

from lab import __version__, providers
from lab.cli import commands, render
from lab.cli.commands import completion
from lab.core import signals, topology
from lab.core.errors import ExitCode, LabError
from lab.core.state import LabState, write_private
from lab.remote import sshconfig


class Lab:
    """What every command needs: the topology, the lab's state and its provider."""

    def __init__(self, args: argparse.Namespace, console):
        self.args = args
        self.console = console
        self.reporter = render.Reporter(console)

    @cached_property
    def topology(self) -> topology.Topology:
        return topology.load(topology.find_topology_file(self.args.topology))

    @cached_property
    def state(self) -> LabState:
        return LabState(self.topology.name)

    @cached_property
    def provider(self):
        return providers.select(self.topology, self.state, getattr(self.args, "provider", None))

    def require_up(self) -> None:
        """Refuse commands that need hosts when the lab was never brought up."""
        if not self.state.exists:
            raise LabError(f"lab {self.topology.name!r} is not up", hint="run `lab up` first")

    def specs(self):
        self.require_up()
        return self.provider.specs()

    def write_ssh_config(self) -> str:
        text = sshconfig.render(self.provider.specs())
        write_private(self.state.ssh_config_file, text)
        return text


def command_modules(argv: list[str] | None = None) -> dict:
    """The command modules by command name, in their ORDER. Given the command line, only the
    modules of the commands it names: a command starts without importing the others."""
    wanted = None
    if argv is not None and "_ARGCOMPLETE" not in os.environ:
        named = set(argv) & set(commands.names())
        wanted = named or None  # else help, or an unknown command: all
    return commands.load(wanted)


class LabParser(argparse.ArgumentParser):
    """A parser whose every subcommand, nested or added later, takes the global options too."""

    def __init__(self, *args, top_level: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        unset = {} if top_level else {"default": argparse.SUPPRESS}  # keep a value given earlier
        group = self.add_argument_group("global options")
        group.add_argument(
            "--topology",
            metavar="FILE",
            help="topology file (default: $LAB_TOPOLOGY, ./lab.yml, the packaged one)",
            **unset,
        )
        group.add_argument(
            "--no-color", action="store_true", help="no colours (as when NO_COLOR is set)", **unset
        )


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The whole parser; with argv, one that knows only the commands argv names in full."""
    parser = LabParser(
        prog="lab",
        description="webstack lab: bring up lb-01, web-01 and web-02, build the distributed web "
        "infrastructure on them, and grade it.",
        top_level=True,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="cmd", metavar="COMMAND", required=True)
    for name, module in command_modules(argv).items():
        sub = subparsers.add_parser(name, help=module.HELP, description=module.HELP)
        module.arguments(sub)
        sub.set_defaults(run=module.run)
    completion.attach(parser)
    return parser


def quiet_library_logs() -> None:
    """paramiko's own threads log what the lab already reports in one line (a connection cut
    by Ctrl-C, a stopped host): with a handler of its own, none of it reaches stderr."""
    paramiko_log = logging.getLogger("paramiko")
    if not paramiko_log.handlers:
        paramiko_log.addHandler(logging.NullHandler())


def main(argv: list[str] | None = None) -> int:
    """Entry point: one error boundary for the whole program."""
    with signals.interrupts_delivered():
        return _main(argv)


def _main(argv: list[str] | None) -> int:
    try:
        parser = build_parser(sys.argv[1:] if argv is None else argv)  # Ctrl-C may land here
    except KeyboardInterrupt:  # nothing ran yet
        return int(ExitCode.INTERRUPTED)
    argcomplete.autocomplete(parser, always_complete_options=False)
    args = parser.parse_args(argv)
    quiet_library_logs()
    console = render.make_console(no_color=args.no_color)
    error_console = render.make_console(stderr=True, no_color=args.no_color)
    try:
        return int(args.run(Lab(args, console)))
    except LabError as exc:
        render.error_line(error_console, str(exc), exc.hint)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        render.error_line(error_console, "interrupted", "run the same command again to finish")
        return int(ExitCode.INTERRUPTED)
