"""The Vagrantfile (validated by Vagrant, evaluated by a recording stand-in) and the provider's
pure parts: ssh-config parsing, box choice, error lines."""

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from lab.core.errors import LabError
from lab.core.topology import PACKAGED
from lab.providers import vagrant as provider

ROOT = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).parent / "vagrantfile_probe.rb"


def machines(vagrant_provider: str, topology: Path = PACKAGED) -> dict:
    env = {**os.environ, "VAGRANTFILE": str(ROOT / "Vagrantfile"), "LAB_TOPOLOGY": str(topology)}
    env.pop("LAB_BRIDGE", None)
    env.pop("LAB_APT_CACHE", None)
    out = subprocess.run(
        ["ruby", str(PROBE), vagrant_provider], env=env, capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out)


def test_vagrant_validates_the_vagrantfile():
    env = {**os.environ, "VAGRANT_CWD": str(ROOT), "VAGRANT_DEFAULT_PROVIDER": "lxc"}
    result = subprocess.run(["vagrant", "validate"], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("vagrant_provider", ["virtualbox", "libvirt"])
def test_laptop_providers_get_the_topology_addresses_on_a_private_network(vagrant_provider):
    found = machines(vagrant_provider)
    assert list(found) == ["lb-01", "web-01", "web-02"]
    for name, address in zip(
        found, ("192.168.56.10", "192.168.56.11", "192.168.56.12"), strict=True
    ):
        assert found[name]["hostname"] == name
        assert found[name]["networks"] == [
            {"kind": "private_network", "ip": address, "netmask": "255.255.255.0"}
        ]
    assert found["web-01"]["box"] in (
        "bento/debian-12",
        "bento/debian-12-arm64",
        "debian/bookworm64",
    )


def test_lxc_machines_sit_on_the_lab_bridge_with_their_fixed_address():
    found = machines("lxc")
    web02 = found["web-02"]
    assert web02["networks"] == []  # private_network does not work with LXC 5
    assert web02["box"] == "webstack-lab/debian-12"
    settings = dict(tuple(pair) for pair in web02["provider"]["customize"])
    assert settings["net.0.link"] == "wsl-webstack"
    assert settings["net.0.ipv4.address"] == "192.168.56.12/24"
    assert settings["net.0.ipv4.gateway"] == "192.168.56.1"
    assert web02["provider"]["ssh_ip_addr"] == [["192.168.56.12"]]


def test_the_vagrantfile_follows_another_topology(tmp_path):
    data = yaml.safe_load(PACKAGED.read_text())
    data["name"] = "class2"
    data["network"]["subnet"] = "10.20.0.0/16"
    data["hosts"] = {
        "lb-01": {"address": "10.20.0.5", "roles": ["lb"]},
        "web-07": {"address": "10.20.1.7", "roles": ["web"]},
    }
    topology = tmp_path / "lab.yml"
    topology.write_text(yaml.safe_dump(data))
    found = machines("virtualbox", topology)
    assert list(found) == ["lb-01", "web-07"]
    assert found["web-07"]["networks"][0] == {
        "kind": "private_network",
        "ip": "10.20.1.7",
        "netmask": "255.255.0.0",
    }
    lxc = machines("lxc", topology)["web-07"]["provider"]
    assert ["net.0.link", "wsl-class2"] in lxc["customize"]
    assert lxc["container_name"] == [["vagrant-class2-web-07"]]


SSH_CONFIG = """\
Host lb-01
  HostName 192.168.56.10
  User vagrant
  Port 22
  UserKnownHostsFile /dev/null
  StrictHostKeyChecking no
  IdentityFile /var/lib/webstack-lab/labs/webstack/vagrant/machines/lb-01/lxc/private_key
  IdentitiesOnly yes

Host web-01
  HostName 127.0.0.1
  User vagrant
  Port 2200
  IdentityFile "/home/ann/.vagrant.d/insecure_private_key"
"""


def test_one_vagrant_ssh_config_gives_every_machine():
    found = provider.parse_ssh_config(SSH_CONFIG, ["lb-01", "web-01", "web-02"])
    assert set(found) == {"lb-01", "web-01"}
    assert found["web-01"] == {
        "hostname": "127.0.0.1",
        "port": 2200,
        "user": "vagrant",
        "key": "/home/ann/.vagrant.d/insecure_private_key",
    }
    assert found["lb-01"]["key"].endswith("/machines/lb-01/lxc/private_key")


def test_boxes_for_each_provider_and_cpu():
    assert provider.box_for("virtualbox", "arm64").startswith("bento/debian-12-arm64")
    assert provider.box_for("virtualbox", "x86_64").startswith("bento/debian-12 ")
    assert provider.box_for("libvirt", "x86_64") == "debian/bookworm64"
    assert "lab box build" in provider.box_for("lxc", "x86_64")


def test_an_unknown_vagrant_provider_is_refused(monkeypatch):
    monkeypatch.setenv("LAB_VAGRANT_PROVIDER", "hyperv")
    with pytest.raises(LabError, match="unknown Vagrant provider 'hyperv'"):
        provider.pick_vagrant_provider()


def test_no_vagrant_is_one_clear_line(run_lab, tmp_path):
    result = run_lab(
        "up", "--provider", "vagrant", env={"LAB_HOME": tmp_path, "PATH": "/nonexistent"}
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: vagrant is not installed")
