"""The ssh provider on existing servers: the provisioned lab's hosts, reached only through an
inventory, graded and provisioned by the same code, and left untouched by `lab destroy`."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import LabRunner, changed_count, write_inventory, write_topology

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("reference")]


@pytest.fixture(scope="module")
def ssh_lab(provisioned_lab, tmp_path_factory):
    """A lab whose servers are the provisioned lab's, listed in an inventory; named after
    their subnet (ssh62 for e2e-web), so that runs beside each other use names of their own."""
    directory = tmp_path_factory.mktemp("ssh")
    octet = int(provisioned_lab.address("lb-01").split(".")[2])
    runner = LabRunner(write_topology(directory, f"ssh{octet}", octet))  # the same addresses
    inventory = write_inventory(directory / "inventory.yml", provisioned_lab)
    runner.inventory = inventory
    try:
        yield runner
    finally:
        runner("destroy", check=False, LAB_INVENTORY=str(inventory))


def test_a_malformed_inventory_is_one_clear_line(ssh_lab, tmp_path):
    bad = tmp_path / "inventory.yml"
    bad.write_text("hosts:\n  lb-01: {user: lab}\n")
    result = ssh_lab("up", "--provider", "ssh", check=False, LAB_INVENTORY=str(bad))
    assert result.returncode == 2
    assert result.stderr.startswith("error: inventory") and "no entry for web-01" in result.stderr


def test_an_unreachable_server_is_named(ssh_lab, provisioned_lab, tmp_path):
    inventory = write_inventory(tmp_path / "inventory.yml", provisioned_lab, **{"web-01": 2})
    result = ssh_lab("up", "--provider", "ssh", check=False, LAB_INVENTORY=str(inventory))
    assert result.returncode == 1
    assert "web-01 did not accept SSH" in result.stderr and "lb-01" not in result.stderr
    ssh_lab("destroy", LAB_INVENTORY=str(inventory))


def test_existing_servers_are_graded_and_provisioned_like_any_lab(ssh_lab):
    env = {"LAB_INVENTORY": str(ssh_lab.inventory)}
    ssh_lab("up", "--provider", "ssh", **env)
    assert "running" in ssh_lab("status", **env).stdout
    assert ssh_lab("ssh", "web-02", "--", "hostname", **env).stdout.strip() == "web-02"
    known = Path("/var/lib/webstack-lab/labs") / ssh_lab.name / "known_hosts"  # first keys
    assert len(known.read_text().splitlines()) == 3 and known.stat().st_mode & 0o777 == 0o600
    checked = ssh_lab("check", check=False, **env)
    assert checked.returncode == 0 and "score 105/105" in checked.stdout, checked.stdout
    # this lab has its own passwords: the first provision rotates them, and all still works
    assert "FAILED" not in ssh_lab("provision", **env).stdout
    assert ssh_lab("check", check=False, **env).returncode == 0
    assert changed_count(ssh_lab("provision", **env).stdout) == 0


def test_destroy_forgets_the_lab_and_leaves_the_servers(ssh_lab, provisioned_lab):
    ssh_lab("destroy", LAB_INVENTORY=str(ssh_lab.inventory))
    assert not (Path("/var/lib/webstack-lab/labs") / ssh_lab.name).exists()
    assert provisioned_lab.ssh("web-01", "systemctl is-active nginx").strip() == "active"
