"""The static HTML pages: the class overview and one report per student (no scripts, no network)."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from checks.base import Status
from lab.core import templates
from lab.grading.model import GRADED, Pass, ScriptRun, StudentResult
from lab.grading.similarity import Pair

TEMPLATES = Path(__file__).resolve().parent / "templates"
ENV = templates.environment(TEMPLATES, html=True)
STATUS_CLASS = {Status.PASS: "pass", Status.FAIL: "fail", Status.NOT_RUN: "notrun"}
STATUS_WORD = {Status.PASS: "passed", Status.FAIL: "failed", Status.NOT_RUN: "not run"}
LOW_SHARE = 0.5  # below this share of the maximum, "idempotent" is said without a green badge
PAIRS_SHOWN = 100  # the overview's list of near-identical pairs; grades.json holds them all
UNSAFE_ID = re.compile(r"[^A-Za-z0-9_.-]+")


def local_time(text: str) -> str:
    """An ISO time as this machine's local time, readable: 2024-05-01 12:00 CEST."""
    try:
        moment = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return text or ""
    if moment.tzinfo is None:
        return moment.strftime("%Y-%m-%d %H:%M")
    return moment.astimezone().strftime("%Y-%m-%d %H:%M %Z").strip()


ENV.filters["local_time"] = local_time


def check_anchors(results: list[StudentResult], checks: list[dict]) -> dict[str, str]:
    """Check id -> the id of its row in a report: the assignment's order, then any others."""
    ids = [check["id"] for check in checks]
    for result in results:
        for one in (result.first, result.second):
            ids += [check["id"] for check in one.checks] if one else []
    anchors: dict[str, str] = {}
    used: set[str] = set()
    for check_id in ids:
        if check_id in anchors:
            continue
        anchor = base = "check-" + UNSAFE_ID.sub("_", str(check_id))
        count = 1
        while anchor in used:
            count += 1
            anchor = f"{base}-{count}"
        anchors[check_id] = anchor
        used.add(anchor)
    return anchors


def _by_id(one: Pass | None) -> dict[str, dict]:
    return {check["id"]: check for check in one.checks} if one else {}


def _status_class(check: dict | None) -> str:
    return STATUS_CLASS.get(check["status"], "none") if check else "none"


def _run_view(run: ScriptRun) -> dict:
    shown = len(run.output.encode("utf-8", "surrogateescape"))
    if run.timed_out:
        outcome, css = f"timed out after {run.seconds:.1f} s", "fail"
    elif run.exit_code is None:
        outcome, css = "did not finish", "fail"
    else:
        outcome, css = f"exit {run.exit_code}", "pass" if run.exit_code == 0 else "fail"
    if run.disk_limit:
        outcome, css = f"{outcome}; disk limit reached", "fail"
    truncated = (
        f"output truncated: {shown:,} of {run.output_bytes:,} bytes shown"
        if run.output_bytes > shown
        else ""
    )
    return {"run": run, "outcome": outcome, "css": css, "truncated": truncated}


def student_page(
    result: StudentResult,
    checks: list[dict],
    anchors: dict[str, str],
    total: int | None,
    maximum: int,
) -> str:
    """One student's report: every check with evidence and hint, the script logs, timings."""
    first, second = _by_id(result.first), _by_id(result.second)
    known = {check["id"]: check for check in checks}
    rows = []
    for check_id, anchor in anchors.items():
        before, after = first.get(check_id), second.get(check_id)
        if check_id not in known and before is None and after is None:
            continue
        facts = before or after or known[check_id]
        rows.append(
            {
                "anchor": anchor,
                "id": check_id,
                "title": facts.get("title") or known.get(check_id, {}).get("title", ""),
                "section": facts.get("section", ""),
                "points": facts.get("points", known.get(check_id, {}).get("points", "")),
                "first": before,
                "second": after,
                "css": _status_class(before),
                "word": STATUS_WORD.get(before["status"], before["status"]) if before else "",
                "second_css": _status_class(after),
                "second_word": STATUS_WORD.get(after["status"], after["status"]) if after else "",
                "changed": bool(before and after and before["status"] != after["status"]),
            }
        )
    passes = [
        {"name": name, "seconds": one.seconds, "runs": [_run_view(run) for run in one.scripts]}
        for name, one in (("First run", result.first), ("Second run", result.second))
        if one is not None
    ]
    return ENV.get_template("student.html").render(
        result=result,
        graded=result.status == GRADED,
        score=total,
        maximum=maximum,
        rows=rows,
        passes=passes,
        rerun_css=_rerun_class(result, total, maximum),
    )


def _rerun_class(result: StudentResult, total: int | None = None, maximum: int = 0) -> str:
    """The second run's colour: green for idempotent, but not beside a low score, where
    re-running what did little proves little ("plain": said in plain text, no badge)."""
    if result.status != GRADED or not result.rerun:
        return "none"
    if result.rerun != "idempotent":
        return "fail"
    low = maximum and (total or 0) < LOW_SHARE * maximum
    return "plain" if low else "pass"


def index_page(
    results: list[StudentResult],
    checks: list[dict],
    summary: dict,
    pairs: list[Pair],
    names: dict[str, str],
    anchors: dict[str, str],
    totals: dict[str, int | None],
) -> str:
    """The class overview: students x checks, distribution, most-failed checks, similar pairs."""
    rows = []
    for result in results:
        first = _by_id(result.first) if result.status == GRADED else {}
        report = f"reports/{names[result.student]}"
        cells = []
        for check in checks:
            found = first.get(check["id"])
            cells.append(
                {
                    "css": _status_class(found),
                    "text": found["awarded"] if found else "",
                    "href": f"{report}#{anchors[check['id']]}",
                    "title": f"{check['id']}: "
                    + (
                        STATUS_WORD.get(found["status"], found["status"]) if found else "not graded"
                    ),
                }
            )
        rows.append(
            {
                "result": result,
                "report": report,
                "total": totals[result.student],
                "cells": cells,
                "rerun_css": _rerun_class(result, totals[result.student], summary["maximum"]),
            }
        )
    tallest = max((b["students"] for b in summary["distribution"]), default=0) or 1
    bins = [{**b, "height": round(100 * b["students"] / tallest)} for b in summary["distribution"]]
    return ENV.get_template("index.html").render(
        assignment=results[0].assignment if results else "",
        checks=checks,
        rows=rows,
        summary=summary,
        bins=bins,
        pairs=pairs[:PAIRS_SHOWN],
        more_pairs=max(0, len(pairs) - PAIRS_SHOWN),
        reports={result.student: f"reports/{names[result.student]}" for result in results},
    )
