"""The embedded LXC lab for real: three hosts, their network, idempotence and a clean destroy."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import LabRunner, require_lab_prerequisites, wait_until, write_topology

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("lxc")]
LXCPATH = Path("/var/lib/webstack-lab/containers")
FENCE_PORT = 18997  # listeners on the machine that no lab host may reach


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


@pytest.fixture
def machine_listeners():
    """TCP listeners on the machine on 0.0.0.0 and [::], recording every peer that connects."""
    seen: list[str] = []
    stop = threading.Event()
    servers, threads = [], []
    for family, address in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
        server = socket.socket(family)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            server.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        server.bind((address, FENCE_PORT))
        server.listen()
        server.settimeout(0.2)
        servers.append(server)

        def accept(server=server):
            while not stop.is_set():
                try:
                    conn, peer = server.accept()
                except OSError:
                    continue
                seen.append(peer[0])
                conn.close()

        threads.append(threading.Thread(target=accept, daemon=True))
        threads[-1].start()
    yield seen
    stop.set()
    for thread, server in zip(threads, servers, strict=True):
        thread.join()
        server.close()


def machine_addresses(dev: str = "", family: str = "") -> list[dict]:
    """The machine's addresses but loopback's (of dev, of family), as `ip -j addr` lists them."""
    links = json.loads(subprocess.run(["ip", "-j", "addr"], capture_output=True).stdout)
    return [
        {**info, "dev": link["ifname"]}
        for link in links
        if link["ifname"] != "lo" and link["ifname"] == (dev or link["ifname"])
        for info in link.get("addr_info", [])
        if info["family"] == (family or info["family"])
    ]


def test_hosts_reach_nothing_on_the_machine_over_ipv4_or_ipv6(lab, machine_listeners):
    """A host tries every address of the machine, IPv4 and IPv6, as a hostile script would.

    The lab bridge should carry no IPv6 at all; IPv6 is turned on for the probe anyway, so
    that the firewall is shown to hold on its own, with a route through the bridge to the
    machine's global IPv6 addresses."""
    bridge = f"wsl-{lab.name}"
    sysctl = Path(f"/proc/sys/net/ipv6/conf/{bridge}/disable_ipv6")
    ipv6_off = sysctl.read_text().strip()
    sysctl.write_text("0\n")
    routes = []
    try:
        on_bridge = wait_until(lambda: machine_addresses(bridge, "inet6"), timeout=10)
        gateway6 = on_bridge[0]["local"]
        addresses = machine_addresses()
        targets = []
        for info in addresses:
            if info["family"] == "inet6" and info.get("scope") == "link":
                targets.append(f"{info['local']}%eth0")
            else:
                targets.append(info["local"])
            if info["family"] == "inet6" and info.get("scope") == "global":
                routes.append(info["local"])
        for address in routes:
            lab.ssh("web-01", f"sudo ip -6 route replace {address} via {gateway6} dev eth0")
        probes = " ".join(
            f"(timeout 3 bash -c 'echo hostile > /dev/tcp/{t}/{FENCE_PORT}' 2>/dev/null "
            f"&& echo 'REACHED {t}' || echo 'blocked {t}') &"
            for t in targets
        )
        out = lab.ssh("web-01", f"{probes} wait")
    finally:
        sysctl.write_text(f"{ipv6_off}\n")
        for address in routes:
            lab.ssh("web-01", f"sudo ip -6 route del {address}", check=False)
    gateway = lab.data["network"]["subnet"].rsplit(".", 1)[0] + ".1"
    assert gateway in targets and any(t.startswith("fe80:") for t in targets), targets
    assert "REACHED" not in out and out.count("blocked") == len(targets), out
    assert machine_listeners == [], f"a lab host reached the machine: {machine_listeners}"
    assert ipv6_off == "1", f"IPv6 is on on the lab bridge {bridge}"
    # what the lab needs still works: the package mirror through NAT, and SSH from the machine
    apt = lab.ssh("web-01", "sudo apt-get update 2>&1")
    assert "Err:" not in apt and ("Hit:" in apt or "Get:" in apt), apt
    assert lab.ssh("web-01", "hostname").strip() == "web-01"


def test_up_replaces_the_ipv4_only_table_of_an_older_lab(lab):
    table = f"webstack_lab_{lab.name.replace('-', '_')}"
    subprocess.run(["nft", "add", "table", "ip", table], check=True)
    lab("up")
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    assert f"table inet {table}" in tables and f"table ip {table}" not in tables, tables


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


def test_a_restore_with_an_endless_stdin_returns(lab):
    """`yes | lab snapshot restore NAME`: no remote command waits for that stdin to end, and
    the question is answered by --yes, or refused in one line without a terminal."""
    lab("snapshot", "save", "piped", "--force")
    try:
        for args, code in (([], 2), (["--yes"], 0)):
            with subprocess.Popen(["yes"], stdout=subprocess.PIPE) as yes:
                try:
                    result = subprocess.run(
                        [sys.executable, "-m", "lab", "snapshot", "restore", "piped", *args],
                        stdin=yes.stdout,
                        capture_output=True,
                        text=True,
                        env=lab.env(),
                        timeout=120,
                    )
                finally:
                    yes.kill()
            assert result.returncode == code, result.stdout + result.stderr
            assert "Traceback" not in result.stderr, result.stderr
            if not args:  # refused: one line (and its hint) naming --yes
                assert "--yes" in result.stderr and len(result.stderr.strip().splitlines()) <= 2
        assert "restored in" in result.stdout, result.stdout
        assert lab.ssh("web-01", "hostname").strip() == "web-01"
    finally:
        lab("snapshot", "delete", "piped", check=False)


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
