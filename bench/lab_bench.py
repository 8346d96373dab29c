#!/usr/bin/env python3
"""Time the lab's lifecycle on this machine and print a table (min / median / max seconds).

Usage: sudo .venv/bin/python bench/lab_bench.py [--runs N] [--cold] [--only SCENARIO,...]
    [--lab NAME:OCTET] [--stability-runs N]
(--only stability runs `lab check` 200 times on a healthy lab, counts the runs that failed and
exits 1 if any did: the test suite leaves repeated runs to it)

Runs on a lab of its own (name `bench`, 192.168.60.0/24, or --lab NAME:OCTET beside another
bench), never on the user's lab.
--cold also removes the cached base image and the debootstrap cache first (a first-ever run).
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

ROOT = Path(__file__).resolve().parents[1]
IMAGE = Path("/var/lib/webstack-lab/containers/image-bookworm")
DEBOOTSTRAP_CACHE = Path("/var/cache/lxc/debian")
LABS = Path("/var/lib/webstack-lab/labs")
STABILITY_RUNS = 200
STABILITY_FAILURES = "lab check, stability: runs that failed"


def bench_topology(
    directory: Path, name: str = "bench", octet: int = 60, source: str = "lab.yml"
) -> Path:
    path = directory / f"{name}.yml"
    path.write_text(yaml.safe_dump(variant(name, octet, ROOT / source), sort_keys=False))
    return path


class Bench:
    def __init__(self, topology: Path):
        # as a user's shell runs it: bytecode cached by the first run, not compiled every time
        environment = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        self.env = {**environment, "LAB_TOPOLOGY": str(topology)}
        self.name = yaml.safe_load(topology.read_text())["name"]
        self.results: dict[str, list[float]] = {}
        self.last: subprocess.CompletedProcess | None = None
        self.stability_runs = STABILITY_RUNS

    def lab(self, *args: str, check: bool = True) -> float:
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "lab", *args], env=self.env, capture_output=True, text=True
        )
        elapsed = time.monotonic() - started
        self.last = result
        if check and result.returncode != 0:
            sys.exit(f"lab {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
        return elapsed

    def record(self, label: str, value: float, unit: str = " s") -> None:
        self.results.setdefault(label, []).append(value)
        print(f"  {label}: {value:.2f}{unit}", flush=True)

    def table(self) -> str:
        width = max([44, *map(len, self.results)])
        lines = [f"{'scenario':<{width}} {'runs':>4} {'min':>7} {'median':>7} {'max':>7}"]
        for label, values in self.results.items():
            lines.append(
                f"{label:<{width}} {len(values):>4} {min(values):>7.1f} "
                f"{statistics.median(values):>7.1f} {max(values):>7.1f}"
            )
        return "\n".join(lines)


SCENARIOS = {}


def scenario(name):
    def register(func):
        SCENARIOS[name] = func
        return func

    return register


@scenario("cold")
def cold_up(bench: Bench, runs: int) -> None:
    """lab up with no image and no debootstrap cache (once: it downloads Debian)."""
    bench.lab("destroy")
    others = [p.name for p in LABS.glob("*") if p.name != bench.name]
    if others:
        sys.exit(f"--cold rebuilds the base image: destroy the other labs first ({others})")
    shutil.rmtree(DEBOOTSTRAP_CACHE, ignore_errors=True)
    subprocess.run(["lxc-destroy", "-P", str(IMAGE.parent), "-n", IMAGE.name], capture_output=True)
    shutil.rmtree(IMAGE, ignore_errors=True)
    bench.record("lab up, cold (no image, no debootstrap cache)", bench.lab("up"))


@scenario("up")
def warm_up(bench: Bench, runs: int) -> None:
    """lab up from nothing with the image cached, then lab up on a running lab, then destroy."""
    for _ in range(runs):
        bench.lab("destroy")
        bench.record("lab up, warm (image cached)", bench.lab("up"))
        bench.record("lab up again (running lab, no-op)", bench.lab("up"))
        bench.record("lab destroy", bench.lab("destroy"))


@scenario("provision")
def provision(bench: Bench, runs: int) -> None:
    """lab up --provision from nothing (image and packages cached; the base design restored
    from the reference-state cache once a first run kept it there), then a second provision."""
    for _ in range(runs):
        bench.lab("destroy")
        seconds = bench.lab("up", "--provision")
        warm = "restored from the reference-state cache" in bench.last.stdout
        bench.record(f"lab up --provision ({'warm' if warm else 'cold'} reference cache)", seconds)
        bench.record("lab provision again (0 changed)", bench.lab("provision"))


@scenario("check")
def check(bench: Bench, runs: int) -> None:
    """lab check, the whole catalogue, on a provisioned lab (provisions it when needed): the
    whole command, and the run's own time as its report gives it (Python's start-up and the
    report's printing left out)."""
    bench.lab("up", "--provision")
    for _ in range(max(runs, 5)):
        bench.record("lab check (whole catalogue, 3 hosts)", bench.lab("check", "--json"))
        own = json.loads(bench.last.stdout)["seconds"]
        bench.record("lab check: the run's own time (its report)", own)


@scenario("snapshot")
def snapshot(bench: Bench, runs: int) -> None:
    """lab snapshot save and restore on a lab built in place (`lab up`, then `lab provision`:
    packages and data in the hosts' own layers, as on a student's hand-built lab)."""
    bench.lab("destroy")
    bench.lab("up")
    bench.lab("provision")
    for _ in range(runs):
        saved = bench.lab("snapshot", "save", "bench", "--force")
        bench.record("lab snapshot save (a lab built in place)", saved)
        bench.lab("ssh", "web-01", "--", "sudo touch /etc/lab-bench-changed")  # to be undone
        bench.record("lab snapshot restore", bench.lab("snapshot", "restore", "bench", "--yes"))
    bench.lab("snapshot", "delete", "bench")


@scenario("exercise-start")
def exercise_start(bench: Bench, runs: int) -> None:
    """lab exercise start 05 on a cold reference cache (this lab's entries removed), then warm."""
    from provision.snapshots import cache_dir

    bench.lab("destroy")
    for meta in cache_dir().glob("*/meta.json"):
        if json.loads(meta.read_text()).get("lab") == bench.name:
            shutil.rmtree(meta.parent)
    bench.lab("up")
    start = ("exercise", "start", "05", "--yes")
    bench.record("lab exercise start 05, cold cache", bench.lab(*start))
    for _ in range(max(runs, 3)):
        bench.record("lab exercise start 05, warm cache", bench.lab(*start))


@scenario("stability")
def stability(bench: Bench, runs: int) -> None:
    """lab check many times in a row on a healthy lab: every run must pass every check."""
    bench.lab("up", "--provision")
    failed = []
    for i in range(bench.stability_runs):
        bench.results.setdefault("lab check, stability runs", []).append(
            bench.lab("check", "--json", check=False)
        )
        report = json.loads(bench.last.stdout or "{}")
        bad = [c["id"] for c in report.get("checks", []) if c["status"] != "pass"]
        if bench.last.returncode != 0 or bad:
            failed.append(i)
            print(f"  run {i}: exit {bench.last.returncode}, not passing: {bad}", flush=True)
    total = bench.stability_runs
    print(f"  {total - len(failed)} of {total} runs passed every check")
    bench.record(STABILITY_FAILURES, len(failed), "")


@scenario("health-behaviour")
def health_behaviour(bench: Bench, runs: int) -> None:
    """lb.health-checks without a stats socket: the grader takes web-02 out and times it."""
    bench.lab("up", "--provision")
    drop = (
        "sudo sed -i '/stats socket/d' /etc/haproxy/haproxy.cfg && sudo systemctl restart haproxy"
    )
    bench.lab("ssh", "lb-01", "--", drop)
    try:
        for _ in range(runs):
            bench.record(
                "lab check lb.health-checks, no stats socket",
                bench.lab("check", "lb.health-checks"),
            )
    finally:
        bench.lab("provision", "lb")


@scenario("vagrant")
def vagrant_vs_lxc(bench: Bench, runs: int) -> None:
    """lab up + provision with Vagrant (vagrant-lxc) against the embedded lxc provider."""
    vagrant = Bench(bench_topology(Path(bench.env["LAB_TOPOLOGY"]).parent, "bench-vag", 66))
    vagrant.env["LAB_VAGRANT_PROVIDER"] = "lxc"
    vagrant.results = bench.results
    try:
        for _ in range(runs):
            bench.lab("destroy")
            vagrant.lab("destroy")
            lxc = bench.lab("up", "--provision")
            bench.record("lxc: lab up --provision", lxc)
            seconds = vagrant.lab("up", "--provider", "vagrant") + vagrant.lab("provision")
            vagrant.record("vagrant (lxc): lab up --provider vagrant + provision", seconds)
            vagrant.record("ratio vagrant / lxc", seconds / lxc, "")
    finally:
        vagrant.lab("destroy")


def fault_summary(bench: Bench, scenario: str) -> dict:
    """`lab fault SCENARIO --seconds 8 --json` on the bench's lab, its summary."""
    try:
        bench.lab("fault", scenario, "--seconds", "8", "--json", check=False)
        result = bench.last
    finally:
        bench.lab("fault", "--restore", check=False)
    if not result.stdout.strip():
        sys.exit(f"lab fault {scenario} printed no summary:\n{result.stderr}")
    return json.loads(result.stdout)


def wait_for_holder(bench: Bench, host: str, seconds: float = 60) -> None:
    """Until host holds the lab's virtual address (keepalived's preferred balancer takes it
    back a few seconds after it is up again): each measure starts from the same state."""
    vip = yaml.safe_load(Path(bench.env["LAB_TOPOLOGY"]).read_text())["network"]["virtual_address"]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        bench.lab("ssh", host, "--", "ip -o -4 addr show", check=False)
        if f" {vip}/" in bench.last.stdout:
            return
        time.sleep(1)
    sys.exit(f"{host} did not take {vip} back within {seconds:.0f} s")


@scenario("failover")
def failover(bench: Bench, runs: int) -> None:
    """lb-01 stopped on the three-host lab (the site is gone) and on the four-host lab of
    lab-ha.yml (keepalived moves the address to lb-02): requests lost, seconds until the site
    answered again; and ha.failover's own measure (lab check ha.failover)."""
    bench.lab("up", "--provision")
    ha = Bench(bench_topology(Path(bench.env["LAB_TOPOLOGY"]).parent, "bench-ha", 67, "lab-ha.yml"))
    ha.results = bench.results
    try:
        ha.lab("up", "--provision")
        ha.lab("provision", "ha")
        for _ in range(runs):
            gone = fault_summary(bench, "lb-01-down")
            bench.record("3 hosts, lb-01-down 8 s: requests lost", gone["failed"], "")
            wait_for_holder(ha, "lb-01")
            moved = fault_summary(ha, "lb-01-down")
            ha.record("lab-ha.yml, lb-01-down 8 s: requests lost", moved["failed"], "")
            if moved["seconds_to_recover"] is None:
                sys.exit(f"lb-01-down on the four-host lab: the site never came back: {moved}")
            ha.record("lab-ha.yml, lb-01-down: seconds to recover", moved["seconds_to_recover"])
            wait_for_holder(ha, "lb-01")
            ha.lab("check", "ha.failover", "--json")
            evidence = json.loads(ha.last.stdout)["checks"][0]["evidence"]
            seconds = float(evidence.split("answered again after ")[1].split()[0])
            ha.record("lab check ha.failover: site answered again after", seconds)
    finally:
        ha.lab("destroy")


OPT_IN = ("cold", "stability")  # run only when named (--cold, --only stability)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cold", action="store_true", help="also time a first-ever lab up")
    parser.add_argument("--only", default="", help=f"comma-separated: {', '.join(SCENARIOS)}")
    parser.add_argument("--lab", default="bench:60", help="NAME:OCTET of the bench's own lab")
    parser.add_argument("--stability-runs", type=int, default=STABILITY_RUNS, metavar="N")
    args = parser.parse_args()
    lab_name, _, octet = args.lab.partition(":")
    if not lab_name or not octet.isdigit() or not 0 < int(octet) < 255:
        parser.error(f"--lab {args.lab!r}: expected NAME:OCTET, e.g. bench:60")
    chosen = args.only.split(",") if args.only else [n for n in SCENARIOS if n not in OPT_IN]
    if unknown := [name for name in chosen if name not in SCENARIOS]:
        parser.error(f"unknown scenario {unknown[0]!r}; scenarios: {', '.join(SCENARIOS)}")
    if args.cold and "cold" not in chosen:
        chosen.insert(0, "cold")
    with tempfile.TemporaryDirectory() as tmp:
        bench = Bench(bench_topology(Path(tmp), lab_name, int(octet)))
        bench.stability_runs = args.stability_runs
        try:
            for name in chosen:
                print(f"{name}: {SCENARIOS[name].__doc__}", flush=True)
                SCENARIOS[name](bench, args.runs)
        finally:
            bench.lab("destroy")
    print(f"\n{os.cpu_count()} cores; wall-clock seconds of whole `lab` processes")
    print("(ratios, requests and runs: counts)")
    print(bench.table())
    if any(bench.results.get(STABILITY_FAILURES, [])):
        sys.exit(1)


if __name__ == "__main__":
    main()
