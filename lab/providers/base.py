"""What every provider offers: create, list and destroy hosts, and hand back SSH specs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from lab.connection import HostSpec
from lab.state import LabState
from lab.topology import Topology


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

    def destroy(self, progress) -> None:
        """Remove everything this provider created for the lab, and nothing else."""

    def specs(self) -> list[HostSpec]:
        """SSH connection specs of the hosts, in topology order."""

    def doctor(self) -> list[tuple[str, bool, str]]:
        """(what, ok, how to fix) for each prerequisite of this provider."""
