"""The ssh provider's inventory: valid files give specs, every mistake is one clear line."""

import pytest

from lab import topology
from lab.errors import LabError
from lab.providers.ssh import parse_inventory

TOPO = topology.load(topology.PACKAGED)


def inventory(**overrides):
    hosts = {name: {"user": "student", "key": "~/.ssh/id_ed25519"} for name in TOPO.names}
    hosts.update(overrides)
    return {"hosts": hosts}


def test_a_valid_inventory_gives_one_spec_per_host_in_topology_order():
    data = inventory(
        **{"web-02": {"ssh": "10.1.2.3", "port": 2222, "user": "ubuntu", "key": "/keys/web"}}
    )
    specs = parse_inventory(data, TOPO)
    assert [s.name for s in specs] == ["lb-01", "web-01", "web-02"]
    assert specs[0].address == "192.168.56.10"  # defaults to the topology's address
    assert (specs[2].address, specs[2].port, specs[2].user) == ("10.1.2.3", 2222, "ubuntu")
    assert str(specs[2].key_file) == "/keys/web"
    assert not specs[0].host_keys_pinned


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "expected `hosts:`"),
        ({"hosts": None}, "expected `hosts:`"),
        (inventory(**{"web-03": {"user": "x", "key": "k"}}), "unknown host 'web-03'"),
        ({"hosts": {"lb-01": {"user": "x", "key": "k"}}}, "no entry for web-01, web-02"),
        (
            inventory(**{"web-01": {"user": "x", "key": "k", "password": "p"}}),
            "unknown field 'password'",
        ),
        (inventory(**{"web-01": {"user": "x", "key": "k", "port": "ssh"}}), "port number"),
        (inventory(**{"web-01": {"key": "k"}}), "hosts.web-01.user is required"),
        (inventory(**{"web-01": {"user": "x"}}), "hosts.web-01.key"),
    ],
)
def test_malformed_inventories_name_the_field(data, message):
    with pytest.raises(LabError, match=message):
        parse_inventory(data, TOPO)
