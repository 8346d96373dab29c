"""Run checks: dependencies first, the rest in parallel; dependents of a failure are not run."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from concurrent.futures import Future, ThreadPoolExecutor

from checks.base import CURRENT_CHECK, EXTRA_SECTIONS, Check, Report, Result, Status
from lab.core.errors import LabError
from lab.core.signals import stopped_like_ctrl_c, uninterrupted
from lab.core.wait import finished


def select(
    catalogue: dict[str, type[Check]], wanted: list[str], everything: bool = False
) -> list[type[Check]]:
    """Checks named by id or section, in catalogue order. Nothing named: the base design's
    checks, and with everything, the extra sections' too."""
    if not wanted:
        return [c for c in catalogue.values() if everything or c.section not in EXTRA_SECTIONS]
    sections = {cls.section for cls in catalogue.values()}
    for word in wanted:
        if word not in catalogue and word not in sections:
            raise LabError(
                f"unknown check or section {word!r}; sections: {', '.join(sorted(sections))}"
                ", or a check id from `lab check --list`"
            )
    return [cls for cls in catalogue.values() if cls.id in wanted or cls.section in wanted]


def with_dependencies(catalogue, chosen: list[type[Check]]) -> list[type[Check]]:
    """chosen plus everything they need, in catalogue order."""
    needed = {cls.id for cls in chosen}
    frontier = list(needed)
    while frontier:
        for dep in catalogue[frontier.pop()].needs:
            if dep not in needed:
                needed.add(dep)
                frontier.append(dep)
    return [cls for cls in catalogue.values() if cls.id in needed]


DEADLINE = 60.0  # seconds a run may take, plus what its checks wait on purpose (Check.waits)
GRACE = 3.0  # seconds a check stopped at the deadline gets to let go before the cleanup


def run_checks(
    catalogue,
    chosen: list[type[Check]],
    lab,
    lab_name: str,
    on_result=None,
    deadline: float | None = None,
) -> Report:
    """Run chosen checks (and what they need) against a live lab; undo what they changed.

    The run returns by its deadline: a check still running then fails with what it was
    waiting for, checks not started are not run, and every other check is graded."""
    exclusive = getattr(lab, "exclusive", contextlib.nullcontext)
    if deadline is None:
        deadline = default_deadline(with_dependencies(catalogue, chosen))
    with exclusive(), stopped_like_ctrl_c():
        return _run(catalogue, chosen, lab, lab_name, on_result, deadline)


def default_deadline(checks: list[type[Check]]) -> float:
    """DEADLINE, plus the seconds the checks wait on purpose (an alert to fire, a failover)."""
    return DEADLINE + sum(cls.waits for cls in checks)


def _run(catalogue, chosen, lab, lab_name, on_result, deadline) -> Report:
    started = time.monotonic()
    ends = started + deadline
    pending = {cls.id: cls() for cls in with_dependencies(catalogue, chosen)}
    results: dict[str, Result] = {}
    causes: dict[str, Result] = {}  # a check not run → the failed check at the root of it
    elsewhere: dict[str, tuple] = {}  # a per-host check → (the hosts it runs on, root cause)
    running: dict[Future, Check] = {}
    pool = ThreadPoolExecutor(max_workers=8)

    def record(result: Result) -> None:
        results[result.id] = result
        if on_result:
            on_result(result)

    try:
        lab.sweep()
        preparing = [c for c in pending.values() if type(c).prepare is not Check.prepare]
        for check in preparing:
            running[pool.submit(_prepare, check, lab)] = Preparing(check)
        # their first commands go out before the other checks' crowd the hosts
        finished(list(running), max((c.head_start for c in preparing), default=0.0))

        def settle_blocked() -> None:
            _settle(pending, results, causes, elsewhere, lab, record)

        while pending or running:
            settle_blocked()
            ready = [c for c in pending.values() if all(d in results for d in c.needs)]
            for check in ready:
                if "exclusive" not in vars(check):  # asked once, when it becomes ready
                    check.exclusive = _exclusive_on(check, lab)
            for check in startable(ready, list(running.values())):
                del pending[check.id]
                on = elsewhere.get(check.id)
                running[pool.submit(_attempt, check, lab, *(on or ()))] = check
            if not running:
                if pending:
                    raise LabError(f"checks with unmet dependencies: {', '.join(pending)}")
                break
            done, _ = finished(running, max(0.0, ends - time.monotonic()), first=True)
            if not done:  # the deadline: stop what runs, grade it as unfinished
                _stop(lab, running, deadline, record)
                for _ in range(len(pending)):  # a chain settles one link per pass
                    settle_blocked()
                late = f"not run: the run's deadline ({deadline:g} s) came before it could start"
                for check in pending.values():
                    record(check.result(Status.NOT_RUN, late))
                pending.clear()
                break
            for future in done:
                if not isinstance(running.pop(future), Preparing):
                    record(future.result())
    finally:
        with uninterrupted():  # once stopping, a second Ctrl-C must not cut the cleanup short
            # running checks finish their cleanup (a stopped one is not waited for)
            pool.shutdown(wait=not running, cancel_futures=True)
            lab.cleanup()
    return _report(catalogue, chosen, results, lab_name, time.monotonic() - started)


def startable(ready: list[Check], running: list) -> list[Check]:
    """The ready checks to start now, shared ones first, each one beside every check that runs
    or starts with it."""
    chosen: list[Check] = []
    for check in sorted(ready, key=lambda c: bool(c.exclusive)):
        if all(side_by_side(check, other) for other in (*running, *chosen)):
            chosen.append(check)
    return chosen


def side_by_side(one, other) -> bool:
    """Whether two checks may run at once: two shared ones, two that disturb different things,
    or a shared one that uses nothing the exclusive one disturbs (Check.touches)."""
    if one.exclusive is True or other.exclusive is True:
        return False
    if bool(one.exclusive) == bool(other.exclusive):
        return one.exclusive != other.exclusive or not one.exclusive
    named, shared = (one, other) if one.exclusive else (other, one)
    return shared.touches is not None and named.exclusive not in shared.touches


@dataclasses.dataclass(frozen=True)
class Preparing:
    """A check's prepare() under way: as exclusive as the check, with nothing to record."""

    check: Check

    @property
    def id(self) -> str:
        return self.check.id

    @property
    def exclusive(self):
        return self.check.exclusive

    @property
    def touches(self):
        return self.check.touches


def _exclusive_on(check: Check, lab) -> bool | str:
    """check.exclusive_on(lab); as exclusive as its class says when that fails."""
    CURRENT_CHECK.set(check.id)
    try:
        return check.exclusive_on(lab)
    except Exception:
        return type(check).exclusive
    finally:
        CURRENT_CHECK.set(None)


def _prepare(check: Check, lab) -> None:
    """check.prepare(lab); what goes wrong is left for observe() to meet and report."""
    CURRENT_CHECK.set(check.id)
    with contextlib.suppress(Exception):
        check.prepare(lab)


def _report(catalogue, chosen, results: dict[str, Result], lab_name: str, seconds) -> Report:
    """The chosen checks' results; a prerequisite that did not pass is shown with its own
    result, even from another section."""
    shown = {cls.id for cls in chosen} | {
        cid for cid, r in results.items() if r.status is not Status.PASS
    }
    ordered = tuple(results[cid] for cid in catalogue if cid in results and cid in shown)
    return Report(lab_name, ordered, round(seconds, 2))


def _settle(pending, results, causes, elsewhere, lab, record) -> None:
    """Checks whose prerequisites did not pass: not run, or (a per-host check whose
    prerequisites failed on some web servers only) run on the others (elsewhere)."""
    for check in list(pending.values()):
        broken = [results[d] for d in check.needs if d in results]
        broken = [r for r in broken if r.status is not Status.PASS]
        if not broken or check.id in elsewhere:
            continue
        root = causes.get(broken[0].id, broken[0])
        left = hosts_left(check, broken, lab)
        around = hosts_around(check, broken, lab)
        if left or around:
            elsewhere[check.id] = (left, root, around)
            continue
        del pending[check.id]
        causes[check.id] = root
        record(check.result(Status.NOT_RUN, not_run_evidence(root)))


def _attempt(check: Check, lab, hosts=(), root: Result | None = None, around=()) -> Result:
    """check.run(lab), with what it does on the lab named after it (LiveLab.busy); given
    hosts, on those web servers only (a prerequisite failed on the others: root), and on
    those of around (where it was not run) that the check can observe directly."""
    CURRENT_CHECK.set(check.id)
    if not hosts and not around:
        return check.run(lab)
    web = lab.web_hosts()
    direct = [h for h in around if can_see(check, lab, h)]
    hosts = [h for h in web if h in hosts or h in direct]
    if not hosts:
        return check.result(Status.NOT_RUN, not_run_evidence(root))
    if hosts == web:
        return observed_directly(check.run(lab), direct, root)
    result = check.run(WebHosts(lab, hosts))
    if check.through_web:
        return through_some_hosts(result, lab.web_hosts(), hosts, root)
    return on_some_hosts(result, lab.web_hosts(), hosts, root)


class WebHosts:
    """The lab, with only some of its web servers as the web servers."""

    def __init__(self, lab, hosts):
        self._lab, self._hosts = lab, list(hosts)

    def web_hosts(self) -> list[str]:
        return list(self._hosts)

    def web_addresses(self) -> dict[str, str]:
        return {h: self._lab.address(h) for h in self._hosts}

    def memo(self, key, make):
        """The lab's memo, apart from what was seen with all the web servers."""
        return self._lab.memo(("on", tuple(self._hosts), key), make)

    def __getattr__(self, name):
        return getattr(self._lab, name)


def hosts_left(check, broken: list[Result], lab) -> list[str]:
    """The web servers a per-host check can still run on, its prerequisites having failed
    on the others only ([]: on none, or not known per host)."""
    partial = check.per_host or check.through_web
    if not partial or not all(r.failed_hosts or r.not_run_hosts for r in broken):
        return []
    web = getattr(lab, "web_hosts", list)()
    out = {h for r in broken for h in (*r.failed_hosts, *r.not_run_hosts)}
    return [h for h in web if h not in out]


def hosts_around(check, broken: list[Result], lab) -> list[str]:
    """The web servers where a direct check's prerequisites were not run (none failed there):
    it may still observe them directly (Check.direct)."""
    if not check.direct or not all(r.failed_hosts or r.not_run_hosts for r in broken):
        return []
    failed = {h for r in broken for h in r.failed_hosts}
    skipped = {h for r in broken for h in r.not_run_hosts}
    return [h for h in getattr(lab, "web_hosts", list)() if h in skipped - failed]


def can_see(check: Check, lab, host: str) -> bool:
    """check.directly(lab, host); False when finding out failed (host unreachable, say)."""
    try:
        return check.directly(lab, host)
    except Exception:  # a check's question must not take the run down: not seen directly
        return False


def observed_directly(result: Result, hosts: list[str], root: Result) -> Result:
    """A result that saw hosts directly, their prerequisites not run there: graded as it is,
    its evidence saying why."""
    note = f" ({', '.join(hosts)} seen directly: {root.id} was not run there)"
    return dataclasses.replace(result, evidence=result.evidence + note)


def on_some_hosts(result: Result, web: list[str], hosts, root: Result) -> Result:
    """A per-host check's result run on some web servers only: failed (it could not be shown
    on every one), with the hosts it passed on and those it could not run on."""
    failed = result.failed_hosts if result.failed_hosts else hosts
    failed = () if result.status is Status.PASS else tuple(failed)
    skipped = tuple(h for h in web if h not in hosts)
    evidence = (
        f"on {', '.join(hosts)}: {result.evidence}; not run on {', '.join(skipped)}: "
        + not_run_evidence(root).removeprefix("not run: ")
    )
    return dataclasses.replace(
        result,
        status=Status.FAIL,
        evidence=evidence,
        failed_hosts=failed,
        passed_hosts=tuple(h for h in hosts if h not in failed),
        not_run_hosts=skipped,
        hint=result.hint or root.hint,
    )


def through_some_hosts(result: Result, web: list[str], hosts, root: Result) -> Result:
    """A check observed through some web servers only (a prerequisite failed on the others):
    graded as it is, its evidence saying through which."""
    skipped = ", ".join(h for h in web if h not in hosts)
    why = not_run_evidence(root).removeprefix("not run: ")
    evidence = f"through {', '.join(hosts)}: {result.evidence}; not through {skipped}: {why}"
    return dataclasses.replace(result, evidence=evidence)


def _stop(lab, running: dict[Future, Check], deadline: float, record) -> None:
    """At the deadline: fail each running check with what it was still waiting for, tell the
    lab to refuse their further commands and give them GRACE s to let go (their undos stay
    registered for the cleanup)."""
    busy = getattr(lab, "busy", lambda check_id: [])
    for check in running.values():
        if isinstance(check, Preparing):
            continue
        doing = busy(check.id)
        waiting = f": still waiting for {'; '.join(doing)}" if doing else ""
        evidence = f"did not finish within {deadline:g} s (the run's deadline){waiting}"
        record(check.result(Status.FAIL, evidence, deadline))
    stop = getattr(lab, "stop", None)
    if stop:
        stop()
    finished(running, GRACE)
    for future in [f for f in running if f.done()]:
        running.pop(future)


def not_run_evidence(failed: Result) -> str:
    """Why a check was not run, with the evidence (one line) of the failed prerequisite at the
    root of it, so that the student sees what to fix even where that one is not graded."""
    line = (failed.evidence.strip().splitlines() or [""])[0]
    return f"not run: {failed.id} did not pass" + (f": {line}" if line else "")


def run_on_lab(
    chosen: list[type[Check]],
    topology,
    fleet,
    name: str | None = None,
    deadline: float | None = None,
) -> Report:
    """Run chosen checks (and what they need) on the live lab fleet reaches, within deadline s."""
    from checks import catalogue  # the catalogue and the live lab's clients: only when grading
    from lab.observe.live import LiveLab

    lab = LiveLab(topology, fleet)
    return run_checks(catalogue(), chosen, lab, name or topology.name, deadline=deadline)
