"""One record of check results per lab: every command that checks merges into it, and progress,
the diagram and the quiz read it. The commands run here with the lab's hosts replaced by
reports built as the grader builds them (each check's own result())."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import time
from types import SimpleNamespace

import pytest

from checks import CATALOGUE
from checks.base import Report, Status
from checks.runner import with_dependencies
from lab.cli import watch
from lab.cli.commands import check as check_command
from lab.cli.commands import diagram as diagram_command
from lab.cli.commands import exercise
from lab.cli.render import make_console
from lab.cli.render import quiz as quiz_view
from lab.core.state import LabState
from lab.core.topology import parse, variant
from lab.course import history, quiz


def report_of(chosen, failing=(), lab_name="unit-rec") -> Report:
    """What run_on_lab returns for chosen (and what they need): each passes unless failing."""
    results = []
    for cls in with_dependencies(CATALOGUE, chosen):
        if cls.id in failing:
            results.append(cls().result(Status.FAIL, f"{cls.id}: recorded failure", 0.1))
        else:
            results.append(cls().result(Status.PASS, f"{cls.id}: recorded pass", 0.1))
    return Report(lab_name, tuple(results), 1.0)


@pytest.fixture
def lab(tmp_path, monkeypatch):
    """A lab whose checks 'run' by returning recorded reports; nothing reaches a host."""
    failing: set[str] = set()

    def run_on_lab(chosen, topology, fleet, deadline=None):
        return report_of(chosen, failing)

    for module in (check_command, exercise, watch):
        monkeypatch.setattr(module, "Fleet", lambda specs: contextlib.nullcontext())
        monkeypatch.setattr(module, "run_on_lab", run_on_lab)
    state = LabState("unit-rec", tmp_path)
    state.dir.mkdir(parents=True)
    fake = SimpleNamespace(
        args=argparse.Namespace(),
        console=make_console(file=io.StringIO(), width=120),
        state=state,
        topology=parse(variant("unit-rec", 207)),
        specs=lambda: [],
        failing=failing,
    )
    return fake


def check(lab, *what, watch_times=0):
    lab.args = argparse.Namespace(
        list=False,
        what=list(what),
        all=False,
        watch=bool(watch_times),
        every=0.1,
        times=watch_times,
        junit=None,
        json=False,
        deadline=None,
    )
    return check_command.run(lab)


def exercise_check(lab, number):
    lab.args = argparse.Namespace(action="check", exercise=number, yes=False)
    return exercise.run(lab)


def output(lab) -> str:
    text = lab.console.file.getvalue()
    lab.console.file.seek(0)
    lab.console.file.truncate()
    return text


def progress_row(lab, number) -> str:
    output(lab)
    exercise.show_list(lab)
    lines = output(lab).splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith(f"│ {number} "))
    row = [lines[first]]
    for line in lines[first + 1 :]:  # the row's further lines have an empty first cell
        if not line.startswith("│    "):
            break
        row.append(line)
    return " ".join(" ".join(row).split())


def drawing(lab) -> str:
    output(lab)
    lab.args = argparse.Namespace(svg=None, html=None)
    diagram_command.run(lab)
    return output(lab)


def test_lab_check_section_is_seen_by_progress_and_the_diagram(lab):
    assert "not checked yet" in progress_row(lab, "08")
    assert check(lab, "firewall") == 0
    assert "done" in progress_row(lab, "08")
    assert "✓ firewall: incoming denied by default" in drawing(lab)
    record = history.load(lab.state.dir)
    item = record["checks"]["firewall.default-deny"]
    assert item["status"] == "pass" and item["by"] == "lab check firewall"
    assert item["evidence"] == "firewall.default-deny: recorded pass" and item["at"]


def test_exercise_check_is_seen_by_progress_and_the_diagram(lab):
    assert "? HTTPS" in drawing(lab)
    assert exercise_check(lab, "09") == 0
    assert "✓ HTTPS: TLS at the load balancer" in drawing(lab)
    assert "done" in progress_row(lab, "09")
    assert history.load(lab.state.dir)["checks"]["https.trusted"]["by"] == "lab exercise check 09"


def test_a_partial_run_keeps_the_other_results(lab):
    lab.failing.add("web.static")
    assert check(lab) == 1  # the base design, web.static failing
    lab.failing.clear()
    assert check(lab, "firewall") == 0
    assert exercise_check(lab, "09") == 0
    statuses = history.statuses(history.load(lab.state.dir))
    assert statuses["web.static"] == "fail" and statuses["firewall.default-deny"] == "pass"
    assert statuses["https.trusted"] == "pass" and statuses["dns.www"] == "pass"
    assert "3/4 pass" in progress_row(lab, "03")
    assert check(lab, "web.static") == 0  # one check by id: the latest result replaces it
    assert "done" in progress_row(lab, "03")


def test_the_record_of_an_earlier_version_is_read_and_then_retired(lab):
    """exercises.json held bare statuses (and each exercise's last run) before the one record;
    whichever of the two saw a check last wins, and a save moves them into the record."""
    earlier = time.time() - 3600
    legacy = {
        "started": {"exercise": "09", "key": "k", "at": earlier},
        "hints": {"web.nginx": 1},
        "checks": {"https.trusted": "pass", "web.nginx": "fail", "dns.www": "fail"},
        "ran": {"09": earlier, "02": earlier - 60, "06": earlier - 60},
    }
    (lab.state.dir / "exercises.json").write_text(json.dumps(legacy))
    assert "✓ HTTPS" not in drawing(lab)  # https has more checks than this one
    assert "https.trusted: pass" in " ".join(
        f"{cid}: {s}" for cid, s in history.statuses(history.load(lab.state.dir)).items()
    )
    assert "0/2 pass, 1 not checked yet" in progress_row(lab, "02")  # web.served-by: never
    assert check(lab, "web.nginx", "web.served-by") == 0  # newer than the old file: it wins
    assert "done" in progress_row(lab, "02")
    statuses = history.statuses(history.load(lab.state.dir))
    assert statuses["dns.www"] == "fail" and statuses["https.trusted"] == "pass"  # kept
    left = json.loads((lab.state.dir / "exercises.json").read_text())
    assert left == {"started": legacy["started"], "hints": {"web.nginx": 1}}
    assert history.statuses(history.load(lab.state.dir))["dns.www"] == "fail"


def test_an_old_status_newer_than_the_record_wins(lab):
    assert check(lab, "web.nginx") == 0
    saved = json.loads(history.path(lab.state.dir).read_text())
    saved["checks"]["web.nginx"]["at"] = "2020-01-01T00:00:00+00:00"
    history.path(lab.state.dir).write_text(json.dumps(saved))
    legacy = {"checks": {"web.nginx": "fail"}, "ran": {"02": time.time()}}
    (lab.state.dir / "exercises.json").write_text(json.dumps(legacy))
    assert history.statuses(history.load(lab.state.dir))["web.nginx"] == "fail"


def test_watch_prints_one_plain_block_per_round_when_piped(lab):
    """`lab check --watch` with its output not a terminal (a pipe, a file): a block per round,
    evidence whole, each round recorded."""
    assert not lab.console.is_terminal
    started = time.monotonic()
    assert check(lab, "firewall", watch_times=2) == 0
    assert time.monotonic() - started >= 0.1  # --every between the two rounds
    text = output(lab)
    assert text.count("run 1 at ") == 1 and text.count("run 2 at ") == 1
    assert "✓ PASS firewall.default-deny" in text and "firewall.default-deny: recorded pass" in text
    assert text.count("score ") == 2
    record = history.load(lab.state.dir)
    assert record["checks"]["firewall.default-deny"]["by"] == "lab check firewall --watch"


def test_watch_through_a_pipe_in_a_real_process(tmp_path):
    """The same, as a separate program whose stdout is a pipe: no terminal, output all the same."""
    import subprocess
    import sys

    script = (
        "import pathlib, sys\n"
        "from types import SimpleNamespace\n"
        "from checks import CATALOGUE\n"
        "from checks.base import Report, Status\n"
        "from lab.cli import watch\n"
        "from lab.cli.render import make_console\n"
        "from lab.core.state import LabState\n"
        "cls = CATALOGUE['web.nginx']\n"
        "report = Report('p', (cls().result(Status.FAIL, sys.argv[1], 0.1),), 0.1)\n"
        "state = LabState('p', pathlib.Path(sys.argv[2]))\n"
        "lab = SimpleNamespace(console=make_console(), state=state)\n"
        "watch.watch(lab, lambda: report, 0.5, 2, 'lab check --watch', sleep=lambda s: None)\n"
    )
    evidence = "web-01: nginx -t says: " + "a long reason " * 12 + "END"
    result = subprocess.run(
        [sys.executable, "-c", script, evidence, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "80"},
    )
    assert result.returncode == 0, result.stderr
    assert "run 1 at" in result.stdout and "run 2 at" in result.stdout
    assert "\x1b[" not in result.stdout
    assert " ".join(result.stdout.split()).count(" ".join(evidence.split())) == 2


def test_the_quiz_names_the_checks_of_a_lab_that_differs(lab):
    bank = quiz.load_bank()
    question = next(q for q in bank.questions if q.experiment == "fourth-request")
    wrong = next(c.observed for c in question.choices if c.observed and not c.correct)
    names = quiz.names_of(lab.topology)
    outcome = quiz.judge(question, "a", names, quiz.Observation(quiz.fill(wrong, names), "seen"))
    assert outcome.lab_differs
    text = quiz_view.show(outcome, names, history.load(lab.state.dir)).plain
    assert "lb.round-robin: not checked yet" in text
    lab.failing.add("lb.round-robin")
    check(lab, "lb.round-robin")
    text = quiz_view.show(outcome, names, history.load(lab.state.dir)).plain
    assert "✗ lb.round-robin: lb.round-robin: recorded failure" in text


def test_every_experiment_names_checks_that_exist():
    assert set(quiz.EXPERIMENT_CHECKS) == set(quiz.EXPERIMENTS)
    for ids in quiz.EXPERIMENT_CHECKS.values():
        assert ids and all(cid in CATALOGUE for cid in ids)


def test_the_hand_in_drawing_shows_what_the_record_saw_built_without_its_time(lab, tmp_path):
    assert check(lab) == 0 and check(lab, "firewall") == 0
    pages = {}
    for hand_in in (False, True):
        page = tmp_path / f"design-{hand_in}.html"
        lab.args = argparse.Namespace(svg=None, html=str(page), hand_in=hand_in)
        assert diagram_command.run(lab) == 0
        pages[hand_in] = page.read_text()
    assert "the latest run" in pages[False] and "<table" in pages[False]
    hand_in = pages[True]
    assert "the latest run" not in hand_in and "<table" not in hand_in
    assert 'data-element="firewall:web-02"' in hand_in  # built: the checks saw it
    assert 'data-element="https:lb-01"' not in hand_in  # never checked: not drawn as built
    assert 'data-spof="host:lb-01"' in hand_in and 'data-spof="db:web-01"' in hand_in
