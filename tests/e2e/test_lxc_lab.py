"""The embedded LXC lab for real: three hosts, their network, idempotence and a clean destroy."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import LabRunner, require_lab_prerequisites, write_topology

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("lxc")]
LXCPATH = Path("/var/lib/webstack-lab/containers")


def test_each_host_reports_its_own_hostname(lab):
    for host in lab.hosts:
        assert lab.ssh(host, "hostname").strip() == host


def test_each_host_has_its_own_identity(lab):
    ids = {lab.ssh(h, "cat /etc/machine-id").strip() for h in lab.hosts}
    keys = {lab.ssh(h, "cat /etc/ssh/ssh_host_ed25519_key.pub").split()[1] for h in lab.hosts}
    assert len(ids) == 3 and len(keys) == 3


def test_hosts_reach_each_other_on_lab_addresses(lab):
    for host in lab.hosts:
        for other in lab.hosts:
            if other != host:
                probe = f"timeout 3 bash -c '</dev/tcp/{lab.address(other)}/22' && echo open"
                assert lab.ssh(host, probe).strip() == "open", f"{host} -> {other}"


def test_the_machine_reaches_every_host(lab):
    for host in lab.hosts:
        with socket.create_connection((lab.address(host), 22), timeout=3) as sock:
            assert sock.recv(64).startswith(b"SSH-2.0-OpenSSH")


def test_nothing_phones_home(lab):
    out = lab.ssh(
        "web-01",
        "systemctl is-enabled systemd-timesyncd apt-daily.timer apt-daily-upgrade.timer || true",
    )
    assert out.split() == ["masked", "masked", "masked"]


def test_sudo_works_without_password_and_root_login_is_refused(lab):
    assert lab.ssh("lb-01", "sudo -n id -u").strip() == "0"
    result = subprocess.run(
        ["ssh", "-F", _config_file(lab), "-l", "root", "lb-01", "true"],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.returncode != 0


def test_ssh_config_works_with_openssh(lab):
    for host in lab.hosts:
        out = subprocess.run(
            ["ssh", "-F", _config_file(lab), host, "hostname"],
            capture_output=True,
            text=True,
            timeout=20,
        )
        assert out.stdout.strip() == host, out.stderr


def test_status_shows_every_host_running(lab):
    out = lab("status").stdout
    for host in lab.hosts:
        line = next(line for line in out.splitlines() if f" {host} " in line)
        assert lab.address(host) in line and "running" in line and "lxc" in line


def test_up_again_changes_nothing(lab):
    before = {h: lab.ssh(h, "cat /proc/1/stat | cut -d' ' -f22") for h in lab.hosts}
    started = time.monotonic()
    out = lab("up").stdout
    assert time.monotonic() - started < 10
    assert "cached" in out
    after = {h: lab.ssh(h, "cat /proc/1/stat | cut -d' ' -f22") for h in lab.hosts}
    assert before == after  # same init processes: nothing was restarted or recreated


def test_a_boot_that_times_out_names_the_hosts_and_keeps_them(lab):
    result = lab("up", check=False, LAB_BOOT_TIMEOUT="0")
    assert result.returncode == 1
    assert all(f"{h}: {h} did not accept SSH" in result.stderr for h in lab.hosts)
    assert lab.ssh("web-01", "hostname").strip() == "web-01"


def test_a_routed_subnet_is_refused_not_hijacked(topology_dir):
    require_lab_prerequisites()
    runner = LabRunner(write_topology(topology_dir, "taken", 59))
    subprocess.run(["ip", "link", "add", "wsltaken0", "type", "bridge"], check=True)
    try:
        subprocess.run(["ip", "addr", "add", "192.168.59.1/24", "dev", "wsltaken0"], check=True)
        subprocess.run(["ip", "link", "set", "wsltaken0", "up"], check=True)
        result = runner("up", check=False)
        assert result.returncode == 2
        assert "192.168.59.0/24 is already routed" in result.stderr
        assert not Path("/sys/class/net/wsl-taken").exists()
    finally:
        runner("destroy", check=False)
        subprocess.run(["ip", "link", "delete", "wsltaken0"], check=False)


def test_interrupted_up_is_completed_by_the_next_up_then_destroy_leaves_nothing(topology_dir):
    """A second lab beside the first: Ctrl-C mid-way, re-run, then assert a clean destroy."""
    require_lab_prerequisites()
    runner = LabRunner(write_topology(topology_dir, "e2e-intr", 58))
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lab", "up"],
            env=runner.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as a terminal's
        )
        _wait_for(lambda: any(LXCPATH.glob("e2e-intr-*")), timeout=120)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode in (130, 0), err  # 0 only if it finished before the signal landed
        assert "Traceback" not in err
        runner("up")
        assert runner.ssh("web-02", "hostname").strip() == "web-02"
        assert json.loads(_state(runner).read_text())["provider"] == "lxc"
    finally:
        runner("destroy", check=False)
    assert not list(LXCPATH.glob("e2e-intr-*")), "containers left behind"
    assert not Path("/sys/class/net/wsl-e2e-intr").exists(), "bridge left behind"
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    assert "webstack_lab_e2e_intr" not in tables, "nft table left behind"
    assert not _state(runner).parent.exists(), "state left behind"
    assert (LXCPATH / "image-bookworm").is_dir(), "the cached image must stay"


def _state(runner: LabRunner) -> Path:
    return Path("/var/lib/webstack-lab/labs") / runner.name / "state.json"


def _config_file(lab: LabRunner) -> str:
    return str(Path("/var/lib/webstack-lab/labs") / lab.name / "ssh_config")


def _wait_for(predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")
