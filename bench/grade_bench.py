#!/usr/bin/env python3
"""Submissions per hour with `lab grade`, and students per minute with `lab grade --live`.

Usage: sudo .venv/bin/python bench/grade_bench.py [--students N] [--only lb,full,live] [--jobs 1,2]

- lb:   the load-balancer assignment over N copies of a correct submission (each with other
        server addresses), with --jobs 1 and --jobs 2;
- full: the whole design (the student's scripts install everything) over N copies;
- live: `lab grade --live` over 2N students whose servers are two provisioned labs
        (bench-a 192.168.60.0/24, bench-b 192.168.66.0/24; a student's servers are graded
        one student at a time, two labs side by side).
Grading labs take 192.168.100-199.0/24 like any `lab grade`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from lab.core.topology import variant
from lab.providers.lxcimage import LAB_USER

ROOT = Path(__file__).resolve().parents[1]
SUBMISSIONS = ROOT / "tests" / "e2e" / "submissions"
LABS = Path("/var/lib/webstack-lab/labs")


def lab(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "lab", "--no-color", *args]
    return subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, **(env or {})}
    )


def copies(source: Path, directory: Path, count: int) -> Path:
    """count copies of a submission; each one's public addresses differ (no two alike)."""
    klass = directory / "class"
    shutil.rmtree(klass, ignore_errors=True)
    for i in range(count):
        target = klass / f"student{i:02d}"
        shutil.copytree(source, target)
        for path in target.rglob("*"):
            if path.is_file():
                text = path.read_text(errors="surrogateescape")
                text = text.replace("34.229.", f"34.{200 + i}.").replace("54.89.", f"54.{60 + i}.")
                path.write_text(text + f"\n# student {i}\n", errors="surrogateescape")
    return klass


def per_hour(assignment: str, source: Path, count: int, jobs: int, directory: Path) -> dict:
    klass = copies(source, directory, count)
    out = directory / f"out-{assignment}-{jobs}"
    shutil.rmtree(out, ignore_errors=True)
    started = time.monotonic()
    run = lab(
        "grade",
        str(ROOT / "assignments" / f"{assignment}.yml"),
        str(klass),
        "--out",
        str(out),
        "--jobs",
        str(jobs),
    )
    seconds = time.monotonic() - started
    results = [json.loads(p.read_text()) for p in (out / "results").glob("*.json")]
    scores = sorted(r["score"] for r in results)
    return {
        "assignment": assignment,
        "jobs": jobs,
        "students": count,
        "seconds": round(seconds, 1),
        "per_hour": round(3600 * count / seconds, 1),
        "scores": scores,
        "not_graded": [
            f"{r['student']}: {r['status']} {r['error']}"
            for r in results
            if r["status"] != "graded"
        ],
        "exit": run.returncode,
        "stages": median_stages(results),
    }


def median_stages(results: list[dict]) -> dict[str, float]:
    """Each stage of a student's grading (lab, first run, checks, ...): its median seconds."""
    stages: dict[str, list[float]] = {}
    for result in results:
        for stage, seconds in (result.get("timings") or {}).items():
            stages.setdefault(stage, []).append(seconds)
    return {stage: round(statistics.median(values), 1) for stage, values in stages.items()}


def live(count: int, directory: Path) -> dict:
    labs = []
    for name, octet in (("bench-a", 60), ("bench-b", 66)):
        topology = directory / f"{name}.yml"
        topology.write_text(yaml.safe_dump(variant(name, octet, ROOT / "lab.yml"), sort_keys=False))
        labs.append((name, yaml.safe_load(topology.read_text()), topology))
        lab("up", "--provision", env={"LAB_TOPOLOGY": str(topology)})
    try:
        students = {}
        for i in range(2 * count):
            name, data, _ = labs[i % 2]
            key = str(LABS / name / "id_ed25519")
            students[f"s{i:02d}"] = {
                "hosts": {
                    host: {"address": spec["address"], "user": LAB_USER, "key": key}
                    for host, spec in data["hosts"].items()
                }
            }
        klass = directory / "live.yml"
        klass.write_text(yaml.safe_dump({"students": students}))
        started = time.monotonic()
        run = lab("grade", "--live", str(klass), "--out", str(directory / "out-live"))
        seconds = time.monotonic() - started
        return {
            "students": 2 * count,
            "seconds": round(seconds, 1),
            "per_minute": round(60 * 2 * count / seconds, 1),
            "exit": run.returncode,
        }
    finally:
        for _, _, topology in labs:
            lab("destroy", env={"LAB_TOPOLOGY": str(topology)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=4)
    parser.add_argument("--only", default="lb,full,live")
    parser.add_argument("--jobs", default="1,2", help="the --jobs values to time, e.g. 1,2")
    args = parser.parse_args()
    wanted = args.only.split(",")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        if "lb" in wanted:
            for jobs in map(int, args.jobs.split(",")):
                rows.append(
                    per_hour(
                        "load-balancer",
                        SUBMISSIONS / "load-balancer" / "alice",
                        args.students,
                        jobs,
                        directory,
                    )
                )
                print(json.dumps(rows[-1]), flush=True)
        if "full" in wanted:
            for jobs in map(int, args.jobs.split(",")):
                rows.append(
                    per_hour(
                        "full-design",
                        SUBMISSIONS / "full-design" / "grace",
                        max(2, args.students // 2),
                        jobs,
                        directory,
                    )
                )
                print(json.dumps(rows[-1]), flush=True)
        if "live" in wanted:
            rows.append(live(args.students * 4, directory))
            print(json.dumps(rows[-1]), flush=True)


if __name__ == "__main__":
    main()
