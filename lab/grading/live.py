"""Live mode: grade students' own running servers (cloud machines, their own labs), checks only.

A class file lists each student's servers:

    students:
      alice:
        domain: foobar.com            # optional
        hosts:
          lb-01:  {address: 10.0.0.5, ssh: 203.0.113.5, user: ubuntu, key: keys/alice}
          web-01: {address: 10.0.0.6, ssh: 203.0.113.6, user: ubuntu, key: keys/alice}
          web-02: {address: 10.0.0.7, ssh: 203.0.113.7, user: ubuntu, key: keys/alice}

`address` is the server's own (private) address, the one its configuration uses; `ssh` is
where to reach it when that differs. Then nothing is sent to `address` from this machine: every
probe (HTTP, DNS, TLS) goes through the server's SSH connection. The user needs passwordless sudo.

Host keys: `known_hosts: FILE` (for the class, or for one student) is enforced as given;
without one, each server's first key is recorded in the lab state's known_hosts (0600) and a
server that later offers another key is unreachable, with one line naming it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import yaml

from checks import CATALOGUE
from checks.report import to_dict
from checks.runner import run_on_lab
from lab.core.errors import LabError
from lab.core.state import LabState
from lab.core.topology import DOMAIN_RE, PACKAGED, Host, Topology, load
from lab.core.wait import results
from lab.grading.class_run import graded_checks
from lab.grading.model import ERROR, GRADED, UNREACHABLE, Pass, StudentResult
from lab.grading.submissions import student_name
from lab.remote.connection import Fleet, HostKeyChanged, HostSpec, describe, fan_out

HOST_FIELDS = {"address", "ssh", "port", "user", "key"}


@dataclasses.dataclass(frozen=True)
class LiveStudent:
    """One student's servers, as the class file gives them."""

    name: str
    topology: Topology
    specs: tuple[HostSpec, ...]
    digest: str

    @property
    def servers(self) -> str:
        """What identifies the servers: students sharing them are graded one after the other."""
        return ",".join(sorted(spec.address for spec in self.specs))


def load_class(path: Path) -> list[LiveStudent]:
    """Read and validate a class file; every mistake names the student and field."""
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise LabError(f"class file not found: {path}") from None
    except (OSError, yaml.YAMLError) as exc:
        raise LabError(f"{path}: cannot read the class file: {str(exc).splitlines()[0]}") from None
    students = data.get("students") if isinstance(data, dict) else None
    if not isinstance(students, dict) or not students:
        raise LabError(f"{path}: expected `students:` with each student's hosts")
    reference = load(PACKAGED)
    pinned = _known_hosts(path, data.get("known_hosts"), f"{path}: known_hosts")
    return [_student(path, str(raw), entry, reference, pinned) for raw, entry in students.items()]


def _known_hosts(path: Path, value, where: str) -> Path | None:
    """The known_hosts file a class file names (relative to it), or None."""
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise LabError(f"{where}: expected the path of a known_hosts file")
    found = (path.parent / Path(value).expanduser()).resolve()
    if not found.is_file():
        raise LabError(f"{where}: no file {found}")
    return found


def _student(path: Path, raw: str, entry, reference: Topology, pinned: Path | None) -> LiveStudent:
    where = f"{path}: students.{raw}"
    if not isinstance(entry, dict) or not isinstance(entry.get("hosts"), dict):
        raise LabError(f"{where}: expected hosts: with {', '.join(reference.names)}")
    pinned = _known_hosts(path, entry.get("known_hosts"), f"{where}.known_hosts") or pinned
    name = f"live-{student_name(raw)}"
    known_hosts = pinned or LabState(name).known_hosts
    domain = str(entry.get("domain", reference.domain)).lower()
    if not DOMAIN_RE.match(domain):
        raise LabError(f"{where}.domain: {domain!r} is not a domain name")
    hosts, specs = [], []
    for host in reference.hosts:
        spec = entry["hosts"].get(host.name)
        if not isinstance(spec, dict) or set(spec) - HOST_FIELDS or "address" not in spec:
            raise LabError(f"{where}.hosts.{host.name}: expected address, user, key (ssh, port)")
        if not spec.get("user") or not spec.get("key"):
            raise LabError(f"{where}.hosts.{host.name}: user and key are required")
        key = (path.parent / str(spec["key"])).expanduser()
        if not key.is_file():
            raise LabError(f"{where}.hosts.{host.name}.key: no file {key}")
        hosts.append(Host(host.name, str(spec["address"]), host.roles))
        ssh = str(spec.get("ssh", spec["address"]))
        port = int(spec.get("port", 22))
        specs.append(
            HostSpec(
                host.name,
                ssh,
                port,
                str(spec["user"]),
                key,
                known_hosts,
                host_keys_pinned=pinned is not None,
                record_host_keys=pinned is None,
                tunnel=ssh != str(spec["address"]),
            )
        )
    topology = dataclasses.replace(
        reference,
        name=name,
        provider="ssh",
        domain=domain,
        hosts=tuple(hosts),
        source=None,
    )
    digest = hashlib.sha256(yaml.safe_dump(entry, sort_keys=True).encode()).hexdigest()
    return LiveStudent(raw, topology, tuple(specs), digest)


def grade_live(
    students: list[LiveStudent],
    checks: dict[str, int],
    assignment: str,
    jobs: int = 8,
    on_event: Callable = lambda student, stage, result: None,
) -> list[StudentResult]:
    """Run the checks on every student's servers, jobs at a time; shared servers in turn."""
    by_servers: dict[str, list[LiveStudent]] = defaultdict(list)
    for student in students:
        by_servers[student.servers].append(student)

    def grade_group(group: list[LiveStudent]) -> list[StudentResult]:
        return [grade_one(student, checks, assignment, on_event) for student in group]

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        groups = results(pool.submit(grade_group, g) for g in by_servers.values())
        graded = [r for group in groups for r in group]
    order = {s.name: i for i, s in enumerate(students)}
    return sorted(graded, key=lambda r: order[r.student])


def grade_one(student: LiveStudent, checks: dict[str, int], assignment: str, on_event):
    """One student's checks; whatever fails is in the result, never raised."""
    result = StudentResult(student.name, "live", student.digest, assignment, "", lab="live")
    on_event(student.name, "checks", None)
    started = time.monotonic()
    try:
        chosen = [CATALOGUE[cid] for cid in checks]
        with Fleet(student.specs) as fleet:
            unreachable = unreachable_hosts(student, fleet)
            if unreachable:
                raise Unreachable("; ".join(unreachable))
            report = run_on_lab(chosen, student.topology, fleet, student.name)
        graded = graded_checks(to_dict(report)["checks"], checks)
        result.first = Pass([], graded, round(time.monotonic() - started, 1))
        result.status = GRADED
    except Unreachable as exc:  # a typo in the class file, or a server down: no grade, not 0
        result.status, result.error = UNREACHABLE, str(exc)
    except Exception as exc:  # one student's servers never stop the class
        result.status, result.error = ERROR, describe(exc)
    result.timings["checks"] = round(time.monotonic() - started, 1)
    result.graded_at = datetime.now(UTC).isoformat(timespec="seconds")
    on_event(student.name, result.status, result)
    return result


class Unreachable(Exception):
    """A server of the student's cannot be reached or logged in to (one line: which, and why)."""


def unreachable_hosts(student: LiveStudent, fleet: Fleet) -> list[str]:
    """Each of the student's servers that does not answer over SSH, with the reason, in order."""
    specs = {spec.name: spec for spec in student.specs}
    outcomes = fan_out(list(specs), lambda host: fleet.run(host, "true", timeout=15))
    found = []
    for host, outcome in outcomes.items():
        if isinstance(outcome.error, HostKeyChanged):
            found.append(str(outcome.error))  # already names the host and its address
        elif outcome.error is not None:
            spec = specs[host]
            where = f"{spec.address}:{spec.port}" if spec.port != 22 else spec.address
            found.append(f"{host} ({where}): unreachable over SSH: {describe(outcome.error)}")
    return found
