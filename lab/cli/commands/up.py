"""`lab up`: create and start the lab's hosts; with --provision, build the base design too."""

from __future__ import annotations

import time

from lab import providers
from lab.cli import render
from lab.cli.commands import provider_option
from lab.cli.commands.provision import provision_lab
from lab.core.errors import ExitCode
from lab.remote.connection import BOOT_FINISHED, on_every_host
from provision import BASE
from provision.snapshots import ensure_reference_state, is_cached, taken_from

HELP = "create and start the lab's hosts (safe to re-run)"
ORDER = 10  # its place in `lab --help`


def arguments(parser) -> None:
    provider_option(parser)
    parser.add_argument(
        "--provision",
        action="store_true",
        help="also build the whole infrastructure (lab provision)",
    )


def run(lab) -> ExitCode:
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


def provision_fresh_hosts(lab) -> ExitCode:
    """The base design on hosts just made, through the reference-state cache: restored when
    it holds it, else made from a same-shaped lab's build (another name and subnet), else built
    (from the largest cached part), and kept there for next time."""
    started = time.monotonic()
    warm = is_cached(lab.topology, lab.provider, BASE)
    ensure_reference_state(lab.topology, lab.state, lab.provider, BASE, lab.reporter, share=True)
    on_every_host(lab.provider.specs(), BOOT_FINISHED)
    source = None if warm else taken_from(lab.topology, lab.provider, BASE)
    how = (
        "restored from the reference-state cache"
        if warm
        else f"taken over from lab {source}'s build, provisioned again and cached for next time"
        if source
        else "built and cached for next time"
    )
    lab.console.print(
        f"[ok]✓[/] the base design: {how} in {time.monotonic() - started:.1f} s"
        " (`lab provision` re-applies it, `lab check` grades it)"
    )
    return ExitCode.OK
