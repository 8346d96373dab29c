"""lab grade --live: students' own running servers, checks only, side by side."""

from __future__ import annotations

import csv
import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lab.providers.lxcimage import LAB_USER
from tests.e2e.conftest import haproxy_servers_down, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("reference")]

ROOT = Path(__file__).resolve().parents[2]


def class_file(tmp_path: Path, lab, students: dict[str, str], ssh: dict | None = None) -> Path:
    """A class whose students' servers are the test lab's hosts (lb-01's address varied;
    ssh: another address to reach a host at)."""
    key = Path("/var/lib/webstack-lab/labs") / lab.name / "id_ed25519"
    entries = {}
    for student, lb_address in students.items():
        hosts = {
            host: {"address": lab.address(host), "user": LAB_USER, "key": str(key)}
            for host in lab.hosts
        }
        hosts["lb-01"]["address"] = lb_address
        for host, address in (ssh or {}).items():
            hosts[host]["ssh"] = address
        entries[student] = {"hosts": hosts}
    path = tmp_path / "class.yml"
    path.write_text(yaml.safe_dump({"students": entries}))
    return path


def grade_live(klass: Path, assignment: Path, out: Path, home: Path) -> subprocess.CompletedProcess:
    """`lab grade --live`, with its own lab home (the host keys it records go there)."""
    env = {k: v for k, v in os.environ.items() if k != "LAB_TOPOLOGY"}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "lab",
            "--no-color",
            "grade",
            "--live",
            str(klass),
            str(assignment),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**env, "LAB_HOME": str(home)},
    )


def assignment_with(tmp_path: Path, checks: dict[str, int]) -> Path:
    """The load-balancer assignment grading these checks."""
    data = yaml.safe_load((ROOT / "assignments" / "load-balancer.yml").read_text())
    data["checks"] = checks
    path = tmp_path / "assignment.yml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_students_sharing_servers_are_both_graded(provisioned_lab, tmp_path):
    lb = provisioned_lab.address("lb-01")
    klass = class_file(tmp_path, provisioned_lab, {"ana": lb, "ben": lb})
    out = tmp_path / "out"
    assignment = ROOT / "assignments" / "load-balancer.yml"
    result = grade_live(klass, assignment, out, tmp_path / "home")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "per minute" in result.stdout
    rows = {r["student"]: r for r in csv.DictReader((out / "grades.csv").open())}
    assert rows["ana"]["total"] == rows["ben"]["total"] == "100", rows
    assert (out / "index.html").is_file()


# Nginx stopped on web-02, every check of the whole design: (status, points awarded of 105)
ONE_NGINX_DOWN = {
    "servers.reachable": ("pass", 5),
    "web.nginx": ("fail", 0),  # the one thing broken
    # Nginx's own requirements, judged host by host: web-01's share
    "web.static": ("fail", 2),
    "web.reverse-proxy": ("fail", 5),
    "web.served-by": ("fail", 2),
    # web-02's application server, asked from web-02 itself where Nginx's configuration
    # forwards to: it runs, stores and reads, as on web-01
    "app.server": ("pass", 5),
    "app.database": ("pass", 5),
    "files.code-base": ("pass", 5),  # the code the running process was started from
    "lb.haproxy": ("pass", 5),
    # HAProxy's own view: roundrobin over both, neither backup; its health checks took web-02
    # out, and the requests all went to web-01, the one UP
    "lb.round-robin": ("pass", 10),
    "lb.active-active": ("pass", 5),
    "lb.health-checks": ("pass", 5),  # HAProxy took web-02 out: its checks work
    "db.servers": ("pass", 5),
    "db.replication": ("pass", 10),
    "db.replica-read-only": ("pass", 5),
    "db.app-roles": ("pass", 5),  # web-02's application read its own replica, asked directly
    "dns.www": ("pass", 5),
    "http.www": ("pass", 5),
}


def test_one_service_down_is_graded_and_an_unreachable_student_does_not_stop_the_class(
    provisioned_lab, tmp_path
):
    """Nginx stopped on web-02 of a student's servers (89 of 105): only Nginx's own checks
    lose web-02's share. web-02's application is asked directly, from web-02; HAProxy, whose
    health checks rightly took web-02 out, is judged from its own view; web-01, replication
    and the database roles earn their points. A student whose servers do not answer gets no
    grade, not 0."""
    lab = provisioned_lab
    lb = lab.address("lb-01")
    nowhere = lb.rsplit(".", 1)[0] + ".99"  # in the test lab's own subnet; no host there
    klass = class_file(tmp_path, lab, {"dee": lb, "cy": nowhere})
    out = tmp_path / "out"
    lab.ssh("web-02", "sudo systemctl stop nginx")
    try:
        wait_until(lambda: haproxy_servers_down(lab) == 1, 30)
        result = grade_live(klass, ROOT / "assignments" / "full-design.yml", out, tmp_path / "h")
    finally:
        lab.ssh("web-02", "sudo systemctl start nginx")
        wait_until(lambda: haproxy_servers_down(lab) == 0, 30)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = {r["student"]: r for r in csv.DictReader((out / "grades.csv").open())}
    dee = json.loads((out / "results" / "dee.json").read_text())
    awarded = {c["id"]: (c["status"], c["awarded"]) for c in dee["first"]["checks"]}
    assert dee["status"] == "graded" and rows["dee"]["maximum"] == "105", rows["dee"]
    assert awarded == ONE_NGINX_DOWN, awarded
    assert rows["dee"]["total"] == str(sum(points for _, points in ONE_NGINX_DOWN.values()))
    # a server that does not answer over SSH: no grade (not 0), the server named
    assert rows["cy"]["status"] == "unreachable" and rows["cy"]["total"] == "", rows["cy"]
    assert rows["cy"]["error"].startswith(f"lb-01 ({nowhere}): unreachable over SSH")


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


def lab_root(lab, host: str, script: str) -> None:
    """script as root inside host's container (works whatever SSH thinks of the host)."""
    subprocess.run(
        [
            "lxc-attach",
            "-P",
            "/var/lib/webstack-lab/containers",
            "-n",
            f"{lab.name}-{host}",
            "--",
            "sh",
            "-ec",
            script,
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )


def test_configured_addresses_unreachable_from_here_are_probed_through_ssh(
    provisioned_lab, tmp_path
):
    """The servers use their lab addresses among themselves; this machine reaches them only at
    other addresses (ssh:). An nftables rule drops and counts whatever this machine sends to the
    lab addresses: the checks still pass, and it counts nothing."""
    lab = provisioned_lab
    prefix = lab.address("lb-01").rsplit(".", 1)[0]
    ssh = {host: f"{prefix}.{241 + i}" for i, host in enumerate(lab.hosts)}
    hidden = [lab.address(host) for host in lab.hosts]
    table = f"{lab.name.replace('-', '_')}_hidden"
    for host, alias in ssh.items():
        lab_root(lab, host, f"ip addr replace {alias}/24 dev eth0")
    fence = f"""table inet {table} {{
        chain out {{
            type filter hook output priority 0;
            ip daddr {{ {", ".join(hidden)} }} counter drop
        }}
    }}"""
    subprocess.run(["nft", "-f", "-"], input=fence, text=True, check=True)
    try:
        klass = class_file(tmp_path, lab, {"ana": lab.address("lb-01")}, ssh=ssh)
        checks = {
            **yaml.safe_load((ROOT / "assignments" / "load-balancer.yml").read_text())["checks"],
            "dns.www": 10,
        }
        out = tmp_path / "out"
        result = grade_live(klass, assignment_with(tmp_path, checks), out, tmp_path / "home")
        listed = subprocess.run(
            ["nft", "list", "table", "inet", table], capture_output=True, text=True, check=True
        ).stdout
    finally:
        subprocess.run(["nft", "delete", "table", "inet", table], check=False)
        for host, alias in ssh.items():
            lab_root(lab, host, f"ip addr del {alias}/24 dev eth0 || true")
    assert result.returncode == 0, result.stdout + result.stderr
    ana = json.loads((out / "results" / "ana.json").read_text())
    failing = [c for c in ana["first"]["checks"] if c["status"] != "pass"]
    assert ana["status"] == "graded" and not failing, failing
    assert ana["score"] == sum(checks.values())
    sent = re.search(r"counter packets (\d+)", listed)
    assert sent and sent.group(1) == "0", listed  # nothing went to the lab addresses from here


def test_a_changed_host_key_makes_that_student_unreachable_in_one_line(provisioned_lab, tmp_path):
    """The first run records each server's host key (0600); after web-01's keys are
    regenerated, the next run refuses it, naming it, and grades nothing."""
    lab = provisioned_lab
    klass = class_file(tmp_path, lab, {"ana": lab.address("lb-01")})
    assignment = assignment_with(tmp_path, {"servers.reachable": 5, "web.nginx": 5})
    home = tmp_path / "home"
    first = grade_live(klass, assignment, tmp_path / "first", home)
    assert first.returncode == 0, first.stdout + first.stderr
    known = home / "labs" / "live-ana" / "known_hosts"
    recorded = known.read_text()
    assert len(recorded.splitlines()) == 3 and stat.S_IMODE(known.stat().st_mode) == 0o600
    assert json.loads((tmp_path / "first" / "results" / "ana.json").read_text())["score"] == 10
    lab_root(
        lab,
        "web-01",
        "mkdir -p /root/old-host-keys && cp -p /etc/ssh/ssh_host_* /root/old-host-keys/ && "
        "rm /etc/ssh/ssh_host_* && ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key"
        " && systemctl restart ssh",
    )
    try:
        second = grade_live(klass, assignment, tmp_path / "second", home)
    finally:
        lab_root(
            lab,
            "web-01",
            "cp -p /root/old-host-keys/* /etc/ssh/ && rm -r /root/old-host-keys && "
            "systemctl restart ssh",
        )
    assert second.returncode == 0, second.stdout + second.stderr
    assert "Traceback" not in second.stdout + second.stderr
    row = next(csv.DictReader((tmp_path / "second" / "grades.csv").open()))
    assert row["status"] == "unreachable" and row["total"] == "", row
    error = row["error"]
    assert "\n" not in error and error.startswith(f"web-01 ({lab.address('web-01')}): host key")
    assert "lb-01" not in error and str(known) in error
    assert known.read_text() == recorded  # the new key was not learnt
    lab.ssh("web-01", "true")  # the lab's own key is back: later tests reach web-01
