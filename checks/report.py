"""Machine-readable reports: JSON (schema webstack-lab/check-report/1) and JUnit XML."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from checks.base import Report, Status

SCHEMA = "webstack-lab/check-report/1"


def to_dict(report: Report) -> dict:
    """The documented JSON shape (docs/check-report.md)."""
    return {
        "schema": SCHEMA,
        "lab": report.lab,
        "score": report.score,
        "max_score": report.max_score,
        "passed": report.count(Status.PASS),
        "failed": report.count(Status.FAIL),
        "not_run": report.count(Status.NOT_RUN),
        "seconds": report.seconds,
        "checks": [
            {
                "id": r.id,
                "section": r.section,
                "title": r.title,
                "requirement": r.requirement,
                "status": r.status.value,
                "points": r.points,
                "awarded": r.awarded,
                "evidence": r.evidence,
                "hint": r.hint,
                "seconds": r.seconds,
                **(
                    {
                        "passed_hosts": list(r.passed_hosts),
                        "failed_hosts": list(r.failed_hosts),
                        "not_run_hosts": list(r.not_run_hosts),
                    }
                    if r.not_run_hosts
                    else {}
                ),
            }
            for r in report.results
        ],
    }


def to_json(report: Report) -> str:
    return json.dumps(to_dict(report), indent=2) + "\n"


def to_junit(report: Report) -> str:
    """One testsuite per section, one testcase per check; not-run checks are skipped."""
    root = ET.Element(
        "testsuites",
        name=f"webstack lab {report.lab}",
        tests=str(len(report.results)),
        failures=str(report.count(Status.FAIL)),
        skipped=str(report.count(Status.NOT_RUN)),
        time=str(report.seconds),
    )
    sections: dict[str, ET.Element] = {}
    for r in report.results:
        suite = sections.get(r.section)
        if suite is None:
            suite = sections[r.section] = ET.SubElement(root, "testsuite", name=r.section)
        case = ET.SubElement(
            suite, "testcase", classname=r.section, name=f"{r.id}: {r.title}", time=str(r.seconds)
        )
        if r.status is Status.FAIL:
            failure = ET.SubElement(case, "failure", message=r.evidence)
            failure.text = f"{r.evidence}\nhint: {r.hint}\nrequirement: {r.requirement}"
        elif r.status is Status.NOT_RUN:
            ET.SubElement(case, "skipped", message=r.evidence)
        ET.SubElement(case, "system-out").text = r.evidence
    for suite in sections.values():
        cases = suite.findall("testcase")
        suite.set("tests", str(len(cases)))
        suite.set("failures", str(sum(1 for c in cases if c.find("failure") is not None)))
        suite.set("skipped", str(sum(1 for c in cases if c.find("skipped") is not None)))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
