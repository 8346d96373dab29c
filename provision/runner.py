"""Run components over the lab: packages first, then each component's steps, hosts in parallel."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from lab.core.state import LabState
from lab.core.topology import Host, Topology
from lab.remote.connection import Fleet, describe, fan_out
from provision import dbflavour
from provision.engine import HostRun, StepFailed


@dataclass(frozen=True)
class Component:
    """One part of the infrastructure: the hosts it lives on, its packages and its steps."""

    name: str
    title: str
    roles: tuple[str, ...]
    apply: Callable[[Run], None]
    packages: Callable[[Run, Host], tuple[str, ...]] = lambda run, host: ()
    unavailable: Callable[[Topology], str] = lambda topology: ""  # why it can't be built here

    def hosts(self, topology: Topology) -> list[Host]:
        return [h for h in topology.hosts if set(h.roles) & set(self.roles)]


@dataclass
class Run:
    """One provisioning run: topology, secrets, a HostRun per host, failures so far."""

    topology: Topology
    state: LabState
    hosts: dict[str, HostRun]
    failures: dict[str, str] = field(default_factory=dict)
    flavours: dict[str, dbflavour.Flavour] = field(default_factory=dict)
    accounts_changed: bool = False  # set by the database step when passwords were (re)set
    taken_over: bool = False  # the hosts hold another lab's state (provision.snapshots): its
    # logs hold that lab's passwords

    def secret(self, name: str) -> str:
        return self.state.secret(name)

    def flavour(self, host: Host) -> dbflavour.Flavour:
        return self.flavours.get(host.name, dbflavour.MARIADB)

    def each(self, role: str, step: Callable[[HostRun, Host], None], component: str) -> None:
        """Run step on every healthy host with role, in parallel; failures stop only their host."""
        targets = [h for h in self.topology.with_role(role) if h.name not in self.failures]
        self.parallel(targets, step, component)

    def parallel(self, targets: list[Host], step, component: str) -> None:
        def call(host: Host) -> None:
            run = self.hosts[host.name]
            run.component = component
            step(run, host)

        for name, outcome in fan_out(targets, call, key=lambda host: host.name).items():
            if isinstance(outcome.error, StepFailed):
                self.failures[name] = f"{outcome.error.step}: {outcome.error.detail}"
            elif outcome.error:  # a connection dropped, a command crashed: report, go on
                self.failures[name] = f"{component}: {describe(outcome.error)}"


@dataclass(frozen=True)
class Summary:
    """What a run changed per host and component, and which hosts failed."""

    changes: dict[str, dict[str, int]]
    failures: dict[str, str]
    components: tuple[str, ...]

    @property
    def total_changed(self) -> int:
        return sum(sum(per.values()) for per in self.changes.values())

    @property
    def ok(self) -> bool:
        return not self.failures


def run_components(
    topology: Topology,
    state: LabState,
    fleet: Fleet,
    components: list[Component],
    reporter,
    taken_over: bool = False,
) -> Summary:
    """Provision the given components; every host goes as far as it can. taken_over: the
    hosts were restored from another lab's state (provision.snapshots)."""
    involved = [h for h in topology.hosts if any(h in c.hosts(topology) for c in components)]
    run = Run(
        topology,
        state,
        {h.name: HostRun(h.name, h.address, fleet[h.name]) for h in involved},
        taken_over=taken_over,
    )
    with reporter.step("facts and packages") as step:
        run.parallel(involved, lambda hr, host: _facts(run, hr, host), "facts")

        def install(hr: HostRun, host: Host) -> None:
            wanted = [
                p for c in components if host in c.hosts(topology) for p in c.packages(run, host)
            ]
            step.update(f"{host.name}: {len(wanted)} packages")
            hr.packages(*wanted)

        run.parallel([h for h in involved if h.name not in run.failures], install, "packages")
        step.done(_changed_hosts(run, "packages", set()), ok=not run.failures)
    for component in components:
        with reporter.step(component.title) as step:
            failed_before = set(run.failures)
            component.apply(run)
            step.done(
                _changed_hosts(run, component.name, failed_before),
                ok=set(run.failures) == failed_before,
            )
    changes: dict[str, dict[str, int]] = {h.name: {} for h in involved}
    for name, hr in run.hosts.items():
        for change in hr.changes:
            changes[name][change.component] = changes[name].get(change.component, 0) + 1
    return Summary(changes, dict(run.failures), ("packages", *(c.name for c in components)))


def _facts(run: Run, hr: HostRun, host: Host) -> None:
    os_release = hr.sh("cat /etc/os-release", sudo=False).stdout
    run.flavours[host.name] = dbflavour.for_os(os_release)


def _changed_hosts(run: Run, component: str, failed_before: set[str]) -> str:
    counts = {
        name: sum(1 for c in hr.changes if c.component == component)
        for name, hr in run.hosts.items()
    }
    failed = [f"{name} FAILED" for name in run.failures if name not in failed_before]
    parts = [f"{name} {n} changed" for name, n in counts.items() if n] + failed
    return ", ".join(parts) or "nothing changed"


def zone_serial(text: str) -> int:
    """A stable SOA serial for a zone's content (the lab has no secondaries to notify)."""
    return int(hashlib.sha256(text.encode()).hexdigest()[:7], 16)
