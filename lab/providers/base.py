"""What every provider offers: create, list and destroy hosts, and hand back SSH specs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from lab.core.state import LabState
from lab.core.topology import Topology
from lab.remote.connection import HostSpec


@dataclass(frozen=True)
class HostStatus:
    """One host as its provider sees it."""

    name: str
    address: str
    state: str  # running | stopped | absent | unknown
    provider: str


class Provider(Protocol):
    """The provider interface; implementations live in one module each."""

    name: str
    topology: Topology
    state: LabState

    def up(self, progress) -> None:
        """Create and start every host, finishing an interrupted run; a running lab stays."""

    def status(self) -> list[HostStatus]:
        """Each host of the topology with its state."""

    def destroy(self, progress, purge: bool = False) -> None:
        """Remove everything this provider created for the lab, and nothing else."""

    def specs(self) -> list[HostSpec]:
        """SSH connection specs of the hosts, in topology order."""

    def doctor(self) -> list[tuple[str, bool, str]]:
        """(what, ok, how to fix) for each prerequisite of this provider."""

    # -- snapshots (lab snapshot, lab exercise start) --------------------------------------
    layers: bool  # True: hosts can start fresh from read-only layers (the reference cache)

    def snapshot_save(self, name: str, directory: Path, progress) -> dict:
        """Save every host's state as snapshot name (files, if any, under directory); returns
        what restore needs besides the files (LXC: each host's read-only layers)."""

    def snapshot_restore(self, name: str, directory: Path, layers: dict, progress) -> None:
        """Bring every host back to snapshot name exactly and wait until SSH answers."""

    def snapshot_delete(self, name: str, directory: Path) -> None:
        """Remove what snapshot_save kept outside directory (Vagrant's own snapshots)."""

    def base_id(self) -> str:
        """What fresh hosts start from (the image), '' when unknown; part of cache keys."""

    def restore_layers(self, layers: dict[str, list[Path]], progress) -> None:
        """Fresh hosts on read-only layers (top first, per host), SSH ready (layers only)."""

    def save_layer(self, directory: Path, progress) -> dict[str, list[Path]]:
        """Freeze each host's changes into directory/HOST as a read-only layer and go on from
        it; returns each host's layers, top first (layers only)."""

    def layers_in_use(self) -> set[Path]:
        """Every read-only layer some host on this machine starts from (layers only)."""
