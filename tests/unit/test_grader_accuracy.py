"""docs/grader-accuracy.md: the e2e tests' cases, expected verdicts from their own tables, given
verdicts from what their runs recorded (tests/e2e/verdicts.json)."""

from pathlib import Path

from tests.accuracy import FAIL, NOT_RUN, PASS, Case, cases, load, markdown

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_grader_accuracy_doc_is_generated_from_the_cases_and_their_recorded_verdicts():
    assert (DOCS / "grader-accuracy.md").read_text() == markdown(), (
        "docs/grader-accuracy.md is stale: python -m tests.accuracy > docs/grader-accuracy.md"
    )


def ran_its_checks(case: Case, entry: dict) -> bool:
    """Each phase of the case was recorded from a run that graded the checks it asks for now
    (a run that showed more, a prerequisite that failed, still counts: it disagrees)."""
    phases = ("graded", "repaired") if case.repaired else ("graded",)
    return all(set(case.want) <= set(entry.get(p, {}).get("checks", ())) for p in phases)


def test_every_case_has_verdicts_recorded_from_a_run_of_its_checks():
    verdicts, every = load(), cases()
    missing = [c.name for c in every if not ran_its_checks(c, verdicts.get(c.name, {}))]
    assert not missing, (
        f"no recorded run of these cases' checks as they stand: {missing}; run their e2e tests "
        "(tests/e2e/test_check_sabotage.py, test_grader_variants.py), then regenerate the doc"
    )
    names = [c.name for c in every]
    assert len(set(names)) == len(names)
    assert set(verdicts) <= set(names), f"verdicts of cases gone: {set(verdicts) - set(names)}"


def test_every_case_grades_what_it_expects_something_of():
    for case in cases():
        assert case.want and set(case.targets) <= set(case.want), case.name
        assert all(
            ok in (PASS, FAIL, NOT_RUN, NOT_RUN | PASS) or "fail" in ok for ok in case.want.values()
        )


FAKE = Case("a fake", "fake", ("web.static",), {"web.nginx": PASS, "web.static": FAIL})


def recorded(**statuses) -> dict:
    return {"checks": statuses, "score": "0/0"}


def test_a_given_verdict_that_differs_is_shown_and_counted_as_not_expected():
    caught = {"graded": recorded(**{"web.nginx": "pass", "web.static": "fail"})}
    caught["repaired"] = recorded(**{"web.nginx": "pass", "web.static": "pass"})
    missed = {"graded": recorded(**{"web.nginx": "pass", "web.static": "pass"})}
    missed["repaired"] = caught["repaired"]
    assert "then passes | yes |" in markdown([FAKE], {"a fake": caught})
    text = markdown([FAKE], {"a fake": missed})
    assert "| fails `web.static`; then passes | passes; then passes | **no** |" in text
    assert "| **all** | 1 | 0 | 1 |" in text


def test_a_case_without_a_recorded_run_is_shown_as_not_recorded():
    text = markdown([FAKE], {})
    assert "| not recorded | **no** |" in text
    partial = {"graded": recorded(**{"web.nginx": "pass", "web.static": "fail"})}
    text = markdown([FAKE], {"a fake": partial})
    assert "fails `web.static`; then not recorded | **no** |" in text
