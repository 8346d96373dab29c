"""Watching a lab while a fault runs: steady traffic through the front door, and the lab's view
of itself (HAProxy's servers, the replica) sampled from the hosts."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from checks.base import CheckError
from lab.facts import mysql
from lab.faults.timeline import BalancerView, ReplicaView, Request
from lab.observe import probes
from lab.observe.live import LiveLab

RATE = 10  # requests per second through the load balancer
TIMEOUT = 3.0  # a request that takes longer is lost (a user would have given up)
WRITE_EVERY = 4  # with writes, every 4th request signs the guestbook
BALANCER_EVERY = 0.5  # seconds between two looks at HAProxy's servers
REPLICA_EVERY = 1.0
ENTRY_NAME = "lab-fault"  # the name on the guestbook entries a fault run writes
ENTRY_PREFIX = "lab-fault-"  # their messages start so (then the run's id and a number)


class Background:
    """A daemon thread running self._loop until stop(), which waits for it to end."""

    def __init__(self):
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        raise NotImplementedError

    def start(self):
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join()


class Traffic(Background):
    """Requests to the site through the load balancer at a steady rate, from this machine.

    Reads are GET /api/status (the application and its local database); writes, when asked
    for, POST a guestbook entry (the primary). The loop is bounded: RATE per second, each
    request cut after TIMEOUT, at most RATE * TIMEOUT in flight.
    """

    def __init__(self, lab: LiveLab, origin: float, write_prefix: str | None = None):
        self.lab = lab
        self.url = f"http://{lab.address('lb')}"
        self.origin = origin
        self.write_prefix = write_prefix
        self.requests: list[Request] = []
        self._pool = ThreadPoolExecutor(max_workers=int(RATE * TIMEOUT) + 2)
        super().__init__()

    def stop(self) -> None:
        super().stop()
        self._pool.shutdown(wait=True)

    def snapshot(self) -> list[Request]:
        with self._lock:
            return list(self.requests)

    def _loop(self) -> None:
        number, due = 0, time.monotonic()
        while not self._stop.is_set():
            write = bool(self.write_prefix) and number % WRITE_EVERY == WRITE_EVERY - 1
            self._pool.submit(self._one, number, write)
            number += 1
            due += 1 / RATE
            self._stop.wait(max(0.0, due - time.monotonic()))

    def _one(self, number: int, write: bool) -> None:
        sent = time.monotonic()
        try:
            if write:
                body = {"name": ENTRY_NAME, "message": f"{self.write_prefix}{number}"}
                reply = self.lab.http(
                    f"{self.url}/api/guestbook", "POST", timeout=TIMEOUT, json=body
                )
            else:
                reply = self.lab.http(f"{self.url}/api/status", timeout=TIMEOUT)
            status, served = reply.status_code, ",".join(probes.served_by(reply))
        except CheckError:
            status, served = 0, ""
        request = Request(
            round(sent - self.origin, 3), round(time.monotonic() - sent, 3), status, served, write
        )
        with self._lock:
            self.requests.append(request)


def count_sql(where: str, prefix: str) -> str:
    """SQL counting the rows of schema.table whose column starts with prefix."""
    schema, table, column = where.split(".", 2)
    return (
        f"SELECT COUNT(*) FROM {mysql.ident(schema)}.{mysql.ident(table)} "
        f"WHERE {mysql.ident(column)} LIKE {mysql.literal(prefix + '%')}"
    )


class Observer(Background):
    """HAProxy's view of the web servers and the replica's state, sampled in the background.

    Hosts in `skip` (stopped by the fault) are not asked. `lab` may be swapped for a fresh one
    (after a host came back, its old SSH connection is dead).
    """

    def __init__(self, lab: LiveLab, origin: float, socket: str | None, prefix: str | None):
        self.lab = lab
        self.origin = origin
        self.socket = socket
        self.prefix = prefix
        self.skip: set[str] = set()
        self.where: str | None = None  # schema.table.column holding the run's entries
        self.balancer: list[BalancerView] = []
        self.replica: list[ReplicaView] = []
        super().__init__()

    def latest(self) -> tuple[BalancerView | None, ReplicaView | None]:
        with self._lock:
            return (
                self.balancer[-1] if self.balancer else None,
                self.replica[-1] if self.replica else None,
            )

    def snapshot(self) -> tuple[list[BalancerView], list[ReplicaView]]:
        with self._lock:
            return list(self.balancer), list(self.replica)

    def _now(self) -> float:
        return round(time.monotonic() - self.origin, 2)

    def _loop(self) -> None:
        next_replica = 0.0
        while not self._stop.is_set():
            started = time.monotonic()
            view = self.look_at_balancer()
            with self._lock:
                self.balancer.append(view)
            if started >= next_replica:
                next_replica = started + REPLICA_EVERY
                replica = self.look_at_replica()
                with self._lock:
                    self.replica.append(replica)
            self._stop.wait(max(0.0, BALANCER_EVERY - (time.monotonic() - started)))

    def look_at_balancer(self) -> BalancerView:
        lab, at = self.lab, self._now()
        lb = lab.name("lb")
        if lb in self.skip:
            return BalancerView(at, note=f"{lb} is stopped")
        if not self.socket:
            return BalancerView(at, note="HAProxy has no stats socket")
        try:
            rows = probes.server_rows(lab, lb, self.socket)
        except CheckError as exc:
            return BalancerView(at, note=str(exc))
        if rows is None:
            return BalancerView(at, note="HAProxy's stats socket did not answer")
        return BalancerView(at, {host: row.get("status", "") for host, row in rows.items()})

    def look_at_replica(self) -> ReplicaView:
        lab, at = self.lab, self._now()
        primary, replica = probes.roles(lab)
        if replica in self.skip:
            return ReplicaView(at, note=f"{replica} is stopped")
        try:
            status = mysql.replica_status(
                lab.sh(replica, mysql.REPLICA_STATUS, sudo=True, check=False, timeout=3)
            )
            missing = self.missing(primary, replica) if primary not in self.skip else None
        except CheckError as exc:
            return ReplicaView(at, note=str(exc))
        if not status.configured:
            return ReplicaView(at, note=f"{replica} is not a replica")
        return ReplicaView(
            at,
            status.io_running,
            status.sql_running,
            status.seconds_behind,
            missing,
            status.last_error,
        )

    def missing(self, primary: str, replica: str) -> int | None:
        """Entries of this run on the primary that the replica does not hold yet."""
        if not self.prefix:
            return None
        if self.where is None:
            found = probes.find_tokens(self.lab, primary, [self.prefix])
            self.where = found.get(self.prefix)
            if self.where is None:
                return None
        sql = count_sql(self.where, self.prefix)
        counts = [
            probes.admin_sql(self.lab, host, sql, check=False).strip()
            for host in (primary, replica)
        ]
        if not all(c.isdigit() for c in counts):
            return None
        return int(counts[0]) - int(counts[1])
