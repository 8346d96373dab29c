"""The Vagrant provider for real: the Vagrantfile's machines through vagrant-lxc for the
four-host topology (lab-ha.yml), provisioned and graded by the same code as the embedded lab,
the balancers' virtual address moving between two Vagrant machines, then destroyed without a
trace."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import (
    LabRunner,
    changed_count,
    require_lab_prerequisites,
    wait_until,
    write_topology,
)

pytestmark = [pytest.mark.e2e, pytest.mark.long, pytest.mark.xdist_group("vagrant")]


@pytest.fixture(scope="module")
def vagrant_lab(tmp_path_factory):
    require_lab_prerequisites()
    directory = tmp_path_factory.mktemp("vagrant")
    runner = LabRunner(write_topology(directory, "e2e-vag", 65, "lab-ha.yml"))
    env = {"LAB_VAGRANT_PROVIDER": "lxc"}
    try:
        runner("up", "--provider", "vagrant", **env)
        yield runner
    finally:
        runner("destroy", check=False)


def test_doctor_says_which_vagrant_provider_and_box(vagrant_lab):
    out = " ".join(vagrant_lab("doctor", "--provider", "vagrant").stdout.split())
    assert "Vagrant provider lxc" in out and "webstack-lab/debian-12" in out


def test_vagrant_machines_are_the_topologys_hosts(vagrant_lab):
    status = vagrant_lab("status").stdout
    for host in vagrant_lab.hosts:
        line = next(line for line in status.splitlines() if f" {host} " in line)
        assert vagrant_lab.address(host) in line and "running" in line and "vagrant" in line
        assert vagrant_lab.ssh(host, "hostname").strip() == host
        assert vagrant_lab.address(host) in vagrant_lab.ssh(host, "ip -br -4 addr show eth0")


def test_provision_and_check_work_unchanged_on_vagrant_machines(vagrant_lab):
    # the base design, then the second balancer's half (the site answers at the virtual address)
    for component in ((), ("ha",)):
        assert "FAILED" not in vagrant_lab("provision", *component).stdout
    vip = vagrant_lab.data["network"]["virtual_address"]
    # keepalived starts as backup and takes the address after about 3 adverts
    assert wait_until(lambda: f" {vip}/" in vagrant_lab.ssh("lb-01", "ip -o -4 addr show"), 20)
    result = vagrant_lab("check", check=False)
    assert result.returncode == 0, result.stdout
    assert "score 105/105" in result.stdout
    assert changed_count(vagrant_lab("provision").stdout) == 0


def test_the_balancers_address_moves_between_vagrant_machines(vagrant_lab):
    result = vagrant_lab("check", "ha", check=False, timeout=300)
    assert result.returncode == 0 and "score 20/20" in result.stdout, result.stdout


def test_destroy_leaves_nothing_behind(vagrant_lab):
    vagrant_lab("destroy")
    containers = subprocess.run(["lxc-ls", "-1"], capture_output=True, text=True).stdout.split()
    assert not [c for c in containers if c.startswith("vagrant-e2e-vag-")], containers
    assert not Path("/sys/class/net/wsl-e2e-vag").exists(), "bridge left behind"
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    assert "webstack_lab_e2e_vag" not in tables, "nft table left behind"
    assert not Path("/var/lib/webstack-lab/labs/e2e-vag").exists(), "state left behind"
