"""Run one fault: check the lab, break it, watch it for N seconds, restore it, wait until it is
whole again, and summarize. The active fault is kept in the lab's state until it is undone."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from checks.base import CheckError
from lab.core.errors import LabError
from lab.core.signals import stopped_like_ctrl_c, uninterrupted
from lab.core.state import LabState, write_private
from lab.core.wait import Deadline
from lab.faults import find
from lab.faults.machine import Machine
from lab.faults.scenarios import Context, Scenario
from lab.faults.timeline import BalancerView, ReplicaView, Request, Summary, summarize
from lab.faults.watch import ENTRY_PREFIX, Observer, Traffic
from lab.observe import probes
from lab.observe.live import LiveLab
from lab.remote.connection import Fleet

SETTLE_SECONDS = 60  # after the restore, how long to wait for the lab to be whole again
TICK = 1.0  # the live view's refresh


@dataclass
class Frame:
    """What the live view shows at one moment."""

    scenario: str
    phase: str  # "fault", "restoring", "recovering"
    elapsed: float
    seconds: float
    requests: list[Request] = field(default_factory=list)
    balancer: BalancerView | None = None
    replica: ReplicaView | None = None


class Marker:
    """The active fault of a lab, on disk, so that `lab fault --restore` can undo it."""

    def __init__(self, state: LabState):
        self.path = state.dir / "fault.json"

    def load(self) -> dict | None:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise LabError(f"the fault marker {self.path} is unreadable: {exc}") from None

    def save(self, record: dict) -> None:
        write_private(self.path, json.dumps(record, indent=2) + "\n")

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


class Session:
    """The lab's hosts for one phase of a run (a host restarted needs fresh connections)."""

    def __init__(self, topology, provider):
        self.topology = topology
        self.provider = provider
        self.specs = {spec.name: spec for spec in provider.specs()}
        self.fleet = Fleet(self.specs.values())
        self.live = LiveLab(topology, self.fleet)

    def context(self) -> Context:
        return Context(self.topology, self.live, Machine(self.provider, self.topology), self.specs)

    def close(self) -> None:
        self.fleet.close()


def preflight(session: Session) -> tuple[str | None, bool]:
    """The lab must be whole before a fault: the site answers and HAProxy sees every server."""
    live = session.live
    try:
        reply = live.http(f"http://{live.address('lb')}/api/status")
    except CheckError as exc:
        raise LabError(
            f"the site does not answer through the load balancer: {exc}",
            hint="a fault needs a working lab: `lab check` says what is wrong",
        ) from None
    if reply.status_code != 200:
        raise LabError(
            f"the site answers /api/status with HTTP {reply.status_code} before any fault",
            hint="`lab check` says what is wrong",
        )
    socket = next(iter(probes.balancer(live)["sockets"]), None)
    if socket:
        rows = probes.server_rows(live, live.name("lb"), socket) or {}
        down = [
            h for h in live.web_hosts() if not rows.get(h, {}).get("status", "").startswith("UP")
        ]
        if down:
            raise LabError(
                f"HAProxy does not see {', '.join(down)} as UP before any fault",
                hint="wait a moment, or run `lab fault --restore` and `lab check`",
            )
    replicating = Observer(live, time.monotonic(), None, None).look_at_replica()
    return socket, replicating.io == "Yes" and replicating.sql == "Yes"


def whole(
    observer: Observer, traffic: Traffic, since: float, replicating: bool, scenario: Scenario
) -> bool:
    """Is the lab whole again: HAProxy sees every server UP, requests succeed, replica caught up?"""
    balancer, replica = observer.latest()
    web = observer.lab.web_hosts()
    if observer.socket and not (
        balancer and balancer.at > since and all(balancer.up(h) for h in web)
    ):
        return False
    recent = [r for r in traffic.snapshot() if r.at > since]
    if len(recent) < 3 or not all(r.ok for r in recent[-3:]):
        return False
    if replicating and not (replica and replica.at > since and replica.io == replica.sql == "Yes"):
        return False
    return not (scenario.writes and replica and replica.missing not in (0, None))


class FaultRun:
    """One run of a scenario: check, break, hold, restore, recover, summarize."""

    def __init__(self, scenario: Scenario, topology, state: LabState, provider, seconds: float):
        self.scenario = scenario
        self.topology = topology
        self.provider = provider
        self.seconds = seconds
        self.marker = Marker(state)
        self.sessions: list[Session] = []
        self.origin = time.monotonic()
        self.held = 0.0
        self.in_place = 0.0  # when the fault was in place (breaking can take a moment)
        self.interrupted = False
        self.restored = False

    def session(self) -> Session:
        """Fresh connections to the hosts (a host that was restarted needs them)."""
        self.sessions.append(Session(self.topology, self.provider))
        return self.sessions[-1]

    def run(self, on_tick: Callable[[Frame], None]) -> Summary:
        active = self.marker.load()
        if active:
            raise LabError(
                f"fault {active['scenario']!r} is still active on lab {self.topology.name!r}",
                hint="undo it first: lab fault --restore",
            )
        session = self.session()
        try:
            ctx = session.context()
            self.scenario.check_provider(ctx)
            socket, replicating = preflight(session)
            plan = self.scenario.prepare(ctx)
            prefix = f"{ENTRY_PREFIX}{secrets.token_hex(4)}-" if self.scenario.writes else None
            self.marker.save({"scenario": self.scenario.name, "plan": plan, "prefix": prefix})
            self.traffic = Traffic(session.live, self.origin, prefix)
            self.observer = Observer(session.live, self.origin, socket, prefix)
            self.on_tick = on_tick
            try:
                with stopped_like_ctrl_c():
                    try:
                        self.hold(ctx, plan)
                    except KeyboardInterrupt:
                        self.interrupted = True
                    finally:
                        self.held = round(max(time.monotonic() - self.origin, 0.0), 1)
                        with uninterrupted():
                            self.tick("restoring")
                            undo(self.scenario, ctx, plan)
                    try:
                        self.recover(replicating)
                    except KeyboardInterrupt:
                        self.interrupted = True
            finally:
                self.traffic.stop()
                self.observer.stop()
            if prefix:
                forget_entries(self.sessions[-1].live, prefix)
            self.marker.clear()
            return self.summary()
        finally:
            for each in self.sessions:
                each.close()

    def tick(self, phase: str) -> None:
        balancer, replica = self.observer.latest()
        elapsed = round(time.monotonic() - self.origin, 1)
        self.on_tick(
            Frame(
                self.scenario.name,
                phase,
                elapsed,
                self.seconds,
                self.traffic.snapshot(),
                balancer,
                replica,
            )
        )

    def hold(self, ctx: Context, plan: dict) -> None:
        """Break the lab (time 0 is when breaking begins) and watch it until seconds pass."""
        stopped = ctx.host(self.scenario.stops) if self.scenario.stops else None
        if stopped:
            self.observer.skip.add(stopped)
        self.origin = self.traffic.origin = self.observer.origin = time.monotonic()
        self.traffic.start()
        self.observer.start()
        self.scenario.inflict(ctx, plan)
        self.in_place = round(time.monotonic() - self.origin, 2)
        for _ in Deadline(self.seconds, start=self.origin).ticks(TICK):
            self.tick("fault")

    def recover(self, replicating: bool) -> None:
        """After the restore: watch until the lab is whole again, or SETTLE_SECONDS pass."""
        if self.scenario.stops:
            live = self.session().live
            self.traffic.lab = self.observer.lab = live
            self.observer.skip.clear()
        since = time.monotonic() - self.origin
        for _ in Deadline(SETTLE_SECONDS).ticks(TICK / 2):
            self.tick("recovering")
            self.restored = whole(self.observer, self.traffic, since, replicating, self.scenario)
            if self.restored:
                break
        self.tick("recovering")

    def summary(self) -> Summary:
        balancer, replica = self.observer.snapshot()
        return summarize(
            self.scenario.name,
            self.held,
            self.scenario.target,
            self.traffic.snapshot(),
            balancer,
            replica,
            in_place=self.in_place,
            restored=self.restored,
            interrupted=self.interrupted,
        )


def run_fault(
    scenario: Scenario,
    topology,
    state: LabState,
    provider,
    seconds: float,
    on_tick: Callable[[Frame], None] = lambda frame: None,
) -> Summary:
    """Break the lab with scenario for seconds, restore it, and return the summary."""
    return FaultRun(scenario, topology, state, provider, seconds).run(on_tick)


def undo(scenario: Scenario, ctx: Context, plan: dict) -> None:
    """scenario.restore; a failure is one line that says how to try again."""
    try:
        scenario.restore(ctx, plan)
    except Exception as exc:
        raise LabError(
            f"could not restore {scenario.name}: {exc}",
            hint="the fault is still recorded: run `lab fault --restore` to try again",
        ) from None


def forget_entries(live: LiveLab, prefix: str) -> None:
    """Delete the guestbook entries fault runs wrote (on the primary; the deletion replicates)."""
    primary, replica = probes.roles(live)
    try:
        found = probes.find_tokens(live, primary, [prefix])
        probes.forget_tokens(live, primary, replica, found, {})
    except CheckError as exc:
        raise LabError(
            f"could not delete the entries the fault wrote: {exc}",
            hint="lab fault --restore deletes them",
        ) from None


def restore_active(topology, state: LabState, provider) -> str | None:
    """Undo the fault recorded in the lab's state (after a crash); returns its name or None."""
    marker = Marker(state)
    active = marker.load()
    if not active:
        return None
    scenario = find(active["scenario"])
    session = Session(topology, provider)
    try:
        with uninterrupted():
            undo(scenario, session.context(), active.get("plan") or {})
    finally:
        session.close()
    session = Session(topology, provider)
    try:
        forget_entries(session.live, ENTRY_PREFIX)
    finally:
        session.close()
    marker.clear()
    return scenario.name
