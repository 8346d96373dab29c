"""Grading a class: each submission in a fresh lab of its own, side by side, resumable."""

from __future__ import annotations

import dataclasses
import json
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from checks import CATALOGUE
from checks.base import Status, share
from checks.report import to_dict
from checks.runner import run_on_lab
from lab.core.signals import stopped_like_ctrl_c, uninterrupted
from lab.core.wait import results
from lab.grading import profile
from lab.grading import submissions as subs
from lab.grading.assignment import Assignment
from lab.grading.gradebook import save_scripts
from lab.grading.leftovers import leftover_flags, observe
from lab.grading.model import ERROR, GRADED, INVALID, Pass, ScriptRun, StudentResult, file_stem
from lab.grading.sandbox import QuietProgress, SandboxLab, claim_slot
from lab.grading.scripts import pack, run_file, upload
from lab.grading.substitute import substitute
from lab.remote.connection import BOOT_FINISHED, describe, fan_out, on_every_host
from provision.snapshots import ensure_reference_state

Event = Callable[[str, str, StudentResult | None], None]  # student, stage, result when done


@dataclass
class ClassRun:
    """One `lab grade` over a class: where results go and what to (re)grade."""

    assignment: Assignment
    out: Path
    jobs: int = 1
    regrade: set[str] = field(default_factory=set)  # student names, or {"all"}
    on_event: Event = lambda student, stage, result: None
    stop: threading.Event = field(default_factory=threading.Event)
    active: dict[str, SandboxLab] = field(default_factory=dict)

    @property
    def results_dir(self) -> Path:
        return self.out / "results"

    def kept(self, student: str, digest: str) -> StudentResult | None:
        """The result of an earlier run on the same content and assignment, unless re-asked."""
        if {"all", student} & self.regrade:
            return None
        path = self.results_dir / f"{file_stem(student)}.json"
        result = self._read(path, digest)
        if result is not None:
            return result
        return self._kept_under_cleaned_name(student, digest, path)

    def _read(self, path: Path, digest: str) -> StudentResult | None:
        """The result kept at path, if it is of this content and assignment and final."""
        if not path.is_file():
            return None
        try:
            result = StudentResult.from_dict(json.loads(path.read_text()))
        except (OSError, ValueError, TypeError, KeyError):
            return None  # unreadable: grade again
        if (
            result.content_hash == digest
            and result.assignment_hash == self.assignment.digest
            and result.status in (GRADED, INVALID)
        ):
            return result
        return None

    def _kept_under_cleaned_name(self, student: str, digest: str, path: Path):
        """A result kept before names were kept as given (under the cleaned-up name, e.g.
        results/bob_smith.json for "bob smith"): taken over, renamed, and not graded again."""
        legacy = self.results_dir / f"{subs.student_name(student)}.json"
        if legacy == path:
            return None
        result = self._read(legacy, digest)
        if result is None or result.student != subs.student_name(student):
            return None
        result.student = student
        result.save(self.results_dir)
        legacy.unlink(missing_ok=True)
        scripts = self.out / "scripts" / legacy.name  # the files kept for the comparison
        try:
            kept = json.loads(scripts.read_text())
        except (OSError, ValueError):
            return result
        if isinstance(kept, dict) and kept.get("student") == subs.student_name(student):
            save_scripts(self.out, student, kept.get("files") or {})
            scripts.unlink(missing_ok=True)
        return result

    def grade_all(self, submissions: list[subs.Submission]) -> list[StudentResult]:
        """Grade every submission (jobs at a time); Ctrl-C stops the labs and removes them."""
        self.out.mkdir(parents=True, exist_ok=True)
        with stopped_like_ctrl_c():
            return self._grade_all(submissions)

    def _grade_all(self, submissions: list[subs.Submission]) -> list[StudentResult]:
        pool = ThreadPoolExecutor(max_workers=max(1, self.jobs))
        futures = [pool.submit(self.grade_one, s) for s in submissions]
        try:
            return results(futures)
        except KeyboardInterrupt:
            self.stop.set()
            with uninterrupted():  # a second Ctrl-C must not cut the removal of the labs short
                for future in futures:
                    future.cancel()
                for sandbox in list(self.active.values()):
                    sandbox.kill()  # scripts and checks end now; each worker removes its lab
                pool.shutdown(wait=True, cancel_futures=True)
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def grade_one(self, submission: subs.Submission) -> StudentResult:
        student = submission.student
        result = StudentResult(
            student, submission.origin, "", self.assignment.name, self.assignment.digest
        )
        work = self.out / "submissions" / submission.stem
        result.content_hash = subs.source_hash(submission)  # folders and archives: before unpacking
        kept = self.kept(student, result.content_hash) if result.content_hash else None
        if kept:
            self.on_event(student, "kept", kept)
            return kept
        try:
            self.on_event(student, "unpacking", None)
            root = subs.unpack(submission, work)
        except subs.Unusable as exc:
            return self._finish(result, INVALID, str(exc))
        if not result.content_hash:  # a repository: what its ref held
            result.content_hash = subs.content_hash(root)
            kept = self.kept(student, result.content_hash)
            if kept:
                self.on_event(student, "kept", kept)
                return kept
        found = subs.find_files(root, self.assignment.files, self.assignment.folders)
        result.files = {name: str(path.relative_to(root)) for name, path in found.items()}
        texts = {name: path.read_text(errors="replace") for name, path in found.items()}
        save_scripts(self.out, student, texts)
        if not found:
            wanted = ", ".join(self.assignment.files)
            return self._finish(result, INVALID, f"none of the assignment's files ({wanted})")
        if self.stop.is_set():
            raise KeyboardInterrupt
        for attempt in (1, 2):  # the grader's own failure gets one more fresh lab
            try:
                self._grade_in_lab(result, root, found)
                return self._finish(result, GRADED)
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # kept as error when it happens again; retried next run
                if attempt == 2 or self.stop.is_set():
                    return self._finish(result, ERROR, describe(exc))
                result.first = result.second = None
                result.substitutions, result.timings = [], {}
        raise AssertionError("unreachable")

    def _finish(self, result: StudentResult, status: str, error: str = "") -> StudentResult:
        result.status, result.error = status, error
        result.graded_at = datetime.now(UTC).isoformat(timespec="seconds")
        if not self.stop.is_set():
            result.save(self.results_dir)
        self.on_event(result.student, status, result)
        return result

    def _grade_in_lab(self, result: StudentResult, root: Path, found: dict[str, Path]) -> None:
        slot = claim_slot()
        sandbox = SandboxLab(slot, self.assignment.limits)
        result.lab = slot.name
        self.active[result.student] = sandbox
        timer = Timer(result.timings)
        try:
            with timer("lab"):
                self.on_event(result.student, "lab up", None)
                sandbox.up()
            if self.assignment.given or self.assignment.profile != "lab":
                with timer("given" if self.assignment.given else "profile"):
                    self.on_event(result.student, self._given_text(), None)
                    self._build_given(sandbox)
            staged = self._stage(result, root, found, sandbox)
            packed, seen = pack(staged), set()
            for number, name in ((1, "first"), (2, "second")):
                self._check_stop()
                with timer(f"{name} run"):
                    self.on_event(result.student, f"{name} run: scripts", None)
                    scripts = self._run_scripts(sandbox, packed, number, set(found))
                    result.flags += locked_out(sandbox, name)
                    result.flags += left_running(sandbox, name, seen)
                self._check_stop()
                with timer(f"{name} checks"):
                    self.on_event(result.student, f"{name} run: checks", None)
                    started = time.monotonic()
                    checks = self._run_checks(sandbox)
                setattr(result, name, Pass(scripts, checks, round(time.monotonic() - started, 1)))
            result.rerun = rerun_verdict(result.first, result.second)
            result.flags += refused_flags(sandbox.provider.network.refused())
        finally:
            self.active.pop(result.student, None)
            with timer("cleanup"):
                self.on_event(result.student, "removing the lab", None)
                try:
                    sandbox.destroy()
                finally:
                    slot.release()
            shutil.rmtree(root.parent / ".staged", ignore_errors=True)

    def _check_stop(self) -> None:
        if self.stop.is_set():
            raise KeyboardInterrupt

    def _given_text(self) -> str:
        """What the hosts are given before the student's files, for the progress line."""
        given = ["given: " + " ".join(self.assignment.given)] if self.assignment.given else []
        if self.assignment.profile != "lab":
            given.append(f"profile: {self.assignment.profile}")
        return ", ".join(given)

    def _build_given(self, sandbox: SandboxLab) -> None:
        """The reference components the assignment gives, then its host profile, from the
        cache of reference states: built once for the class, restored for every student."""
        ensure_reference_state(
            sandbox.topology,
            sandbox.state,
            sandbox.provider,
            list(self.assignment.given),
            QuietProgress(),
            share=True,  # one build for the class, whichever slot makes it first
            profile=profile.host_profile(self.assignment.profile),
            connect=sandbox.fleet,  # cut by Ctrl-C like the students' runs
        )
        self._check_stop()
        on_every_host(sandbox.specs(), BOOT_FINISHED)  # restored: a host done booting, as built

    def _stage(self, result, root: Path, found: dict[str, Path], sandbox: SandboxLab) -> Path:
        """A copy of the submission with the assignment's substitutions made in its files."""
        staged = root.parent / ".staged" / root.name
        shutil.rmtree(staged.parent, ignore_errors=True)
        shutil.copytree(root, staged, symlinks=False, ignore_dangling_symlinks=True)
        addresses = sandbox.addresses()
        for step in self.assignment.steps:
            if not step.substitute or step.file not in found:
                continue
            target = staged / found[step.file].relative_to(root)
            text = target.read_text(errors="surrogateescape")
            targets = [(host, addresses[host]) for host in step.substitute]
            new, changes = substitute(text, targets, set(addresses.values()))
            target.write_text(new, errors="surrogateescape")
            result.substitutions += [{"file": step.file, **change} for change in changes]
        return staged

    def _run_scripts(self, sandbox: SandboxLab, packed: str, number: int, found: set) -> list:
        """Each step in the assignment's order; a step's hosts side by side (missing noted)."""
        runs = []
        with sandbox.fleet() as fleet:
            hosts = list(dict.fromkeys(h for step in self.assignment.steps for h in step.hosts))
            uploads = fan_out(hosts, lambda host: upload(fleet, host, packed))
            failed = {host: outcome.value or outcome.error for host, outcome in uploads.items()}
            env = environment(sandbox)
            for index, step in enumerate(self.assignment.steps):
                self._check_stop()

                def one(host, step=step, index=index):
                    if step.file not in found:
                        return not_run(step.file, host, "not in the submission")
                    if failed.get(host):
                        return not_run(step.file, host, str(failed[host]))
                    unit = f"webstack-grade-{number}-{index}"
                    limits, host_env = self.assignment.limits, {**env, "LAB_HOST": host}
                    run = run_file(fleet, host, step.file, unit, limits, host_env)
                    return disk_verdict(run, sandbox.disk_full(host), limits.disk_mib)

                outcomes = fan_out(step.hosts, one).values()
                runs += [o.value or not_run(step.file, o.host, describe(o.error)) for o in outcomes]
            broken = profile.failed_services(fleet, hosts)
        return profile.with_failed_services(runs, broken)

    def _run_checks(self, sandbox: SandboxLab) -> list[dict]:
        chosen = [CATALOGUE[cid] for cid in self.assignment.checks]
        with sandbox.fleet() as fleet:
            report = run_on_lab(chosen, sandbox.topology, fleet)
        return graded_checks(to_dict(report)["checks"], self.assignment.checks)


class Timer:
    """Adds each timed stage's seconds to a dict."""

    def __init__(self, timings: dict[str, float]):
        self.timings = timings

    @contextmanager
    def __call__(self, stage: str):
        started = time.monotonic()
        try:
            yield
        finally:
            self.timings[stage] = round(time.monotonic() - started, 1)


def environment(sandbox: SandboxLab) -> dict[str, str]:
    """What a student's file finds in its environment: the lab's addresses and secrets."""
    env = {
        "LAB_DOMAIN": sandbox.topology.domain,
        "DEBIAN_FRONTEND": "noninteractive",
        "HOME": "/root",
    }
    for host, address in sandbox.addresses().items():
        env[f"LAB_{host.upper().replace('-', '_')}"] = address
    for name, value in sandbox.secrets().items():
        env[f"LAB_{name.upper()}"] = value
    return env


def locked_out(sandbox: SandboxLab, run: str) -> list[str]:
    """Flags for hosts the grader can no longer log in to after the files ran (a removed key,
    a changed sshd): a new connection each, as the checks will make."""
    with sandbox.fleet() as fleet:
        outcomes = fan_out(fleet.names, lambda host: fleet.run(host, "true", timeout=20))
    return [
        f"after the {run} run's files, the grader could not log in to {host}: "
        + (describe(o.error) if o.error else f"exit {o.value.exited}")
        for host, o in outcomes.items()
        if o.error or not o.value.ok
    ]


def left_running(sandbox: SandboxLab, run: str, seen: set[tuple[str, int]]) -> list[str]:
    """Flags for processes the run's files left running outside services (each once)."""
    with sandbox.fleet() as fleet:
        return leftover_flags(observe(fleet, fleet.names), run, seen)


def refused_flags(refused: dict[str, int]) -> list[str]:
    """What the lab's firewall refused from the hosts, in words (nothing when nothing was)."""
    flags = []
    if refused.get("inside"):
        flags.append(
            f"the lab's firewall refused {refused['inside']} packets from the hosts to the "
            "grading machine or another lab"
        )
    if refused.get("outside"):
        flags.append(
            f"the lab's firewall refused {refused['outside']} packets from the hosts to the "
            "outside world (only the package mirror is reachable)"
        )
    return flags


NO_SPACE = "No space left on device"  # ENOSPC, as every program of the host prints it


def disk_verdict(run: ScriptRun, full: bool, disk_mib: int) -> ScriptRun:
    """The run, marked and its log told when the host's disk is full after it or the script
    ran out of space while it ran (and removed what it wrote)."""
    if not full and NO_SPACE not in run.output:
        return run
    note = f"[grader] disk limit ({disk_mib} MiB) reached on {run.host}"
    output = run.output.rstrip("\n") + "\n" + note
    return dataclasses.replace(run, output=output, disk_limit=True)


def not_run(file: str, host: str, why: str) -> ScriptRun:
    return ScriptRun(file, host, None, 0.0, f"[grader] not run: {why}", 0)


def graded_checks(checks: list[dict], points: dict[str, int]) -> list[dict]:
    """The report's checks that count, with the assignment's points."""
    by_id = {check["id"]: check for check in checks}
    graded = []
    for cid, worth in points.items():
        check = dict(by_id.get(cid) or {"id": cid, "status": Status.NOT_RUN, "evidence": "not run"})
        check["points"] = worth
        hosts = [check.get(f"{k}_hosts") or () for k in ("passed", "failed", "not_run")]
        check["awarded"] = worth if check.get("status") == Status.PASS else share(worth, *hosts)
        graded.append(check)
    return graded


def rerun_verdict(first: Pass | None, second: Pass | None) -> str:
    """The re-run column: idempotent, or what the second run broke."""
    if first is None or second is None:
        return ""
    problems = []
    first_ok = {(r.file, r.host) for r in first.scripts if r.ok}
    failed_again = [
        f"{r.file} on {r.host}" for r in second.scripts if (r.file, r.host) in first_ok and not r.ok
    ]
    if failed_again:
        problems.append("fails on re-run: " + ", ".join(failed_again))
    before = {c["id"] for c in first.checks if c["status"] == Status.PASS}
    broken = [c["id"] for c in second.checks if c["id"] in before and c["status"] != Status.PASS]
    if broken:
        problems.append("breaks on re-run: " + ", ".join(broken))
    return "; ".join(problems) or "idempotent"
