"""Existing servers (cloud machines, a student's own) listed in an inventory file.

The provider creates nothing and destroys nothing: `lab up` checks that every server answers,
`lab destroy` forgets the lab's state and leaves the servers as they are.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import yaml

from lab.core.errors import HostFailure, LabError
from lab.core.wait import Deadline
from lab.providers.base import HostStatus
from lab.remote.connection import HostSpec, wait_for_ssh

INVENTORY_ENV = "LAB_INVENTORY"
FIELDS = {"ssh", "port", "user", "key"}


def inventory_file(topology, recorded: str | None = None) -> Path:
    """$LAB_INVENTORY, else what `lab up` recorded, else inventory.yml beside lab.yml."""
    if os.environ.get(INVENTORY_ENV):
        return Path(os.environ[INVENTORY_ENV])
    if recorded:
        return Path(recorded)
    base = topology.source.parent if topology.source else Path.cwd()
    return base / "inventory.yml"


def parse_inventory(
    data: object,
    topology,
    where: str = "inventory",
    known_hosts: Path | None = None,
    base: Path | None = None,
) -> list[HostSpec]:
    """Validate inventory data against the topology; every mistake names its field.

    Host keys: the inventory's `known_hosts:` file (relative to base) is enforced as given;
    without one, each server's first key is recorded in known_hosts and enforced from then on.
    """
    if not isinstance(data, dict) or not isinstance(data.get("hosts"), dict):
        raise LabError(f"{where}: expected `hosts:` with one entry per host of the lab")
    unknown_top = sorted(set(data) - {"hosts", "known_hosts"})
    if unknown_top:
        raise LabError(f"{where}: unknown field {unknown_top[0]!r}; fields: hosts, known_hosts")
    pinned = _pinned_known_hosts(data.get("known_hosts"), where, base)
    entries = data["hosts"]
    unknown = sorted(set(entries) - set(topology.names))
    if unknown:
        raise LabError(
            f"{where}: unknown host {unknown[0]!r}; the lab has {', '.join(topology.names)}"
        )
    missing = [name for name in topology.names if name not in entries]
    if missing:
        raise LabError(f"{where}: no entry for {', '.join(missing)}")
    return [
        _host_spec(host, entries[host.name] or {}, where, pinned or known_hosts, pinned is not None)
        for host in topology.hosts
    ]


def _pinned_known_hosts(pinned: object, where: str, base: Path | None) -> Path | None:
    """The inventory's own known_hosts file (relative to base), if it names one that exists."""
    if pinned is None:
        return None
    if not isinstance(pinned, str) or not pinned:
        raise LabError(f"{where}: known_hosts must be the path of a known_hosts file")
    path = ((base or Path.cwd()) / Path(pinned).expanduser()).resolve()
    if not path.is_file():
        raise LabError(f"{where}: known_hosts: no file {path}")
    return path


def _host_spec(host, entry: object, where: str, known_hosts: Path | None, pinned: bool) -> HostSpec:
    """One host's inventory entry (ssh address, port, user, key) as the spec to reach it by."""
    if not isinstance(entry, dict) or set(entry) - FIELDS:
        extra = sorted(set(entry) - FIELDS) if isinstance(entry, dict) else ["?"]
        raise LabError(
            f"{where}: hosts.{host.name}: unknown field {extra[0]!r}; "
            f"fields: {', '.join(sorted(FIELDS))}"
        )
    port = entry.get("port", 22)
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        raise LabError(f"{where}: hosts.{host.name}.port must be a port number")
    user, key = entry.get("user"), entry.get("key")
    if not isinstance(user, str) or not user:
        raise LabError(f"{where}: hosts.{host.name}.user is required")
    if not isinstance(key, str) or not key:
        raise LabError(f"{where}: hosts.{host.name}.key (a private key file) is required")
    ssh = entry.get("ssh", host.address)
    if not isinstance(ssh, str) or not ssh:
        raise LabError(f"{where}: hosts.{host.name}.ssh must be the address or name to reach it by")
    return HostSpec(
        host.name,
        ssh,
        port,
        user,
        Path(key).expanduser(),
        known_hosts,
        host_keys_pinned=pinned,
        record_host_keys=not pinned and known_hosts is not None,
        tunnel=ssh != host.address,
    )


class SshProvider:
    """The servers of an inventory file, reached over SSH; never created or destroyed here."""

    name = "ssh"

    def __init__(self, topology, state):
        self.topology = topology
        self.state = state

    def _inventory(self) -> Path:
        return inventory_file(self.topology, self.state.load().get("inventory"))

    def specs(self) -> list[HostSpec]:
        path = self._inventory()
        try:
            data = yaml.safe_load(path.read_text())
        except OSError as exc:
            raise LabError(
                f"inventory {path}: {exc.strerror}",
                hint=f"list your servers there, or set {INVENTORY_ENV}",
            ) from None
        except yaml.YAMLError as exc:
            first = str(exc).strip().splitlines()[0]
            raise LabError(f"inventory {path}: not valid YAML: {first}") from None
        specs = parse_inventory(
            data, self.topology, f"inventory {path}", self.state.known_hosts, path.parent
        )
        missing = [str(s.key_file) for s in specs if not s.key_file.is_file()]
        if missing:
            raise LabError(f"inventory {path}: key file {missing[0]} does not exist")
        return specs

    def up(self, progress) -> None:
        specs = self.specs()  # a malformed inventory fails here, before anything is saved
        self.state.save(provider=self.name, inventory=str(self._inventory().resolve()))
        with progress.step("SSH to every server") as step:
            deadline = Deadline(15)
            failures = []
            for spec in specs:
                try:
                    wait_for_ssh(spec, deadline)
                except LabError as exc:
                    failures.append(str(exc))
            if failures:
                raise HostFailure("; ".join(failures))
            step.done(", ".join(s.name for s in specs))

    def status(self) -> list[HostStatus]:
        specs = {s.name: s for s in self.specs()}
        return [
            HostStatus(h.name, h.address, _reachable(specs[h.name]), self.name)
            for h in self.topology.hosts
        ]

    def destroy(self, progress, purge: bool = False) -> None:
        with progress.step("forget the servers (they are yours: nothing on them changes)") as s:
            self.state.remove()
            s.done("lab state removed")

    layers = False

    def snapshot_save(self, name, directory, progress) -> dict:
        raise _no_snapshots()

    def snapshot_restore(self, name, directory, layers, progress) -> None:
        raise _no_snapshots()

    def snapshot_delete(self, name, directory) -> None:
        raise _no_snapshots()

    def base_id(self) -> str:
        return ""

    def doctor(self) -> list[tuple[str, bool, str]]:
        try:
            specs = self.specs()
        except LabError as exc:
            return [(str(exc), False, exc.hint or "fix the inventory")]
        return [
            (
                f"{s.name}: {s.user}@{s.address}:{s.port} answers",
                _reachable(s) == "running",
                "start the server, open its SSH port",
            )
            for s in specs
        ]


def _no_snapshots() -> LabError:
    return LabError(
        "snapshots are not supported with the ssh provider: the lab does not own these servers",
        hint="use your cloud's or hypervisor's own snapshots",
    )


def _reachable(spec: HostSpec) -> str:
    try:
        with socket.create_connection((spec.address, spec.port), timeout=2):
            return "running"
    except OSError:
        return "unreachable"
