"""A fresh lab per submission: its own name, subnet, bridge and limits, always removed."""

from __future__ import annotations

import json
import os
import re
import threading
from contextlib import contextmanager

from lab import providers
from lab.core.errors import LabError
from lab.core.state import LabState, lab_home
from lab.core.topology import Topology, parse, variant
from lab.grading.assignment import Limits
from lab.providers.lxcnet import conflicting_routes
from lab.remote.connection import Fleet, HostSpec

OCTETS = range(100, 200)  # grading labs take 192.168.100.0/24 to 192.168.199.0/24
SLOTS_VARIABLE = "LAB_GRADE_SLOTS"  # PREFIX:FIRST-LAST, e.g. grade:100-199 (the default)
SLOTS = re.compile(r"^([a-z][a-z0-9-]{0,6}):(\d{1,3})-(\d{1,3})$")


class QuietProgress:
    """The provider's progress interface, reporting step titles to a callback only."""

    def __init__(self, on_step=None):
        self.on_step = on_step or (lambda text: None)

    @contextmanager
    def step(self, title: str):
        self.on_step(title)
        yield _Step()


class _Step:
    result, ok = "", True

    def update(self, text: str) -> None:
        pass

    def done(self, result: str, ok: bool = True) -> None:
        self.result, self.ok = result, ok


class Slot:
    """One lab name and subnet, held (machine-wide, by a lock file) while a submission uses it."""

    def __init__(self, octet: int, handle, prefix: str = "grade"):
        self.octet, self._handle = octet, handle
        self.name = f"{prefix}{octet}"

    def release(self) -> None:
        self._handle.close()


def slot_range(text: str | None) -> tuple[str, range]:
    """The grading labs' name prefix and third octets, from LAB_GRADE_SLOTS (or the default)."""
    if not text:
        return "grade", OCTETS
    match = SLOTS.match(text.strip())
    first, last = (int(match.group(2)), int(match.group(3))) if match else (0, -1)
    if not match or not 1 <= first <= last <= 254:
        raise LabError(
            f"{SLOTS_VARIABLE}={text!r} is not PREFIX:FIRST-LAST (e.g. grade:100-199: lower-case "
            "letters, digits and '-', at most 7, and third octets from 1 to 254)"
        )
    return match.group(1), range(first, last + 1)


def claim_slot() -> Slot:
    """The first grading lab name and subnet no other `lab grade` holds and nothing routes."""
    import fcntl  # Linux only, like the LXC provider that grading needs

    prefix, octets = slot_range(os.environ.get(SLOTS_VARIABLE))
    directory = lab_home() / "grading" / "slots"
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    for octet in octets:
        handle = open(directory / f"{octet}.lock", "w")  # noqa: SIM115 (held until release)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        slot = Slot(octet, handle, prefix)
        subnet = parse(variant(slot.name, octet)).subnet
        if LabState(slot.name).exists or not conflicting_routes(subnet, f"wsl-{slot.name}"):
            return slot  # a lab left by a crash is ours to remove
        slot.release()
    raise LabError(
        f"no free subnet for a grading lab in 192.168.{octets[0]}-{octets[-1]}.0/24",
        hint=f"another range: {SLOTS_VARIABLE}=PREFIX:FIRST-LAST",
    )


class SandboxLab:
    """The submission's lab: brought up fresh, with the assignment's limits, then removed."""

    def __init__(self, slot: Slot, limits: Limits):
        data = variant(slot.name, slot.octet)
        data["sandbox"] = {
            "memory_mib": limits.memory_mib,
            "processes": limits.processes,
            "cpus": limits.cpus,
            "disk_mib": limits.disk_mib,
        }
        self.topology: Topology = parse(data)
        self.state = LabState(slot.name)
        self.provider = providers.load("lxc", self.topology, self.state)  # limits, fence
        self._lock = threading.Lock()
        self.fleets: set = set()  # connections in use: closed by kill() so no read waits on
        self.killed = False  # after kill(), no new connection is opened

    def up(self, on_step=None, tries: int = 2) -> None:
        """Fresh hosts; a lab that does not come up is removed and made again once."""
        for attempt in range(1, tries + 1):
            if self.state.exists:  # left by an interrupted run: never reuse a student's hosts
                self.destroy()
            try:
                self.provider.up(QuietProgress(on_step))
                return
            except LabError:
                if attempt == tries:
                    raise

    def specs(self) -> list[HostSpec]:
        return self.provider.specs()

    def addresses(self) -> dict[str, str]:
        return {host.name: host.address for host in self.topology.hosts}

    def disk_full(self, host: str) -> bool:
        """Whether the host's writable layer has filled its file system (limits.disk_mib)."""
        return self.provider.disk_full(self.topology.host(host))

    def secrets(self) -> dict[str, str]:
        """The lab's generated secrets (given components' database passwords)."""
        path = self.state.secrets_file
        return json.loads(path.read_text()) if path.is_file() else {}

    @contextmanager
    def fleet(self):
        """Connections to the lab's hosts, which kill() can cut from another thread."""
        if self.killed:
            raise LabError(f"lab {self.state.name} was stopped")
        with Fleet(self.specs()) as fleet:
            self.fleets.add(fleet)
            try:
                yield fleet
            finally:
                self.fleets.discard(fleet)

    def kill(self) -> None:
        """Stop every host at once (Ctrl-C): whatever runs there ends now."""
        self.killed = True
        for fleet in list(self.fleets):
            fleet.close()
        for host in self.topology.hosts:
            self.provider.stop_now(host)

    def destroy(self) -> None:
        with self._lock:
            if self.state.exists or self.provider.network.bridge_exists():
                self.provider.destroy(QuietProgress())
