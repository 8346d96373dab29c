"""What a check is: an id, a title, the sentence it grades, points, a hint, observe and judge."""

from __future__ import annotations

import dataclasses
import enum
import functools
import inspect
import os
import time
import typing
from dataclasses import dataclass
from typing import Any, ClassVar

from lab.core.shapes import mismatches
from lab.observe import CURRENT_CHECK, CheckError  # noqa: F401 (checks raise it)


def strict_shapes() -> bool:
    """LAB_STRICT_SHAPES=1 (the end-to-end tests set it): each observation is held to its type
    before it is judged."""
    return os.environ.get("LAB_STRICT_SHAPES") == "1"


BASE_SECTIONS = (
    "servers",
    "web server",
    "application server",
    "application files",
    "load balancer",
    "database",
    "domain",
    "http",
)
# The fixes of the issues the design document names: graded only when asked for.
EXTRA_SECTIONS = ("firewall", "https", "monitoring", "ha")
SECTIONS = BASE_SECTIONS + EXTRA_SECTIONS


class Status(enum.StrEnum):
    PASS = "pass"
    FAIL = "fail"
    NOT_RUN = "not-run"


MARK = {Status.PASS: "✓", Status.FAIL: "✗", Status.NOT_RUN: "-"}  # wherever a status is drawn


@dataclass(frozen=True)
class Verdict:
    """A judgement: passed or not, with what was observed, in words (and a fitting hint)."""

    passed: bool
    evidence: str
    hint: str = ""  # replaces the check's general hint when the evidence calls for another
    case: str = ""  # names that failure, for hints of its own (docs/exercises/hints.yml)


def passed(evidence: str) -> Verdict:
    return Verdict(True, evidence)


def failed(evidence: str, hint: str = "", case: str = "") -> Verdict:
    return Verdict(False, evidence, hint, case)


def failed_all(problems: list[str], hint: str = "", case: str = "") -> Verdict:
    """Failed, with every problem found, in one line."""
    return failed("; ".join(problems), hint, case)


@dataclass(frozen=True)
class Result:
    """One check's outcome in a run."""

    id: str
    section: str
    title: str
    requirement: str
    points: int
    status: Status
    evidence: str
    hint: str = ""
    seconds: float = 0.0
    case: str = ""  # which failure the evidence showed, when its hints differ (Verdict.case)
    failed_hosts: tuple[str, ...] = ()  # a per-host check's hosts that failed (): all or unknown
    passed_hosts: tuple[str, ...] = ()  # ... that passed, when it could not run on every host:
    not_run_hosts: tuple[str, ...] = ()  # hosts where a prerequisite failed (Check.per_host)

    @property
    def awarded(self) -> int:
        """Its points when it passed; run on some hosts only (a prerequisite failed on the
        others), the share of the hosts it passed on."""
        if self.status is Status.PASS:
            return self.points
        return share(self.points, self.passed_hosts, self.failed_hosts, self.not_run_hosts)


def share(points: int, passed_hosts, failed_hosts, not_run_hosts) -> int:
    """points for the hosts a partly run check passed on (0 unless it was run on part)."""
    hosts = len(passed_hosts) + len(failed_hosts) + len(not_run_hosts)
    return points * len(passed_hosts) // hosts if not_run_hosts else 0


@dataclass(frozen=True)
class Report:
    """All results of a run, in catalogue order."""

    lab: str
    results: tuple[Result, ...]
    seconds: float

    @property
    def score(self) -> int:
        return sum(r.awarded for r in self.results)

    @property
    def max_score(self) -> int:
        return sum(r.points for r in self.results)

    def count(self, status: Status) -> int:
        return sum(1 for r in self.results if r.status is status)

    @property
    def count_pass(self) -> int:
        return self.count(Status.PASS)

    @property
    def count_fail(self) -> int:
        return self.count(Status.FAIL)

    @property
    def count_not_run(self) -> int:
        return self.count(Status.NOT_RUN)

    @property
    def all_passed(self) -> bool:
        return all(r.status is Status.PASS for r in self.results)


class NotObservable(CheckError):
    """What the check observes cannot be observed now (a prerequisite's failure hides it): the
    check is not run, for this reason."""


class Check:
    """Subclass with the class attributes below plus observe() and judge(); it registers itself."""

    id: ClassVar[str]
    section: ClassVar[str]
    title: ClassVar[str]
    requirement: ClassVar[str]  # the sentence of the design document this check grades
    design: ClassVar[str]  # the anchor in docs/design.md of the requirement, in our words
    points: ClassVar[int] = 5
    hint: ClassVar[str]
    needs: ClassVar[tuple[str, ...]] = ()
    exclusive: ClassVar[bool | str] = False  # True: runs alone (other traffic disturbs what it
    # observes, or what it does disturbs others); a name: alone but for exclusive checks that
    # name something else (what it disturbs and needs undisturbed: "balancer", "replica")
    touches: ClassVar[tuple[str, ...] | None] = None  # a shared check: the things named by
    # exclusive checks that it uses, so that it never runs beside them (None: it may use any,
    # so it runs beside no named exclusive check)
    head_start: ClassVar[float] = 0.0  # seconds its prepare() runs before the checks start
    waits: ClassVar[float] = 0.0  # seconds it waits on purpose (an alert to fire): added to a
    # run's default deadline (checks.runner.DEADLINE)
    per_host: ClassVar[bool] = False  # observes {web host: ...} and judges each host alone: it
    # still runs on the hosts where its prerequisites passed (checks.runner)
    through_web: ClassVar[bool] = False  # observes through any web server's site, not each
    # one's: it still runs through the hosts where its prerequisites passed, graded in full
    direct: ClassVar[bool] = False  # per host, and sees a web server's application directly
    # where nothing listens on its web port: it runs there too when its prerequisites were not
    # run there, if directly() says it can

    registry: ClassVar[dict[str, type[Check]]] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.section not in SECTIONS:  # raised, not asserted: `python -O` keeps these
            raise TypeError(f"{cls.__name__}: unknown section {cls.section!r}")
        if cls.id in Check.registry:
            raise TypeError(f"{cls.__name__}: duplicate check id {cls.id}")
        Check.registry[cls.id] = cls

    def observe(self, lab) -> Any:
        """Look at the live lab (network and SSH) and return plain data."""
        raise NotImplementedError

    def prepare(self, lab) -> None:
        """Slow work started as soon as the lab is swept, before the checks this one needs have
        run; observe() picks it up from the lab's memo. It runs as exclusive as the check."""

    def exclusive_on(self, lab) -> bool | str:
        """How exclusive it is on this lab, asked once its prerequisites are done (so their
        observations are at hand): a check that will only read may say False there."""
        return self.exclusive

    def judge(self, observation: Any) -> Verdict:
        """Decide from the observation alone (pure, unit-tested on recorded observations)."""
        raise NotImplementedError

    @classmethod
    @functools.cache
    def observation_type(cls) -> Any:
        """What observe() returns and judge() takes: judge's annotation."""
        first = list(inspect.signature(cls.judge).parameters)[1]
        return typing.get_type_hints(cls.judge).get(first, Any)

    def shape_problems(self, observation: Any) -> list[str]:
        """Where observation differs from the check's observation type."""
        return mismatches(observation, self.observation_type())

    def run(self, lab) -> Result:
        """Observe and judge; never raises: whatever goes wrong becomes this check's failure."""
        started, observation = time.monotonic(), None
        try:
            observation = self.observe(lab)
        except NotObservable as exc:
            return self.result(Status.NOT_RUN, f"not run: {exc}", time.monotonic() - started)
        except CheckError as exc:
            verdict = failed(str(exc))
        except Exception as exc:  # a check must never take the report down with it
            verdict = failed(f"the grader could not observe this: {_describe(exc)}")
        else:
            try:
                if strict_shapes() and (problems := self.shape_problems(observation)):
                    raise TypeError(f"not its type's shape: {'; '.join(problems[:3])}")
                verdict = self.judge(observation)
            except Exception as exc:
                verdict = failed(f"the grader could not judge what it saw: {_describe(exc)}")
        status = Status.PASS if verdict.passed else Status.FAIL
        result = self.result(
            status, verdict.evidence, time.monotonic() - started, verdict.hint, verdict.case
        )
        if status is Status.FAIL and self.per_host and observation is not None:
            return dataclasses.replace(result, failed_hosts=self.failing_hosts(observation))
        return result

    def directly(self, lab, host: str) -> bool:
        """Whether host can be observed without what its prerequisites (not run there) would
        have shown (Check.direct)."""
        return False

    def failing_hosts(self, observation) -> tuple[str, ...]:
        """The hosts whose part of a per-host observation fails when judged alone; () when it
        cannot tell (not per host, or nothing fails alone: a fault across the hosts)."""
        if not isinstance(observation, dict):
            return ()
        failing = []
        for host, part in observation.items():
            try:
                if not self.judge({host: part}).passed:
                    failing.append(host)
            except Exception:  # a judgement that needs every host: no answer per host
                return ()
        return tuple(failing)

    def result(
        self, status: Status, evidence: str, seconds: float = 0.0, hint: str = "", case: str = ""
    ) -> Result:
        failing = status is not Status.PASS
        hint, case = (hint or self.hint, case) if failing else ("", "")
        return Result(
            self.id,
            self.section,
            self.title,
            self.requirement,
            self.points,
            status,
            evidence,
            hint,
            round(seconds, 3),
            case,
        )


def _describe(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
