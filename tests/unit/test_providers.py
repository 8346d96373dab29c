"""Provider selection and the LXC network's pure parts."""

import ipaddress
import subprocess

import pytest

from lab import providers
from lab.core import topology
from lab.core.errors import LabError
from lab.providers import lxcnet


def topo():
    return topology.load(topology.PACKAGED)


def test_a_running_lab_keeps_its_provider():
    assert providers.choose(None, "lxc", "auto") == "lxc"
    with pytest.raises(LabError, match="already up with provider 'lxc'"):
        providers.choose("vagrant", "lxc", "auto")


def test_flag_then_topology_then_machine(monkeypatch):
    assert providers.choose("lxc", None, "vagrant") == "lxc"
    monkeypatch.setattr(providers, "default_for_machine", lambda: "lxc")
    assert providers.choose(None, None, "auto") == "lxc"


def test_unknown_provider_lists_the_available_ones():
    with pytest.raises(LabError, match="available: lxc"):
        providers.choose("docker", None, "auto")


def test_no_provider_on_the_machine_says_what_to_install(monkeypatch):
    monkeypatch.setattr(providers.shutil, "which", lambda tool: None)
    with pytest.raises(LabError) as exc:
        providers.default_for_machine()
    assert "apt-get install lxc" in exc.value.hint


def test_bridge_and_table_names_fit_the_kernel_limits():
    t = topology.parse({**_raw(), "name": "abcdefghij"})
    assert len(lxcnet.bridge_name(t)) <= 15
    assert lxcnet.table_name(t) == "webstack_lab_abcdefghij"


def test_nft_ruleset_masquerades_the_lab_and_fences_everything_else():
    rules = lxcnet.nft_ruleset(topo(), "10.255.255.53")
    assert rules.startswith("table inet webstack_lab_webstack {")  # IPv4 and IPv6 alike
    assert 'ip saddr 192.168.56.0/24 oifname != "wsl-webstack" masquerade' in rules
    assert "ip daddr 10.255.255.53 udp dport 53 accept" in rules
    assert 'iifname "wsl-webstack" counter name "refused_inside" drop' in rules  # the machine
    assert 'iifname "wsl-webstack" oifname "wsl-*" counter name "refused_inside" drop' in rules
    assert 'iifname "wsl-webstack" counter name "refused_outside" drop' in rules  # the rest
    # mirrors unknown: web traffic out, over IPv4 only
    assert 'iifname "wsl-webstack" meta nfproto ipv4 tcp dport { 80, 443 } accept' in rules
    only = lxcnet.nft_ruleset(topo(), "10.255.255.53", ["203.0.113.80", "203.0.113.81"])
    assert "ip daddr { 203.0.113.80, 203.0.113.81 } tcp dport { 80, 443 } accept" in only
    assert "8.8.8.8" not in rules


ROUTES = [
    {"dst": "default", "gateway": "192.0.2.1", "dev": "eth0"},
    {"dst": "192.0.2.0/24", "dev": "eth0"},
    {"dst": "192.168.56.0/24", "dev": "wsl-webstack"},
    {"dst": "192.168.0.0/16", "dev": "vpn0"},
    {"type": "broadcast", "dst": "192.168.57.255", "dev": "x"},
]


def test_routes_overlapping_the_lab_subnet_are_found_but_not_the_labs_own():
    subnet = ipaddress.IPv4Network("192.168.56.0/24")
    assert lxcnet.overlapping(ROUTES, subnet, "wsl-webstack") == ["192.168.0.0/16 dev vpn0"]
    assert lxcnet.overlapping(ROUTES[:3], subnet, "wsl-webstack") == []


def test_loopback_only_resolvers_are_refused(tmp_path, monkeypatch):
    conf = tmp_path / "resolv.conf"
    conf.write_text("nameserver 127.0.0.53\n")
    real_path = lxcnet.Path
    monkeypatch.setattr(lxcnet, "Path", lambda p: conf if "resolv" in str(p) else real_path(p))
    with pytest.raises(LabError, match="resolver"):
        lxcnet.upstream_resolver()
    conf.write_text("# comment\nnameserver 127.0.0.53\nnameserver 10.1.2.3\n")
    assert lxcnet.upstream_resolver() == "10.1.2.3"


def _raw():
    return {
        "network": {"subnet": "192.168.56.0/24"},
        "hosts": {"lb-01": {"address": "192.168.56.10", "roles": ["lb"]}},
    }


def test_the_reason_for_a_provider_is_said(monkeypatch):
    monkeypatch.setattr(providers, "default_for_machine", lambda: "lxc")
    assert "LXC is installed" in providers.reason(None, None, "auto")
    assert providers.reason("vagrant", None, "auto") == "chosen with --provider"
    assert providers.reason(None, "lxc", "auto").startswith("the provider this lab")


def test_lxc_needs_root(monkeypatch):
    from lab.core import system

    monkeypatch.setattr(system.platform, "is_root", lambda: False)
    with pytest.raises(LabError, match="needs root; run it with sudo"):
        system.require_root("lab up with the lxc provider")


class _State:
    def __init__(self, directory):
        self.dir = directory / "labs" / "webstack"


def test_destroy_removes_the_inet_table_and_an_older_labs_ip_table(tmp_path, monkeypatch):
    commands = []

    def nft(args, **kwargs):
        commands.append(args)
        return subprocess.CompletedProcess(args, 0, "", "")  # every table is there

    monkeypatch.setattr(lxcnet, "run", nft)
    network = lxcnet.LabNetwork(topo(), _State(tmp_path))
    monkeypatch.setattr(network, "bridge_exists", lambda: False)
    network._remove()
    deleted = [c[-2:] for c in commands if c[:3] == ["nft", "delete", "table"]]
    assert deleted == [["inet", "webstack_lab_webstack"], ["ip", "webstack_lab_webstack"]]


def test_ipv6_is_turned_off_on_the_lab_bridge_only(tmp_path, monkeypatch):
    for bridge in ("wsl-webstack", "eth0"):
        (tmp_path / bridge).mkdir()
        (tmp_path / bridge / "disable_ipv6").write_text("0\n")
    monkeypatch.setattr(lxcnet, "IPV6_CONF", tmp_path)
    lxcnet.LabNetwork(topo(), _State(tmp_path)).disable_ipv6()
    assert (tmp_path / "wsl-webstack" / "disable_ipv6").read_text() == "1\n"
    assert (tmp_path / "eth0" / "disable_ipv6").read_text() == "0\n"
