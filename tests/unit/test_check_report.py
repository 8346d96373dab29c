"""The check report: rich rendering in 80 columns, the JSON schema and JUnit XML."""

import io
import json
import xml.etree.ElementTree as ET

import pytest

from checks import CATALOGUE
from checks.base import BASE_SECTIONS, EXTRA_SECTIONS, SECTIONS, Report, Status
from checks.report import SCHEMA, to_dict, to_json, to_junit
from checks.runner import select, with_dependencies
from lab.cli.render import check_report, make_console
from lab.core.errors import LabError
from tests.helpers import judge


def report():
    ok = CATALOGUE["lb.round-robin"]().result(Status.PASS, "12 requests alternated", 0.2)
    bad = CATALOGUE["web.static"]().result(Status.FAIL, "web-01: / answered HTTP 404", 0.1)
    skipped = CATALOGUE["files.code-base"]().result(
        Status.NOT_RUN, "not run: app.server did not pass"
    )
    return Report("webstack", (bad, skipped, ok), 1.23)


def rendered(width=80):
    console = make_console(width=width, file=io.StringIO(), record=True)
    console.print(check_report(report()))
    return console.export_text()


def test_report_renders_sections_evidence_hints_and_score_in_80_columns():
    text = rendered()
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "web server" in text and "load balancer" in text
    assert "✗ FAIL Nginx serves the static content itself [web.static]" in text
    assert "web-01: / answered HTTP 404" in text
    assert "hint: Let Nginx serve the page and its static files" in text
    assert "- SKIP" in text and "not run: app.server did not pass" in text
    assert "score 10/20 · 1 passed, 1 failed, 1 not run · 1.2 s" in text


def test_no_colour_codes_when_not_a_terminal():
    console = make_console(width=80, file=io.StringIO())
    console.print(check_report(report()))
    assert "\x1b[" not in console.file.getvalue()


def test_json_schema_is_stable():
    data = json.loads(to_json(report()))
    assert data["schema"] == SCHEMA
    assert (data["score"], data["max_score"]) == (10, 20)
    assert (data["passed"], data["failed"], data["not_run"]) == (1, 1, 1)
    assert set(data["checks"][0]) == {
        "id",
        "section",
        "title",
        "requirement",
        "status",
        "points",
        "awarded",
        "evidence",
        "hint",
        "seconds",
    }
    assert [c["status"] for c in data["checks"]] == ["fail", "not-run", "pass"]
    assert to_dict(report())["checks"][2]["hint"] == ""


def test_junit_has_a_suite_per_section_with_failures_and_skips():
    root = ET.fromstring(to_junit(report()).split("\n", 1)[1])
    assert root.get("tests") == "3" and root.get("failures") == "1" and root.get("skipped") == "1"
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert set(suites) == {"web server", "application files", "load balancer"}
    failure = suites["web server"].find("testcase/failure")
    assert "hint:" in failure.text and failure.get("message") == "web-01: / answered HTTP 404"


def test_catalogue_covers_every_section_with_ids_titles_requirements_and_hints():
    assert {cls.section for cls in CATALOGUE.values()} >= set(BASE_SECTIONS)
    assert {cls.section for cls in CATALOGUE.values()} <= set(SECTIONS)
    for check_id, cls in CATALOGUE.items():
        assert check_id.split(".")[0] and cls.title and cls.requirement and cls.hint
        assert cls.points > 0
        assert all(dep in CATALOGUE for dep in cls.needs), check_id
    base = select(CATALOGUE, [])
    assert sum(cls.points for cls in base) == 105  # the base design keeps its score
    assert all(cls.section in BASE_SECTIONS for cls in base)
    extras = [c for c in select(CATALOGUE, [], everything=True) if c not in base]
    assert all(cls.section in EXTRA_SECTIONS for cls in extras)


def test_selection_by_section_or_id_and_dependencies():
    chosen = select(CATALOGUE, ["http"])
    assert [c.id for c in chosen] == ["http.www"]
    assert [c.id for c in with_dependencies(CATALOGUE, chosen)] == [
        "lb.haproxy",
        "dns.www",
        "http.www",
    ]
    assert with_dependencies(CATALOGUE, select(CATALOGUE, ["domain"])) == [CATALOGUE["dns.www"]]
    assert [c.id for c in select(CATALOGUE, ["db.replication"])] == ["db.replication"]
    with pytest.raises(LabError, match="unknown check or section 'cache'"):
        select(CATALOGUE, ["cache"])


def test_text_from_hosts_is_never_read_as_markup():
    evidence = "web-01: nginx -t: [emerg] unknown directive [/bold] in /etc/nginx/[x].conf"
    bad = CATALOGUE["web.nginx"]().result(Status.FAIL, evidence, 0.1)
    console = make_console(width=200, file=io.StringIO(), record=True)
    console.print(check_report(Report("webstack", (bad,), 0.1)))
    assert evidence in console.export_text()


class FakeLab:
    """Stands in for a live lab: records cleanups (the checks below observe nothing)."""

    def __init__(self):
        self.cleaned = 0
        self.swept = 0

    def sweep(self):
        self.swept += 1

    def cleanup(self):
        self.cleaned += 1


def test_a_failed_prerequisite_from_another_section_is_shown_and_cleanup_always_runs(
    own_registry,
):
    from checks.runner import run_checks

    class Down(CATALOGUE["lb.haproxy"]):
        id = "test.down"

        def observe(self, lab):
            raise RuntimeError("odd reply [1]")

    class Needs(CATALOGUE["http.www"]):
        id = "test.needs"
        needs = ("test.down",)

    catalogue = {"test.down": Down, "test.needs": Needs}
    lab = FakeLab()
    result = run_checks(catalogue, [Needs], lab, "webstack")
    assert [r.id for r in result.results] == ["test.down", "test.needs"]
    assert result.results[0].evidence.endswith("RuntimeError: odd reply [1]")
    assert result.results[1].status is Status.NOT_RUN and lab.cleaned == lab.swept == 1


MARIADB_REFUSAL = (
    "ERROR 1290 (HY000) at line 1: The MariaDB server is running with the --read-only option "
    "so it cannot execute this statement"
)


def words(text: str) -> str:
    return " ".join(text.split())


def test_long_evidence_is_wrapped_whole_not_cut():
    """The replica's refusal, as recorded, ends its sentence in the report: wrapped at 80
    columns, every word there."""
    observation = {"replica": "web-02", "attempt": MARIADB_REFUSAL}
    verdict = judge("db.replica-read-only", observation)
    assert verdict.passed and verdict.evidence.endswith("so it cannot execute this statement")
    wrong = judge(
        "db.replica-read-only",
        {"replica": "web-02", "attempt": "ERROR 1142 (42000): " + "x " * 80 + "END"},
    )
    assert wrong.evidence.endswith("END")
    long = CATALOGUE["db.replica-read-only"]().result(
        Status.FAIL, wrong.evidence + " · " + verdict.evidence, 0.1
    )
    console = make_console(width=80, file=io.StringIO(), record=True)
    console.print(check_report(Report("webstack", (long,), 0.1)))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    assert words(long.evidence) in words(text)
    assert "…" not in text


def test_the_watch_table_wraps_evidence_too():
    from lab.cli.watch import watch_table

    result = CATALOGUE["db.replica-read-only"]().result(
        Status.PASS, f"web-02 refused a write: {MARIADB_REFUSAL}", 0.1
    )
    console = make_console(width=80, file=io.StringIO(), record=True)
    console.print(watch_table(Report("webstack", (result,), 0.1), 1, 3.0, "at 12:00:00"))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "so it cannot execute this statement" in words(text) and "…" not in text


def test_the_check_registry_refuses_a_bad_definition_even_under_python_O():
    """Raised, not asserted: `python -O` strips asserts. The first web.nginx stands in for the
    catalogue's (loading all of it under -O, without its .pyc files, takes a second)."""
    import subprocess
    import sys

    code = (
        "from checks.base import Check\n"
        "class Nginx(Check):\n"
        "    id, section = 'web.nginx', 'web server'\n"
        "try:\n"
        "    class Dup(Check):\n"
        "        id, section = 'web.nginx', 'web server'\n"
        "except TypeError as e:\n"
        "    print('refused:', e)\n"
    )
    out = subprocess.run([sys.executable, "-O", "-c", code], capture_output=True, text=True)
    assert "refused: Dup: duplicate check id web.nginx" in out.stdout, out.stdout + out.stderr
