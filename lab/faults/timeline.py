"""What a fault run saw, sample by sample, and the summary in numbers made from it (pure)."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Request:
    """One request through the front door; times in seconds since the fault began."""

    at: float  # when it was sent (negative: before the fault)
    took: float
    status: int  # HTTP status, 0 when nothing answered in time
    served_by: str = ""
    write: bool = False

    @property
    def ok(self) -> bool:
        return self.status == (201 if self.write else 200)


@dataclass(frozen=True)
class BalancerView:
    """HAProxy's status of each web server at one moment ({} when it could not be asked)."""

    at: float
    servers: dict[str, str] = field(default_factory=dict)  # host → "UP", "DOWN", "UP 1/2"…
    note: str = ""  # why there is no view (lb stopped, no stats socket, an error)

    def up(self, host: str) -> bool | None:
        """True/False for a server HAProxy reports; None when it does not."""
        status = self.servers.get(host)
        return None if status is None else status.startswith("UP")


@dataclass(frozen=True)
class ReplicaView:
    """The replica's state at one moment, and how many of this run's entries it lacks."""

    at: float
    io: str = ""
    sql: str = ""
    seconds_behind: int | None = None
    missing: int | None = None  # entries of this run on the primary, not yet on the replica
    note: str = ""


@dataclass(frozen=True)
class Counts:
    requests: int
    succeeded: int
    failed: int

    @classmethod
    def of(cls, requests: list[Request]) -> Counts:
        ok = sum(r.ok for r in requests)
        return cls(len(requests), ok, len(requests) - ok)

    def as_dict(self) -> dict:
        return {"requests": self.requests, "succeeded": self.succeeded, "failed": self.failed}


@dataclass(frozen=True)
class Summary:
    """The outcome of one fault run in numbers (the `--json` object is as_dict())."""

    scenario: str
    seconds: float  # how long the fault was held
    in_place: float  # when it was in place (breaking began at 0)
    target: str | None  # the server the load balancer should notice, if any
    during: Counts
    reads: Counts
    writes: Counts
    served: dict[str, int]  # successful requests per answering server, during the fault
    latency_ms: dict[str, float]  # median per answering server, during the fault
    seconds_to_detect: float | None
    seconds_to_recover: float | None
    per_second: list[dict]
    replica_behind_max: int | None
    seconds_to_catch_up: float | None
    restored: bool
    interrupted: bool = False
    early: Counts = Counts(0, 0, 0)  # sent while the fault was being put in place
    late: Counts = Counts(0, 0, 0)  # sent during the fault, answered only after the restore

    def as_dict(self) -> dict:
        return {
            "scenario": self.scenario,
            "seconds": self.seconds,
            "in_place": self.in_place,
            "target": self.target,
            **self.during.as_dict(),
            "reads": self.reads.as_dict(),
            "writes": self.writes.as_dict(),
            "served": self.served,
            "latency_ms": self.latency_ms,
            "seconds_to_detect": self.seconds_to_detect,
            "seconds_to_recover": self.seconds_to_recover,
            "replica_behind_max": self.replica_behind_max,
            "seconds_to_catch_up": self.seconds_to_catch_up,
            "restored": self.restored,
            "interrupted": self.interrupted,
            "outside_the_fault": {
                "sent_before_it_held": self.early.as_dict(),
                "answered_after_the_restore": self.late.as_dict(),
            },
            "per_second": self.per_second,
        }


def detected_at(views: list[BalancerView], target: str | None) -> float | None:
    """When HAProxy first reported target not UP after the fault began (None: never, no target)."""
    if target is None:
        return None
    for view in sorted(views, key=lambda v: v.at):
        if view.at >= 0 and view.up(target) is False:
            return round(view.at, 1)
    return None


def recovered_at(requests: list[Request]) -> float | None:
    """When requests succeeded again for good: the first success sent after the last failure,
    of a kind that failed (a read answered while only writes fail says nothing of writes).

    0.0 when nothing failed after the fault began; None when the last request failed.
    """
    ordered = sorted((r for r in requests if r.at >= 0), key=lambda r: r.at)
    failures = [r for r in ordered if not r.ok]
    if not failures:
        return 0.0
    last_failure, kinds = failures[-1].at, {r.write for r in failures}
    later = [r for r in ordered if r.ok and r.at > last_failure and r.write in kinds]
    return round(later[0].at, 1) if later else None


def caught_up_after(views: list[ReplicaView], restore_at: float) -> float | None:
    """Seconds from the restore until the replica held every entry of the run again."""
    for view in sorted(views, key=lambda v: v.at):
        if view.at >= restore_at and view.missing == 0:
            return round(max(view.at - restore_at, 0.0), 1)
    return None


def per_second(requests: list[Request]) -> list[dict]:
    """Requests sent in each whole second since the fault began: sent and succeeded."""
    buckets: dict[int, list[Request]] = {}
    for request in requests:
        if request.at >= 0:
            buckets.setdefault(math.floor(request.at), []).append(request)
    return [
        {"second": second, "requests": len(rs), "succeeded": sum(r.ok for r in rs)}
        for second, rs in sorted(buckets.items())
    ]


def summarize(
    scenario: str,
    seconds: float,
    target: str | None,
    requests: list[Request],
    balancer: list[BalancerView],
    replica: list[ReplicaView],
    in_place: float = 0.0,
    restored: bool = True,
    interrupted: bool = False,
) -> Summary:
    """The summary of a run whose fault began at 0, was in place at in_place and was restored
    at `seconds`. The counts are of what happened within the fault: requests sent once it held
    and either answered before the restore or never answered (lost). Requests sent while it was
    being put in place, and those answered only after the restore (a SYN retried until the
    balancer came back), are counted apart."""
    sent = [r for r in requests if 0 <= r.at < seconds]
    early = [r for r in sent if r.at < in_place]
    late = [r for r in sent if r.at >= in_place and r.status and r.at + r.took > seconds]
    during = [r for r in sent if r not in early and r not in late]
    served: dict[str, list[Request]] = {}
    for request in during:
        if request.ok and request.served_by:
            served.setdefault(request.served_by, []).append(request)
    missing = [v.missing for v in replica if v.missing is not None and v.at >= 0]
    behind_max = max(missing) if missing else None
    return Summary(
        scenario=scenario,
        seconds=seconds,
        in_place=in_place,
        target=target,
        during=Counts.of(during),
        reads=Counts.of([r for r in during if not r.write]),
        writes=Counts.of([r for r in during if r.write]),
        served={host: len(rs) for host, rs in sorted(served.items())},
        latency_ms={
            host: round(statistics.median(r.took for r in rs) * 1000, 1)
            for host, rs in sorted(served.items())
        },
        seconds_to_detect=detected_at(balancer, target),
        seconds_to_recover=recovered_at(requests),
        per_second=per_second(requests),
        replica_behind_max=behind_max,
        seconds_to_catch_up=caught_up_after(replica, seconds) if behind_max else None,
        restored=restored,
        interrupted=interrupted,
        early=Counts.of(early),
        late=Counts.of(late),
    )
