"""Exclusive checks: one that runs alone overlaps nothing; two that disturb different things
(the balancer, the replica) run side by side, never beside one of their kind or a shared check
that touches what they disturb; a check's prepare() runs as exclusive as the check."""

from __future__ import annotations

import time

from checks.base import CheckError, failed, passed
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


def test_a_shared_check_runs_beside_the_exclusive_ones_whose_thing_it_does_not_touch(
    define_check, own_registry
):
    def check(name, exclusive=False, touches=None):
        return define_check(name, "servers", None, None, exclusive=exclusive, touches=touches)()

    rr, pause, alone = (
        check("s.rr", "balancer"),
        check("s.pause", "replica"),
        check("s.alone", True),
    )
    untouched, through_lb = check("s.files", touches=()), check("s.site", touches=("balancer",))
    anything = check("s.any")
    assert startable([untouched, through_lb, anything], [pause]) == [untouched, through_lb]
    assert startable([untouched, through_lb, anything], [rr]) == [untouched]
    assert startable([rr, pause], [through_lb]) == [pause]
    assert startable([untouched], [alone]) == []
    assert startable([alone], [untouched]) == []


def test_prepare_starts_after_the_sweep_and_keeps_off_what_it_disturbs(define_check, own_registry):
    """A check's prepare() runs before the check it needs is done, beside checks that do not
    touch what it disturbs, never beside one that does; observe() finds its work done."""
    spans: dict = {}

    def nap(name):
        start = time.monotonic()
        time.sleep(0.2)
        spans[name] = (start, time.monotonic())

    def prepare(self, lab):
        nap("prepare")
        lab.prepared = True

    def observing(name):
        def observe(self, lab):
            nap(name)
            return getattr(lab, "prepared", False)

        return observe

    first = define_check(
        "p.first", "servers", observing("first"), lambda s, o: passed("-"), touches=()
    )
    apart = define_check(
        "p.apart", "servers", observing("apart"), lambda s, o: passed("-"), touches=()
    )
    reads = define_check(
        "p.reads", "servers", observing("reads"), lambda s, o: passed("-"), touches=("replica",)
    )
    paused = define_check(
        "p.paused",
        "servers",
        observing("paused"),
        lambda s, o: passed("prepared") if o else failed("not prepared"),
        needs=("p.first",),
        exclusive="replica",
        prepare=prepare,
        head_start=0.1,
    )
    report = run_checks(own_registry, [first, apart, reads, paused], Lab(), "t")
    assert all(r.status.value == "pass" for r in report.results), report.results
    assert overlap(spans["prepare"], spans["first"]) and overlap(spans["prepare"], spans["apart"])
    assert not overlap(spans["prepare"], spans["reads"])
    assert spans["first"][0] - spans["prepare"][0] >= 0.09  # its head start
    assert spans["paused"][0] >= spans["prepare"][1]


def test_a_prepare_that_fails_leaves_the_check_to_say_so(define_check, own_registry):
    def prepare(self, lab):
        raise RuntimeError("no replica")

    def observe(self, lab):
        raise CheckError("the replica is not there")

    check = define_check(
        "p.broken",
        "servers",
        observe,
        lambda s, o: passed("-"),
        exclusive="replica",
        prepare=prepare,
    )
    (result,) = run_checks(own_registry, [check], Lab(), "t").results
    assert result.status.value == "fail" and result.evidence == "the replica is not there"


def test_a_check_that_learns_it_only_reads_runs_beside_the_others(define_check, own_registry):
    """exclusive_on(lab) is asked once its prerequisites are done: a check that says False
    there (HAProxy answers on a stats socket) runs beside shared checks; one whose answer
    fails stays as exclusive as its class."""

    def timed(name, needs=(), **extra):
        def observe(self, lab):
            start = time.monotonic()
            time.sleep(0.2)
            spans[name] = (start, time.monotonic())

        return define_check(
            name, "servers", observe, lambda s, o: passed("-"), needs=needs, **extra
        )

    def broken(self, lab):
        raise CheckError("no answer")

    for reads_only, expected in ((True, True), (False, False)):
        spans: dict = {}
        lab = Lab()
        lab.socket = reads_only
        first = timed("x.first", touches=())
        checks = [
            first,
            timed("x.shared", needs=("x.first",)),
            timed(
                "x.health",
                needs=("x.first",),
                exclusive=True,
                touches=(),
                exclusive_on=lambda self, lab: not lab.socket,
            ),
            timed("x.alone", needs=("x.first",), exclusive=True, exclusive_on=broken),
        ]
        report = run_checks(own_registry, checks, lab, "t")
        assert all(r.status.value == "pass" for r in report.results), report.results
        assert overlap(spans["x.health"], spans["x.shared"]) is expected
        for name in ("x.shared", "x.health"):
            assert not overlap(spans["x.alone"], spans[name]), name
        own_registry.clear()
