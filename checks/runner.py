"""Run checks: dependencies first, the rest in parallel; dependents of a failure are not run."""

from __future__ import annotations

import contextlib
import signal
import time
from concurrent.futures import ThreadPoolExecutor

from checks.base import EXTRA_SECTIONS, Check, Report, Result, Status
from lab.errors import LabError
from lab.signals import interrupt, set_handler


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


def run_checks(catalogue, chosen: list[type[Check]], lab, lab_name: str, on_result=None) -> Report:
    """Run chosen checks (and what they need) against a live lab; undo what they changed."""
    exclusive = getattr(lab, "exclusive", contextlib.nullcontext)
    with exclusive():
        return _run(catalogue, chosen, lab, lab_name, on_result)


def _run(catalogue, chosen, lab, lab_name, on_result) -> Report:
    started = time.monotonic()
    pending = {cls.id: cls() for cls in with_dependencies(catalogue, chosen)}
    results: dict[str, Result] = {}
    pool = ThreadPoolExecutor(max_workers=8)
    stop_on_sigterm = set_handler(signal.SIGTERM, interrupt)
    try:
        lab.sweep()
        while pending:
            ready, blocked = [], []
            for check in pending.values():
                deps = [results.get(dep) for dep in check.needs]
                if any(d is not None and d.status is not Status.PASS for d in deps):
                    blocked.append(check)
                elif all(d is not None for d in deps):
                    ready.append(check)
            for check in blocked:
                broken = next(
                    results[d]
                    for d in check.needs
                    if d in results and results[d].status is not Status.PASS
                )
                results[check.id] = check.result(
                    Status.NOT_RUN, f"not run: {broken.id} did not pass"
                )
                del pending[check.id]
            shared = [c for c in ready if not c.exclusive]
            ready = shared or ready[:1]  # an exclusive check runs once nothing else does
            for result in pool.map(lambda c: c.run(lab), ready):
                results[result.id] = result
                del pending[result.id]
                if on_result:
                    on_result(result)
            if not ready and not blocked and pending:
                raise LabError(f"checks with unmet dependencies: {', '.join(pending)}")
    finally:
        # once stopping, a second Ctrl-C must not cut the cleanup short
        keep_sigint = set_handler(signal.SIGINT, signal.SIG_IGN)
        try:
            pool.shutdown(wait=True, cancel_futures=True)  # running checks finish their cleanup
            lab.cleanup()
        finally:
            set_handler(signal.SIGINT, keep_sigint)
            set_handler(signal.SIGTERM, stop_on_sigterm)
    # a prerequisite that did not pass is shown with its own result, even from another section
    shown = {cls.id for cls in chosen} | {
        cid for cid, r in results.items() if r.status is not Status.PASS
    }
    ordered = tuple(results[cid] for cid in catalogue if cid in results and cid in shown)
    return Report(lab_name, ordered, round(time.monotonic() - started, 2))


def run_on_lab(chosen: list[type[Check]], topology, fleet, name: str | None = None) -> Report:
    """Run chosen checks (and what they need) on the live lab fleet reaches."""
    from checks import catalogue  # the catalogue and the live lab's clients: only when grading
    from checks.live import LiveLab

    return run_checks(catalogue(), chosen, LiveLab(topology, fleet), name or topology.name)
