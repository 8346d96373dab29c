"""The grader's accuracy on every case the e2e tests try: the verdict expected and the one given.

    python -m tests.accuracy > docs/grader-accuracy.md

Each case comes from the tests' own tables (the reference, SABOTAGES in
e2e/test_check_sabotage.py, VARIANTS in e2e/test_grader_variants.py) with the statuses its test
accepts. The given verdicts are what `lab check` reported when the e2e tests last ran them:
each test writes its runs' statuses into e2e/verdicts.json (`recording`), whatever they were, and
then fails if they differ from what it expects. Nothing here writes a given verdict.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from checks import CATALOGUE
from checks.base import BASE_SECTIONS
from lab.core import platform

VERDICTS = Path(__file__).parent / "e2e" / "verdicts.json"
BASE = tuple(c for c, cls in CATALOGUE.items() if cls.section in BASE_SECTIONS)
PASS, FAIL, NOT_RUN = frozenset({"pass"}), frozenset({"fail"}), frozenset({"not-run"})
ANY = frozenset({"pass", "fail", "not-run"})
KINDS = {  # kind → what the grader should say about such a build
    "reference": "the reference build: passes",
    "sabotage": "the reference with one requirement broken: fails it, passes again once repaired",
    "correct build": "a correct build that differs from the reference: passes",
    "fake": "a fake or a broken build: fails exactly the checks named",
}


@dataclass(frozen=True)
class Case:
    """One build the tests grade: what `lab check` is asked for and the statuses that agree."""

    name: str
    kind: str  # a key of KINDS
    targets: tuple[str, ...]  # the ids given to `lab check` (none: a plain `lab check`)
    want: dict  # each check the report shows → the statuses that agree (PASS, FAIL, ...)
    repaired: bool = True  # the same checks run again after the repair and must all pass


def blocked(check_id: str, broken=frozenset()) -> frozenset:
    """What a check that needs a broken one may show: not run; one that may still pass when
    only one web server is broken (may_pass) passes too."""
    return NOT_RUN | PASS if may_pass(check_id, broken) else NOT_RUN


def may_pass(check_id: str, broken) -> bool:
    """Whether a check may still pass when the broken ones fail: it needs none of them, or
    all it needs may pass; one seen through any web server (Check.through_web) or seeing a
    web server's application directly (Check.direct) may also pass beside a prerequisite
    judged host by host (that may fail on one web server only)."""
    if check_id in broken:
        return False
    cls = CATALOGUE[check_id]
    partial = cls.through_web or cls.direct
    return all(
        may_pass(need, broken) or (partial and CATALOGUE[need].per_host) for need in cls.needs
    )


def dependents(check_ids) -> set[str]:
    """check_ids and every check that needs one of them, directly or not."""
    found = set(check_ids)
    while more := {c for c, cls in CATALOGUE.items() if set(cls.needs) & found} - found:
        found |= more
    return found


def graded(check_ids) -> tuple[str, ...]:
    """The base design's checks among check_ids and what needs them, in catalogue order: what
    a case asks `lab check` for."""
    found = dependents(check_ids)
    return tuple(c for c in BASE if c in found)


def shown(targets) -> tuple[str, ...]:
    """The checks a `lab check TARGETS` report shows when what they need passes: the targets
    (a prerequisite that does not pass is shown too, so it never agrees with a case)."""
    return tuple(targets) or BASE


def passing(*check_ids: str) -> Case:
    """The reference's verdict on these checks and what needs them (none: a plain `lab
    check`): every one passes."""
    run = graded(check_ids) if check_ids else ()
    return Case("the reference", "reference", run, dict.fromkeys(shown(run), PASS), False)


def statuses(report: dict) -> dict[str, str]:
    """Each check's status; a per-host check that passed on the web servers it could run on,
    its prerequisite having failed on the others, counts as not run (the sabotage is there)."""
    return {
        c["id"]: "not-run" if c.get("not_run_hosts") and not c.get("failed_hosts") else c["status"]
        for c in report["checks"]
    }


def agrees(case: Case, given: dict[str, str] | None, phase: str = "graded") -> bool:
    """given shows the same checks as case.want, each with a status it accepts (after the
    repair: every one passes)."""
    if given is None or set(given) != set(case.want):
        return False
    if phase == "repaired":
        return all(status == "pass" for status in given.values())
    return all(status in case.want[check] for check, status in given.items())


def off(case: Case, report: dict, phase: str = "graded") -> dict:
    """The checks of report whose status the case does not accept in this phase, with their
    evidence: what a failing test shows."""
    ok = dict.fromkeys(case.want, PASS) if phase == "repaired" else case.want
    return {
        c["id"]: (c["status"], c["evidence"])
        for c in report["checks"]
        if c["status"] not in ok.get(c["id"], ())
    }


def load() -> dict:
    return json.loads(VERDICTS.read_text()) if VERDICTS.exists() else {}


def save(verdicts: dict) -> None:
    """Write the verdicts whole (a reader never sees half a file), sorted: an unchanged run
    leaves the file unchanged."""
    text = json.dumps(dict(sorted(verdicts.items())), indent=1, sort_keys=True) + "\n"
    handle, temporary = tempfile.mkstemp(dir=VERDICTS.parent, prefix=".verdicts-")
    with os.fdopen(handle, "w") as out:
        out.write(text)
    os.replace(temporary, VERDICTS)


@contextlib.contextmanager
def recording(case: Case):
    """Yield a dict to put each phase's report in ("graded", "repaired"); on the way out,
    whatever happened and with LAB_RECORD_VERDICTS=1, the case's entry in verdicts.json becomes
    exactly what was put there (a phase that did not run is left out, not kept from an earlier
    run). A run without it (CI's) changes no file the unit tests compare."""
    given: dict[str, dict] = {}
    try:
        yield given
    finally:
        if os.environ.get("LAB_RECORD_VERDICTS"):  # else the test only compares, as in CI
            _record(case, given)


def _record(case: Case, given: dict[str, dict]) -> None:
    """The case's entry in verdicts.json becomes exactly the phases given (one worker at a
    time: the sabotages and the variants are recorded side by side)."""
    with open(Path(tempfile.gettempdir()) / "lab-verdicts.lock", "a") as handle:
        platform.lock(handle, wait=True)
        verdicts = load()
        verdicts[case.name] = {
            phase: {"checks": statuses(report), "score": f"{report['score']}/{report['max_score']}"}
            for phase, report in given.items()
        }
        save(verdicts)


def cases() -> list[Case]:
    """Every case, from the e2e tests' own tables."""
    from tests.e2e import test_check_sabotage, test_grader_variants

    return [
        test_check_sabotage.REFERENCE,
        *map(test_check_sabotage.case_of, test_check_sabotage.SABOTAGES),
        *map(test_grader_variants.case_of, test_grader_variants.VARIANTS),
    ]


def ids(checks) -> str:
    return ", ".join(f"`{c}`" for c in checks)


def expected_text(case: Case) -> str:
    """What the case's test accepts, in words."""
    fails = [c for c, ok in case.want.items() if ok == FAIL]
    skipped = [c for c, ok in case.want.items() if ok == NOT_RUN]
    may = [c for c, ok in case.want.items() if "fail" in ok and len(ok) > 1]
    through = [c for c, ok in case.want.items() if ok == NOT_RUN | PASS]
    words = [f"fails {ids(fails)}" if fails else "passes"]
    if skipped:
        words.append(f"{len(skipped)} not run")
    if through:
        words.append(f"not run or passes: {ids(through)}")
    if may:
        words.append(f"may fail: {ids(may)}")
    if case.repaired:
        words.append("then passes")
    return "; ".join(words)


def given_text(entry: dict, case: Case) -> str:
    """What the last run reported, in words (from verdicts.json)."""
    if "graded" not in entry:
        return "not recorded"
    checks = entry["graded"]["checks"]
    fails = [c for c in CATALOGUE if checks.get(c) == "fail"]
    skipped = [c for c in CATALOGUE if checks.get(c) == "not-run"]
    words = [f"fails {ids(fails)}" if fails else "passes"]
    if case.kind == "reference":
        words[0] += f" ({entry['graded']['score']})"
    if skipped:
        words.append(f"{len(skipped)} not run")
    if case.repaired:
        after = entry.get("repaired", {}).get("checks")
        bad = [c for c in CATALOGUE if (after or {}).get(c, "pass") != "pass"]
        words.append(f"then fails {ids(bad)}" if bad else "then passes")
        if after is None:
            words[-1] = "then not recorded"
    return "; ".join(words)


def as_expected(case: Case, entry: dict) -> bool:
    graded = entry.get("graded", {}).get("checks")
    repaired = entry.get("repaired", {}).get("checks")
    return agrees(case, graded) and (not case.repaired or agrees(case, repaired, "repaired"))


def markdown(all_cases: list[Case] | None = None, verdicts: dict | None = None) -> str:
    """docs/grader-accuracy.md: every case with its verdicts, then totals by kind."""
    all_cases = cases() if all_cases is None else all_cases
    verdicts = load() if verdicts is None else verdicts
    lines = [
        "# The grader's accuracy",
        "",
        "Every build the end-to-end tests grade, with the verdict their test expects and the one",
        "`lab check` gave when the tests last ran (`python -m tests.accuracy >",
        "docs/grader-accuracy.md`, from the tests' case tables and `tests/e2e/verdicts.json`,",
        "which the tests write with what they saw). A case runs the checks it is about and every",
        "check that needs them (`lab check ID ...`); what those need runs first and must pass.",
        "",
        "| case | kind | checks run | expected | given | as expected |",
        "|---|---|---|---|---|---|",
    ]
    totals: dict[str, list[int]] = {kind: [0, 0] for kind in KINDS}
    for case in all_cases:
        entry = verdicts.get(case.name, {})
        ok = as_expected(case, entry)
        totals[case.kind][0] += 1
        totals[case.kind][1] += ok
        run = ids(case.targets) if case.targets else "all (a plain `lab check`)"
        lines.append(
            f"| {case.name} | {case.kind} | {run} | {expected_text(case)} | "
            f"{given_text(entry, case)} | {'yes' if ok else '**no**'} |"
        )
    lines += ["", "## Totals", "", "| kind | cases | as expected | not |", "|---|---|---|---|"]
    for kind, (count, ok) in totals.items():
        lines.append(f"| {KINDS[kind]} | {count} | {ok} | {count - ok} |")
    count, ok = len(all_cases), sum(t[1] for t in totals.values())
    lines.append(f"| **all** | {count} | {ok} | {count - ok} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
