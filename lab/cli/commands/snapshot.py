"""`lab snapshot save|restore|list|delete NAME`: keep the hosts' state and go back to it."""

from __future__ import annotations

from rich.markup import escape

from lab.cli.confirm import add_yes, confirm
from lab.cli.render import snapshots as snapshots_view
from lab.core.errors import ExitCode, LabError
from lab.core.state import LabState
from provision import snapshots

RESTORE_SECONDS = 30.0
HELP = (
    "save the hosts' state before something risky, and go back to it: "
    "lab snapshot save|restore|list|delete NAME"
)
DESCRIPTION = (
    HELP + ". LXC freezes each host's own changes (its overlay layer) as a read-only layer the "
    "hosts go on from; Vagrant uses its own snapshots where its provider has them; the ssh "
    "provider has none. Snapshots are kept in "
    "$LAB_HOME/snapshots/LAB, outside the lab's state: they survive `lab destroy` (restore one "
    "after the next `lab up`) and only `lab snapshot delete` removes them. A restore brings back "
    "the files exactly, with the lab's current login and host keys. `list` also names the "
    "snapshots of labs that no longer exist; `delete NAME --lab LAB` (or `--all`) removes them."
)
ORDER = 180  # its place in `lab --help`


def arguments(parser) -> None:
    parser.description = DESCRIPTION
    parser.add_argument("action", choices=("save", "restore", "list", "delete"))
    parser.add_argument("name", nargs="?", metavar="NAME", help="the snapshot's name")
    parser.add_argument("--force", action="store_true", help="save: replace a snapshot of NAME")
    parser.add_argument(
        "--lab", metavar="LAB", help="list, delete: the snapshots of LAB, a lab that is gone"
    )
    parser.add_argument("--all", action="store_true", help="delete: every snapshot of the lab")
    add_yes(parser, "restore")


def run(lab) -> ExitCode:
    action, name = lab.args.action, lab.args.name
    if lab.args.lab and action in ("save", "restore"):
        raise LabError(f"--lab is for list and delete; `lab snapshot {action}` is this lab's")
    if action == "list":
        lab_name = lab.args.lab or lab.topology.name
        lab.console.print(snapshots_view.table(lab_name, snapshots.list_snapshots(lab_name)))
        gone = snapshots.labs_gone(lab_name)
        if gone:
            lab.console.print(snapshots_view.gone_table(gone))
        return ExitCode.OK
    if action == "delete" and lab.args.all and not name:
        return delete(lab, all_of_the_lab=True)
    if not name:
        raise LabError(f"which snapshot? `lab snapshot {action} NAME`")
    if action == "delete":
        return delete(lab)
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


def delete(lab, all_of_the_lab: bool = False) -> ExitCode:
    """Delete one snapshot, or all of a lab's; another lab's only when that lab is gone."""
    state = lab.state
    if lab.args.lab and lab.args.lab != lab.topology.name:
        state = LabState(lab.args.lab)
        if state.exists:
            raise LabError(
                f"lab {lab.args.lab!r} exists: delete its snapshots with its own topology",
                hint="lab --topology ITS_LAB.yml snapshot delete NAME",
            )
    names = [s.name for s in snapshots.list_snapshots(state.name)]
    if all_of_the_lab and not names:
        raise LabError(f"lab {state.name!r} has no snapshots")
    for name in names if all_of_the_lab else [lab.args.name]:
        snapshots.delete_snapshot(state, lab.provider if state is lab.state else None, name)
        lab.console.print(f"snapshot {name!r} of lab {state.name!r} deleted")
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
