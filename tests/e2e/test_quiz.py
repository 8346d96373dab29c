"""lab quiz on the reference lab: every observed question's design answer is what the lab shows,
a wrong prediction is marked wrong, a lab that differs (MySQL's port dropped) is judged by what
it does, and the lab is left as it was; lab check --watch stops
cleanly on Ctrl-C with its last table."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time

import pytest

from lab.core.state import lab_home
from lab.course import quiz
from tests.e2e.conftest import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("reference")]


def run_quiz(lab, *answers: str) -> dict:
    args = [arg for answer in answers for arg in ("--answer", answer)]
    return json.loads(lab("quiz", "--json", *args, timeout=300).stdout)


# What each experiment added for the issue saw on the reference lab, in its own words
SEEN = {
    "why-nginx": ["answered / with 200 and /api/status with 502", "started again"],
    "why-www": ["A 192.168."],
    "primary-dies": ["stopped on web-01", "started again"],
    "firewall": ["connected to", ":3306", "greeting", "MariaDB"],
    "monitoring": ["no alert from lb-01", "Nginx on web-02 started again"],
}


def test_observed_questions_are_answered_right_on_the_reference_lab(provisioned_lab):
    observed = [q for q in quiz.load_bank().questions if q.experiment]
    assert observed
    started = time.monotonic()
    result = run_quiz(provisioned_lab, *(f"{q.id}={q.design_letter}" for q in observed))
    seconds = time.monotonic() - started
    by_id = {r["id"]: r for r in result["results"]}
    assert set(by_id) == {q.id for q in observed}
    for question in observed:
        r = by_id[question.id]
        assert r["error"] == "", r
        assert r["observed"] and r["observed"]["evidence"], r
        assert r["right_choice"] == r["design_choice"] == question.design_letter, (
            question.id,
            r["observed"]["evidence"],
        )
        assert r["right"] is True, r
    assert result["right"] == len(observed)
    for qid, words in SEEN.items():
        evidence = by_id[qid]["observed"]["evidence"]
        assert all(w in evidence for w in words), (qid, evidence)
    print(f"{len(observed)} observed questions in {seconds:.1f} s")
    assert seconds < 150, f"the observed questions took {seconds:.0f} s"
    # what the experiments stopped and wrote is back: the whole catalogue passes
    report = json.loads(provisioned_lab("check", "--json").stdout)
    assert report["failed"] == 0 and report["not_run"] == 0, report


def test_a_wrong_prediction_is_marked_wrong_and_saved(provisioned_lab):
    result = run_quiz(provisioned_lab, "www-record-type=b", "how-many-servers=a")
    by_id = {r["id"]: r for r in result["results"]}
    record = by_id["www-record-type"]
    assert record["choice"] == "b"
    assert record["right"] is False and record["right_choice"] == "c"
    assert "CNAME" in record["observed"]["evidence"]
    assert by_id["how-many-servers"]["right"] is False
    assert by_id["how-many-servers"]["observed"] is None
    assert result["saved"]["answered"] >= 2


def test_a_lab_that_differs_is_judged_by_what_it_does(provisioned_lab):
    """MySQL's port dropped on the primary for lb-01 (as a firewall would): the lab shows
    `silent`, so the design's answer is wrong on this lab and the choice that says so is right."""
    lab = provisioned_lab
    pid = subprocess.run(
        ["lxc-info", "-P", str(lab_home() / "containers"), "-n", f"{lab.name}-web-01", "-p", "-H"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    table = "inet webstack_quiz_test"
    rules = f"table {table} {{ chain input {{ type filter hook input priority 0;\n"
    rules += f"  ip saddr {lab.address('lb-01')} tcp dport 3306 drop\n}}\n}}\n"
    netns = ["nsenter", "-t", pid, "-n", "nft"]
    subprocess.run([*netns, "-f", "-"], input=rules, text=True, check=True)
    try:
        record = run_quiz(lab, "firewall=a")["results"][0]
    finally:
        subprocess.run([*netns, "delete", "table", *table.split()], check=False)
    assert record["observed"]["value"] == "silent", record
    assert record["right"] is False and record["right_choice"] == "d", record
    assert record["design_choice"] == "a"
    after = run_quiz(lab, "firewall=a")["results"][0]
    assert after["right"] is True and after["observed"]["value"] == "greeting", after


def test_recall_questions_are_judged_by_the_design_without_touching_the_lab(provisioned_lab):
    result = run_quiz(provisioned_lab, "how-many-servers=b", "spof-list=a")
    by_id = {r["id"]: r for r in result["results"]}
    assert by_id["how-many-servers"]["right"] is True and by_id["spof-list"]["right"] is False
    assert all(r["observed"] is None and r["error"] == "" for r in by_id.values())


def test_watch_stops_on_ctrl_c_with_its_last_table(provisioned_lab):
    lab = provisioned_lab
    done = lab("check", "--watch", "--times", "2", "--every", "0.5", "dns.www")
    assert "dns.www" in done.stdout and "run 2" in done.stdout
    watching = subprocess.Popen(
        [sys.executable, "-m", "lab", "check", "--watch", "--every", "1", "domain"],
        env=lab.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # a shell's background job starts with SIGINT ignored; a person's Ctrl-C is not
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(watching.stdout), daemon=True)
    reader.start()
    try:  # Ctrl-C once its first table is out (a loaded machine takes seconds to a first run)
        wait_until(lambda: any("dns.www" in line for line in lines), timeout=60)
        watching.send_signal(signal.SIGINT)
        watching.wait(timeout=30)
        err = watching.stderr.read()
        reader.join(10)
        out = "".join(lines)
    finally:
        if watching.poll() is None:  # never leave it checking the lab under later tests
            watching.kill()
            watching.communicate()
    assert watching.returncode == 0, err
    assert "Traceback" not in err
    assert "dns.www" in out and "stopped" in out
