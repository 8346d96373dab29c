"""lab grade --live: students' own running servers, checks only, side by side."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lab.providers.lxcimage import LAB_USER

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("reference")]

ROOT = Path(__file__).resolve().parents[2]


def class_file(tmp_path: Path, lab, students: dict[str, str]) -> Path:
    """A class whose students' servers are the test lab's hosts (lb-01's address varied)."""
    key = Path("/var/lib/webstack-lab/labs") / lab.name / "id_ed25519"
    entries = {}
    for student, lb_address in students.items():
        hosts = {
            host: {"address": lab.address(host), "user": LAB_USER, "key": str(key)}
            for host in lab.hosts
        }
        hosts["lb-01"]["address"] = lb_address
        entries[student] = {"hosts": hosts}
    path = tmp_path / "class.yml"
    path.write_text(yaml.safe_dump({"students": entries}))
    return path


def test_students_servers_are_graded_and_an_unreachable_one_does_not_stop_the_class(
    provisioned_lab, tmp_path
):
    lb = provisioned_lab.address("lb-01")
    nowhere = lb.rsplit(".", 1)[0] + ".99"  # in the test lab's own subnet; no host there
    klass = class_file(tmp_path, provisioned_lab, {"ana": lb, "ben": lb, "cy": nowhere})
    out = tmp_path / "out"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "lab",
            "--no-color",
            "grade",
            "--live",
            str(klass),
            str(ROOT / "assignments" / "load-balancer.yml"),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={k: v for k, v in os.environ.items() if k != "LAB_TOPOLOGY"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "per minute" in result.stdout
    rows = {r["student"]: r for r in csv.DictReader((out / "grades.csv").open())}
    assert rows["ana"]["total"] == rows["ben"]["total"] == "100", rows
    cy = json.loads((out / "results" / "cy.json").read_text())
    reachable = cy["first"]["checks"][0]
    assert reachable["id"] == "servers.reachable" and reachable["status"] == "fail"
    assert "lb-01" in reachable["evidence"] and cy["score"] < 100
    assert (out / "index.html").is_file()


def test_a_malformed_class_file_is_one_clear_line(tmp_path):
    bad = tmp_path / "class.yml"
    bad.write_text(yaml.safe_dump({"students": {"ana": {"hosts": {"lb-01": {}}}}}))
    result = subprocess.run(
        [sys.executable, "-m", "lab", "grade", "--live", str(bad)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "students.ana.hosts.lb-01" in result.stderr
    assert "Traceback" not in result.stderr
