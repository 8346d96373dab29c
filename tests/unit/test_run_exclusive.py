"""Exclusive checks: one that runs alone overlaps nothing; two that disturb different things
(the balancer, the replica) run side by side, never beside a shared check or one of their kind."""

from __future__ import annotations

import time

from checks.base import passed
from checks.runner import run_checks, startable


class Lab:
    """A lab with nothing to sweep or undo."""

    def sweep(self):
        pass

    def cleanup(self):
        pass


def timed_checks(define_check, spans: dict, **exclusives):
    """One check per name, sleeping 0.2 s and recording when it ran; all after t.first."""

    def make(name, exclusive):
        def observe(self, lab):
            start = time.monotonic()
            time.sleep(0.2)
            spans[name] = (start, time.monotonic())
            return None

        needs = () if name == "t.first" else ("t.first",)
        return define_check(
            name,
            "servers",
            observe,
            lambda self, o: passed("ran"),
            needs=needs,
            exclusive=exclusive,
        )

    return [make(name.replace("_", "."), value) for name, value in exclusives.items()]


def overlap(one: tuple, other: tuple) -> bool:
    return one[0] < other[1] and other[0] < one[1]


def test_exclusive_checks_of_different_kinds_overlap_each_other_only(define_check, own_registry):
    spans: dict = {}
    checks = timed_checks(
        define_check,
        spans,
        t_first=False,
        t_shared=False,
        t_rr="balancer",
        t_pause="replica",
        t_roles="replica",
        t_alone=True,
    )
    report = run_checks(own_registry, checks, Lab(), "t")
    assert all(r.status.value == "pass" for r in report.results), report.results
    assert overlap(spans["t.rr"], spans["t.pause"]) or overlap(spans["t.rr"], spans["t.roles"])
    assert not overlap(spans["t.pause"], spans["t.roles"])  # the same kind: one after the other
    for name in ("t.rr", "t.pause", "t.roles", "t.alone"):
        assert not overlap(spans[name], spans["t.shared"]), name
    for name in ("t.rr", "t.pause", "t.roles"):
        assert not overlap(spans[name], spans["t.alone"]), name


def test_startable_keeps_shared_checks_first_and_lone_checks_alone(define_check, own_registry):
    def check(name, exclusive):
        return define_check(name, "servers", None, None, exclusive=exclusive)()

    shared, rr, pause, alone = (
        check("s.shared", False),
        check("s.rr", "balancer"),
        check("s.pause", "replica"),
        check("s.alone", True),
    )
    assert startable([rr, shared, alone], []) == [shared]
    assert startable([rr, pause, alone], []) == [rr, pause]
    assert startable([alone, rr, pause], []) == [alone]
    assert startable([pause, shared], [rr]) == [pause]  # no shared check beside an exclusive one
    assert startable([rr, pause], [shared]) == []
    assert startable([pause], [alone]) == []
