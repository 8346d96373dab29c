"""`lab provision`: build the infrastructure on the lab (the base design, or named components)."""

from __future__ import annotations

from lab.cli import render
from lab.core.errors import ExitCode, LabError
from lab.remote.connection import Fleet
from provision import BASE, COMPONENTS
from provision.ready import settle
from provision.runner import run_components

HELP = "build the infrastructure on the lab (all, or named components)"
ORDER = 30  # its place in `lab --help`


def arguments(parser) -> None:
    parser.add_argument(
        "components",
        nargs="*",
        metavar="COMPONENT",
        help=f"one of: {', '.join(COMPONENTS)} (default: the base design, {' '.join(BASE)})",
    )
    parser.add_argument(
        "--all", action="store_true", help="the base design and every fix of its issues"
    )


def run(lab) -> ExitCode:
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


def provision_lab(lab, names: list[str]) -> ExitCode:
    """Build the named components (in the reference order) and print what changed."""
    chosen = [component for name, component in COMPONENTS.items() if name in names]
    with Fleet(lab.provider.specs()) as fleet:
        summary = run_components(lab.topology, lab.state, fleet, chosen, lab.reporter)
    lab.console.print(render.provision_summary(summary))
    if not summary.ok:
        return ExitCode.FAILED
    settle(lab.topology, lab.provider.specs(), [c.name for c in chosen], lab.reporter)
    return ExitCode.OK
