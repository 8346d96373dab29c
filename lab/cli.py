"""The `lab` command: parse arguments, run one command, turn expected failures into one line."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from functools import cached_property
from pathlib import Path

import argcomplete

from checks import catalogue
from checks.report import to_json, to_junit
from checks.runner import DEADLINE, run_on_lab, select
from lab import __version__, providers
from lab.cli import render
from lab.cli.commands import completion
from lab.cli.watch import positive_seconds, watch_checks
from lab.core import platform, topology
from lab.core.errors import ExitCode, LabError
from lab.core.state import LabState, write_private
from lab.core.system import require_root
from lab.course import history
from lab.providers.vagrant import VagrantProvider
from lab.remote import sshconfig
from lab.remote.connection import BOOT_FINISHED, Fleet, on_every_host
from provision import BASE, COMPONENTS, snapshots
from provision.ready import settle
from provision.runner import run_components
from provision.snapshots import ensure_reference_state, is_cached


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


def cmd_up(lab: Lab) -> ExitCode:
    why = providers.reason(
        lab.args.provider, lab.state.load().get("provider"), lab.topology.provider
    )
    lab.console.print(f"provider [host]{lab.provider.name}[/]: {why}")
    fresh = not lab.state.exists  # the hosts are made now: nothing on them to keep
    with lab.state.lock():
        lab.provider.up(lab.reporter)
        lab.write_ssh_config()
        lab.console.print(render.status_table(lab.provider.status(), lab.topology.name))
        if lab.args.provision:
            if fresh and lab.provider.layers:
                return provision_fresh_hosts(lab)
            return provision_lab(lab, list(BASE))
    return ExitCode.OK


def provision_fresh_hosts(lab: Lab) -> ExitCode:
    """The base design on hosts just made, through the reference-state cache: restored when
    it holds it, else built (from the largest cached part) and kept there for next time."""
    started = time.monotonic()
    warm = is_cached(lab.topology, lab.provider, BASE)
    ensure_reference_state(lab.topology, lab.state, lab.provider, BASE, lab.reporter)
    on_every_host(lab.provider.specs(), BOOT_FINISHED)
    how = "restored from the reference-state cache" if warm else "built and cached for next time"
    lab.console.print(
        f"[ok]✓[/] the base design: {how} in {time.monotonic() - started:.1f} s"
        " (`lab provision` re-applies it, `lab check` grades it)"
    )
    return ExitCode.OK


def cmd_provision(lab: Lab) -> ExitCode:
    unknown = [name for name in lab.args.components if name not in COMPONENTS]
    if unknown:
        raise LabError(f"unknown component {unknown[0]!r}; components: {', '.join(COMPONENTS)}")
    for name in lab.args.components:
        if reason := COMPONENTS[name].unavailable(lab.topology):
            raise LabError(reason)
    lab.require_up()
    with lab.state.lock():
        default = COMPONENTS if lab.args.all else BASE
        chosen = [n for n in default if not COMPONENTS[n].unavailable(lab.topology)]
        return provision_lab(lab, lab.args.components or chosen)


def provision_lab(lab: Lab, names: list[str]) -> ExitCode:
    """Build the named components (in the reference order) and print what changed."""
    chosen = [component for name, component in COMPONENTS.items() if name in names]
    with Fleet(lab.provider.specs()) as fleet:
        summary = run_components(lab.topology, lab.state, fleet, chosen, lab.reporter)
    lab.console.print(render.provision_summary(summary))
    if not summary.ok:
        return ExitCode.FAILED
    settle(lab.topology, lab.provider.specs(), [c.name for c in chosen], lab.reporter)
    return ExitCode.OK


def cmd_check(lab: Lab) -> ExitCode:
    if lab.args.list:
        lab.console.print(render.check_list(catalogue()))
        return ExitCode.OK
    chosen = select(catalogue(), lab.args.what, lab.args.all)
    specs = lab.specs()
    if lab.args.watch:
        by = check_command(lab.args)
        return watch_checks(lab, chosen, lab.args.every, lab.args.times, by, lab.args.deadline)
    with Fleet(specs) as fleet:
        if lab.args.deadline is None:
            report = run_on_lab(chosen, lab.topology, fleet)
        else:
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


def cmd_box(lab: Lab) -> ExitCode:
    require_root("lab box build")
    VagrantProvider(lab.topology, lab.state).build_box(lab.reporter)
    return ExitCode.OK


def cmd_hosts(lab: Lab) -> ExitCode:
    domain = lab.topology.domain
    lines = [
        f"# webstack lab {lab.topology.name}: add to /etc/hosts",
        f"{lab.topology.site_address}\t{domain} www.{domain}",
    ]
    lines += [f"{host.address}\t{host.name}" for host in lab.topology.hosts]
    sys.stdout.write("\n".join(lines) + "\n")
    return ExitCode.OK


def cmd_status(lab: Lab) -> ExitCode:
    if lab.args.json:
        sys.stdout.write(json.dumps(status_record(lab), indent=2) + "\n")
        return ExitCode.OK
    if not lab.state.exists:
        lab.console.print(f"lab {lab.topology.name!r} is not up ([muted]`lab up` creates it[/])")
        return ExitCode.OK
    lab.console.print(render.status_table(lab.provider.status(), lab.topology.name))
    return ExitCode.OK


def status_record(lab: Lab) -> dict:
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


def cmd_ssh(lab: Lab) -> ExitCode:
    host = lab.topology.host(lab.args.host)
    lab.require_up()
    config = lab.state.ssh_config_file
    if not config.is_file():
        lab.write_ssh_config()
    command = lab.args.remote[1:] if lab.args.remote[:1] == ["--"] else lab.args.remote
    argv = ["ssh", "-F", str(config), *([] if command else ["-t"]), host.name, *command]
    sys.stdout.flush()
    os.execvp("ssh", argv)


def cmd_ssh_config(lab: Lab) -> ExitCode:
    lab.require_up()
    sys.stdout.write(lab.write_ssh_config())
    return ExitCode.OK


def cmd_destroy(lab: Lab) -> ExitCode:
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


def cmd_doctor(lab: Lab) -> ExitCode:
    name = lab.args.provider or providers.choose(
        None, lab.state.load().get("provider"), lab.topology.provider
    )
    lab.console.print(f"provider: [host]{name}[/] (topology {lab.topology.source})")
    results = [platform.python_support(), *providers.load(name, lab.topology, lab.state).doctor()]
    lab.console.print(render.doctor_table(results))
    return ExitCode.OK if all(ok for _, ok, _ in results) else ExitCode.FAILED


COMMANDS = {
    "up": (cmd_up, "create and start the lab's hosts (safe to re-run)"),
    "status": (cmd_status, "show each host, its address and state"),
    "provision": (cmd_provision, "build the infrastructure on the lab (all, or named components)"),
    "check": (cmd_check, "grade the live lab against every requirement of the design"),
    "box": (cmd_box, "build the lab's Debian 12 box for Vagrant's lxc provider: lab box build"),
    "hosts": (cmd_hosts, "print /etc/hosts lines for foobar.com, www.foobar.com and the hosts"),
    "ssh": (cmd_ssh, "open a shell on a host, or run one command: lab ssh HOST -- CMD"),
    "ssh-config": (cmd_ssh_config, "print an OpenSSH config for `ssh -F FILE HOST`"),
    "destroy": (cmd_destroy, "remove everything the lab created, and nothing else"),
    "doctor": (cmd_doctor, "list what this machine lacks to run the lab, and how to fix it"),
}


# Commands with a module of their own under lab/commands/: each module has HELP,
# arguments(parser) and run(lab) -> ExitCode; the command's name is the module's, dashes for
# underscores.
COMMAND_MODULES: tuple[str, ...] = (
    "diagram",
    "completion",
    "init",
    "fault",
    "quiz",
    "exercise",
    "progress",
    "snapshot",
    "grade",
    "ca",
    "files",
)


def command_modules(argv: list[str] | None = None) -> dict:
    """The command modules by command name, in the order listed. Given the command line, only
    the modules of the commands it names: a command starts without importing the others."""
    names = {name.replace("_", "-"): name for name in COMMAND_MODULES}
    if argv is not None and "_ARGCOMPLETE" not in os.environ:
        words = set(argv)
        if words & (set(names) | set(COMMANDS)):  # else help, or an unknown command: all
            names = {command: name for command, name in names.items() if command in words}
    return {
        command: importlib.import_module(f"lab.commands.{name}") for command, name in names.items()
    }


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
    commands = parser.add_subparsers(dest="cmd", metavar="COMMAND", required=True)
    subs = {}
    for name, (_, help_text) in COMMANDS.items():
        subs[name] = commands.add_parser(name, help=help_text, description=help_text)
    for name in ("up", "doctor", "status", "destroy"):
        subs[name].add_argument(
            "--provider",
            choices=providers.available(),
            help="where hosts come from (default: lab.yml, else the machine's)",
        )
    subs["destroy"].add_argument(
        "--purge",
        action="store_true",
        help="also delete the lab's download cache (and the base image when no other lab uses it)",
    )
    subs["up"].add_argument(
        "--provision",
        action="store_true",
        help="also build the whole infrastructure (lab provision)",
    )
    subs["provision"].add_argument(
        "components",
        nargs="*",
        metavar="COMPONENT",
        help=f"one of: {', '.join(COMPONENTS)} (default: the base design, {' '.join(BASE)})",
    )
    subs["provision"].add_argument(
        "--all", action="store_true", help="the base design and every fix of its issues"
    )
    for name, module in command_modules(argv).items():
        sub = commands.add_parser(name, help=module.HELP, description=module.HELP)
        module.arguments(sub)
        sub.set_defaults(run=module.run)
    subs["check"].add_argument(
        "what",
        nargs="*",
        metavar="SECTION|ID",
        help="sections or check ids to run (default: the base design's checks)",
    )
    subs["check"].add_argument(
        "--all",
        action="store_true",
        help="also the sections of the design's issues (firewall, https, monitoring, ha)",
    )
    subs["check"].add_argument("--json", action="store_true", help="print the JSON report")
    subs["check"].add_argument("--junit", metavar="FILE", help="also write a JUnit XML report")
    subs["check"].add_argument("--list", action="store_true", help="list the checks and exit")
    subs["check"].add_argument(
        "--watch", action="store_true", help="re-run the checks every few seconds until Ctrl-C"
    )
    subs["check"].add_argument(
        "--every", type=positive_seconds, default=3.0, metavar="N", help="seconds between runs"
    )
    subs["check"].add_argument(
        "--deadline",
        type=deadline_seconds,
        metavar="N",
        help=f"seconds the whole run may take (default {DEADLINE:g}, plus what alert and "
        "failover checks wait on purpose); a check still running then fails with what it "
        "was waiting for",
    )
    subs["check"].add_argument("--times", type=int, default=0, help=argparse.SUPPRESS)
    subs["box"].add_argument("action", choices=["build"], help="build (and add) the box")
    subs["ssh"].add_argument("host", help="host name, e.g. web-01")
    subs["ssh"].add_argument(
        "remote",
        nargs=argparse.REMAINDER,
        metavar="-- CMD",
        help="command to run instead of a shell",
    )
    subs["status"].add_argument("--json", action="store_true", help="print the status as JSON")
    completion.attach(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point: one error boundary for the whole program."""
    try:
        parser = build_parser(sys.argv[1:] if argv is None else argv)  # Ctrl-C may land here
    except KeyboardInterrupt:  # nothing ran yet
        return int(ExitCode.INTERRUPTED)
    argcomplete.autocomplete(parser, always_complete_options=False)
    args = parser.parse_args(argv)
    console = render.make_console(no_color=args.no_color)
    error_console = render.make_console(stderr=True, no_color=args.no_color)
    try:
        run = getattr(args, "run", None) or COMMANDS[args.cmd][0]
        return int(run(Lab(args, console)))
    except LabError as exc:
        render.error_line(error_console, str(exc), exc.hint)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        render.error_line(error_console, "interrupted", "run the same command again to finish")
        return int(ExitCode.INTERRUPTED)
