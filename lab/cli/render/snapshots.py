"""What `lab snapshot list` shows: a lab's snapshots, and those of labs that are gone."""

from __future__ import annotations

import datetime

from rich.markup import escape
from rich.table import Table


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


def gone_table(gone: dict) -> Table:
    """The snapshots of labs that no longer exist, and how to remove them."""
    result = Table(
        title="snapshots of labs that no longer exist",
        title_justify="left",
        caption="remove: lab snapshot delete NAME --lab LAB (or --all --lab LAB)",
        caption_justify="left",
    )
    for column in ("lab", "name", "taken", "provider"):
        result.add_column(column)
    for lab_name, found in gone.items():
        for snapshot in found:
            taken = datetime.datetime.fromtimestamp(snapshot.created).strftime("%Y-%m-%d %H:%M")
            result.add_row(escape(lab_name), escape(snapshot.name), taken, snapshot.provider)
    return result
