"""The four-host topology (lab-ha.yml): its virtual address, where the site is reached, the
Vagrantfile with four hosts, and the ha component's refusal on a lab with one balancer."""

from pathlib import Path

import pytest
import yaml

from lab.core import resources, topology
from lab.core.errors import LabError
from provision import COMPONENTS, ha
from provision.engine import render

from .test_vagrant import machines

HA_FILE = resources.topology_file("lab-ha.yml")


def ha_data() -> dict:
    return yaml.safe_load(HA_FILE.read_text())


def test_the_shipped_ha_topology_has_two_balancers_and_a_virtual_address():
    lab = topology.load(HA_FILE)
    assert [h.name for h in lab.with_role("lb")] == ["lb-01", "lb-02"]
    assert len(lab.hosts) == 4
    assert lab.virtual_address == "192.168.58.100"
    assert lab.site_address == lab.virtual_address
    assert lab.one_with_role("dns").name == "lb-01"


def test_without_a_virtual_address_the_site_is_at_the_balancer():
    lab = topology.load(topology.PACKAGED)
    assert lab.virtual_address is None
    assert lab.site_address == lab.host("lb-01").address


@pytest.mark.parametrize(
    "value, message",
    [
        ("192.168.58.300", "network.virtual_address: "),
        ("10.0.0.5", "is not a host address in 192.168.58.0/24"),
        ("192.168.58.255", "is not a host address"),
        ("192.168.58.13", "192.168.58.13 is already taken"),
        ("192.168.58.1", "is already taken"),  # the machine's own address on the lab network
    ],
)
def test_bad_virtual_addresses_are_one_clear_line(value, message):
    data = ha_data()
    data["network"]["virtual_address"] = value
    with pytest.raises(LabError) as caught:
        topology.parse(data)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_two_balancers_need_a_virtual_address_and_one_balancer_has_no_use_for_one():
    data = ha_data()
    del data["network"]["virtual_address"]
    with pytest.raises(LabError, match=r"lb-01, lb-02 all have role 'lb'.*virtual_address"):
        topology.parse(data)
    data = yaml.safe_load(topology.PACKAGED.read_text())
    data["network"]["virtual_address"] = "192.168.56.100"
    with pytest.raises(LabError, match="needs two or more hosts with role 'lb'"):
        topology.parse(data)


def test_a_variant_of_the_ha_topology_moves_the_virtual_address_too():
    data = topology.variant("e2e-ha", 84, HA_FILE)
    lab = topology.parse(data)
    assert lab.virtual_address == "192.168.84.100"
    assert lab.host("lb-02").address == "192.168.84.13"


def test_the_shipped_ha_topology_is_found_by_its_name_anywhere(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LAB_TOPOLOGY", raising=False)
    assert topology.find_topology_file("lab-ha.yml") == HA_FILE
    with pytest.raises(LabError, match=r"topology file not found: nothere\.yml"):
        topology.find_topology_file("nothere.yml")
    (tmp_path / "lab-ha.yml").write_text("name: mine\n")
    assert topology.find_topology_file("lab-ha.yml") == Path("lab-ha.yml")  # one's own first


@pytest.mark.parametrize("vagrant_provider", ["virtualbox", "lxc"])
def test_the_vagrantfile_makes_all_four_hosts(vagrant_provider):
    found = machines(vagrant_provider, HA_FILE)
    assert list(found) == ["lb-01", "lb-02", "web-01", "web-02"]
    if vagrant_provider == "virtualbox":
        assert found["lb-02"]["networks"] == [
            {"kind": "private_network", "ip": "192.168.58.13", "netmask": "255.255.255.0"}
        ]
    else:
        settings = dict(tuple(pair) for pair in found["lb-02"]["provider"]["customize"])
        assert settings["net.0.ipv4.address"] == "192.168.58.13/24"
        assert settings["net.0.link"] == "wsl-foobar-ha"


def test_ha_is_refused_on_a_lab_with_one_balancer_in_one_line():
    reason = COMPONENTS["ha"].unavailable(topology.load(topology.PACKAGED))
    assert reason == "ha needs a second load balancer and a virtual address: use lab-ha.yml"
    assert COMPONENTS["ha"].unavailable(topology.load(HA_FILE)) == ""
    base = topology.load(topology.PACKAGED)
    assert not COMPONENTS["lb"].unavailable(base) and not COMPONENTS["dns"].unavailable(base)


def test_keepalived_configuration_is_unicast_with_the_peer_and_a_generated_password():
    lab = topology.load(HA_FILE)
    lb01, lb02 = lab.with_role("lb")
    text = render(
        "keepalived.conf.j2",
        host=lb02,
        peers=[lb01],
        interface="eth1",
        priority=140,
        router_id=ha.router_id(lab),
        password="s3cr3t-x",
        virtual_address=lab.virtual_address,
        prefixlen=lab.prefixlen,
    )
    assert "unicast_src_ip 192.168.58.13" in text
    assert "unicast_peer {\n        192.168.58.10\n    }" in text
    assert "192.168.58.100/24 dev eth1" in text
    assert "auth_pass s3cr3t-x" in text and "virtual_router_id 100" in text
    assert "priority 140" in text and "track_script" in text


def test_the_zone_points_www_at_the_virtual_address_and_ns1_at_the_dns_host():
    from provision import dns
    from provision.runner import Run

    lab = topology.load(HA_FILE)
    zone = dns.zone_text(Run(lab, None, {}))
    assert "@       IN A    192.168.58.100" in zone
    assert "ns1     IN A    192.168.58.10" in zone
    base = dns.zone_text(Run(topology.load(topology.PACKAGED), None, {}))
    assert "@       IN A    192.168.56.10" in base


def test_lab_provision_ha_on_the_three_host_lab_is_one_line_and_exit_2(
    monkeypatch, capsys, tmp_path
):
    from lab.cli import app as cli

    monkeypatch.setenv("LAB_HOME", str(tmp_path))
    monkeypatch.delenv("LAB_TOPOLOGY", raising=False)
    assert cli.main(["provision", "ha", "--topology", str(topology.PACKAGED)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: ha needs a second load balancer and a virtual address: use lab-ha.yml"
