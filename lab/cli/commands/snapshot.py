"""`lab snapshot save|restore|list|delete NAME`: keep the hosts' state and go back to it."""

from __future__ import annotations

import datetime

from rich.markup import escape
from rich.table import Table

from lab.cli.confirm import add_yes, confirm
from lab.core.errors import ExitCode, LabError
from provision import snapshots

RESTORE_SECONDS = 30.0
HELP = (
    "save the hosts' state before something risky, and go back to it: "
    "lab snapshot save|restore|list|delete NAME"
)
DESCRIPTION = (
    HELP + ". LXC copies each host's own changes (its overlay layer); Vagrant uses its own "
    "snapshots where its provider has them; the ssh provider has none. Snapshots are kept in "
    "$LAB_HOME/snapshots/LAB, outside the lab's state: they survive `lab destroy` (restore one "
    "after the next `lab up`) and only `lab snapshot delete` removes them. A restore brings back "
    "the files exactly, with the lab's current login and host keys."
)
ORDER = 180  # its place in `lab --help`


def arguments(parser) -> None:
    parser.description = DESCRIPTION
    parser.add_argument("action", choices=("save", "restore", "list", "delete"))
    parser.add_argument("name", nargs="?", metavar="NAME", help="the snapshot's name")
    parser.add_argument("--force", action="store_true", help="save: replace a snapshot of NAME")
    add_yes(parser, "restore")


def run(lab) -> ExitCode:
    action, name = lab.args.action, lab.args.name
    if action == "list":
        lab.console.print(table(lab.topology.name, snapshots.list_snapshots(lab.topology.name)))
        return ExitCode.OK
    if not name:
        raise LabError(f"which snapshot? `lab snapshot {action} NAME`")
    if action == "delete":
        snapshots.delete_snapshot(lab.state, lab.provider, name)
        lab.console.print(f"snapshot {name!r} deleted")
        return ExitCode.OK
    lab.require_up()
    if action == "restore":
        snapshots.find_snapshot(lab.topology.name, name)  # an unknown name is refused first
        confirm(
            lab,
            f"restoring snapshot {name!r} replaces what the hosts of lab {lab.topology.name!r} "
            "hold now",
            f"Restore {name!r} and throw the hosts' current state away?",
        )
    with lab.state.lock():
        if action == "save":
            taken = snapshots.save_snapshot(
                lab.state, lab.provider, name, lab.reporter, replace=lab.args.force
            )
            lab.console.print(
                f"[ok]✓[/] snapshot {name!r} saved in {taken.seconds:.1f} s "
                f"([muted]lab snapshot restore {name}[/] goes back to it)"
            )
        else:
            seconds = snapshots.restore_snapshot(lab.state, lab.provider, name, lab.reporter)
            lab.console.print(f"[ok]✓[/] snapshot {name!r} restored in {seconds:.1f} s")
            settle_restored(lab)
    return ExitCode.OK


def settle_restored(lab) -> None:
    """Wait (briefly) until the restored services answer; a lab saved broken stays broken, and
    the restore says what does not answer instead of failing."""
    from provision import BASE
    from provision.ready import settle

    try:
        settle(lab.topology, lab.provider.specs(), BASE, lab.reporter, seconds=RESTORE_SECONDS)
    except LabError as exc:
        lab.console.print(f"[hint]note:[/] {escape(str(exc))} ([muted]as it was saved?[/])")


def table(lab_name: str, found) -> Table:
    result = Table(title=f"snapshots of lab {lab_name}", title_justify="left")
    for column in ("name", "taken", "provider", "save took"):
        result.add_column(column)
    for snapshot in found:
        taken = datetime.datetime.fromtimestamp(snapshot.created).strftime("%Y-%m-%d %H:%M:%S")
        result.add_row(snapshot.name, taken, snapshot.provider, f"{snapshot.seconds:.1f} s")
    if not found:
        result.caption = "none yet: lab snapshot save NAME"
    return result
