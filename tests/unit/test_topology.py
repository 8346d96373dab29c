"""Topology loading and validation: every mistake names its field."""

import ipaddress

import pytest
import yaml

from lab.core import topology
from lab.core.errors import LabError


def base():
    return {
        "name": "webstack",
        "domain": "foobar.com",
        "network": {"subnet": "192.168.56.0/24"},
        "hosts": {
            "lb-01": {"address": "192.168.56.10", "roles": ["lb", "dns"]},
            "web-01": {"address": "192.168.56.11", "roles": ["web", "app", "db-primary"]},
            "web-02": {"address": "192.168.56.12", "roles": ["web", "app", "db-replica"]},
        },
    }


def test_packaged_topology_is_the_documents_lab():
    topo = topology.load(topology.PACKAGED)
    assert topo.names == ["lb-01", "web-01", "web-02"]
    assert [h.address for h in topo.hosts] == ["192.168.56.10", "192.168.56.11", "192.168.56.12"]
    assert topo.domain == "foobar.com"
    assert topo.gateway == "192.168.56.1"
    assert topo.one_with_role("lb").name == "lb-01"
    assert topo.one_with_role("db-primary").name == "web-01"
    assert [h.name for h in topo.with_role("web")] == ["web-01", "web-02"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(name="Bad_Name"), "name 'Bad_Name'"),
        (lambda d: d.update(name="much-too-long-name"), "1-10 lowercase"),
        (lambda d: d.update(provider="docker"), "provider 'docker'"),
        (lambda d: d.update(domain="not a domain"), "domain"),
        (lambda d: d["network"].update(subnet="192.168.56.1/24"), "network.subnet"),
        (lambda d: d["network"].update(subnet="8.8.8.0/24"), "private IPv4"),
        (lambda d: d.update(hosts={}), "hosts:"),
        (lambda d: d["hosts"]["web-01"].update(address="10.0.0.1"), "hosts.web-01.address"),
        (lambda d: d["hosts"]["web-01"].update(address="192.168.56.1"), "already taken"),
        (lambda d: d["hosts"]["web-02"].update(address="192.168.56.11"), "already taken"),
        (lambda d: d["hosts"]["web-02"].update(roles=["cache"]), "unknown role 'cache'"),
        (lambda d: d["hosts"].update({"Web;rm": {"address": "192.168.56.20"}}), "host name"),
    ],
)
def test_invalid_topologies_are_refused_with_the_field_named(change, message):
    data = base()
    change(data)
    with pytest.raises(LabError, match=message):
        topology.parse(data)


def test_unknown_host_lists_the_valid_ones():
    topo = topology.parse(base())
    with pytest.raises(LabError, match="this lab has: lb-01, web-01, web-02"):
        topo.host("web-03")


def test_malformed_yaml_is_one_clear_error(tmp_path):
    path = tmp_path / "lab.yml"
    path.write_text("hosts: [unclosed\n")
    with pytest.raises(LabError, match="cannot read topology"):
        topology.load(path)


def test_topology_file_lookup_prefers_explicit_then_env(tmp_path, monkeypatch):
    explicit = tmp_path / "mine.yml"
    explicit.write_text("x: 1\n")
    monkeypatch.setenv("LAB_TOPOLOGY", str(explicit))
    assert topology.find_topology_file() == explicit
    with pytest.raises(LabError, match="not found"):
        topology.find_topology_file(str(tmp_path / "missing.yml"))


def test_second_lab_on_its_own_subnet():
    data = base()
    data["name"] = "class2"
    data["network"]["subnet"] = "192.168.57.0/24"
    for i, host in enumerate(data["hosts"].values()):
        host["address"] = f"192.168.57.{10 + i}"
    topo = topology.parse(data)
    assert topo.subnet == ipaddress.IPv4Network("192.168.57.0/24")


def test_variant_moves_every_host_to_the_new_subnet():
    topo = topology.parse(topology.variant("class3", 70))
    assert topo.name == "class3" and str(topo.subnet) == "192.168.70.0/24"
    assert [h.address for h in topo.hosts] == ["192.168.70.10", "192.168.70.11", "192.168.70.12"]


def code_base(tmp_path, module="wsgi.py"):
    directory = tmp_path / "mine"
    (directory / "static").mkdir(parents=True)
    (directory / module).write_text("application = None\n")
    return directory


def test_the_reference_app_is_the_default_code_base():
    topo = topology.parse(base())
    assert topo.app == topology.REFERENCE_APP
    assert topo.app.entry == "app:app" and (topo.app.path / "app.py").is_file()
    assert not topo.app.schema.exists()


def test_app_source_is_relative_to_the_topology_file(tmp_path):
    directory = code_base(tmp_path)
    data = base() | {"app": {"source": "mine", "entry": "wsgi:application"}}
    topo = topology.parse(data, source=tmp_path / "lab.yml")
    assert topo.app == topology.AppSource(directory, "wsgi:application")
    assert topo.app.schema == directory / "schema.sql"


def test_app_entry_defaults_to_app_app_and_may_name_a_package(tmp_path):
    code_base(tmp_path, module="app.py")
    topo = topology.parse(base() | {"app": {"source": "mine"}}, source=tmp_path / "lab.yml")
    assert topo.app.entry == "app:app"
    (tmp_path / "mine" / "site").mkdir()
    (tmp_path / "mine" / "site" / "__init__.py").write_text("")
    (tmp_path / "mine" / "site" / "wsgi.py").write_text("")
    data = base() | {"app": {"source": str(tmp_path / "mine"), "entry": "site.wsgi:app"}}
    assert topology.parse(data).app.entry == "site.wsgi:app"  # an absolute source, no lab.yml


@pytest.mark.parametrize(
    ("app", "message"),
    [
        ("mine", "app: expected a mapping"),
        ({"entry": "wsgi:application"}, "app.source: expected"),
        ({"source": "mine", "workers": 4}, "app: unknown key 'workers'"),
        ({"source": "missing"}, "app.source: no directory .*missing"),
        ({"source": "mine", "entry": "wsgi"}, "app.entry 'wsgi' must be module:callable"),
        ({"source": "mine", "entry": "wsgi:app; rm -rf /"}, "app.entry"),
        ({"source": "mine", "entry": "-b 0.0.0.0:80 wsgi:app"}, "app.entry"),
        ({"source": "mine", "entry": "main:app"}, "app.entry: module 'main' is not in"),
    ],
)
def test_invalid_code_bases_are_refused_with_the_field_named(tmp_path, app, message):
    code_base(tmp_path)
    with pytest.raises(LabError, match=message):
        topology.parse(base() | {"app": app}, source=tmp_path / "lab.yml")


def test_variant_keeps_a_relative_code_base_pointing_at_the_same_directory(tmp_path):
    directory = code_base(tmp_path)
    source = tmp_path / "lab.yml"
    source.write_text(yaml.safe_dump(base() | {"app": {"source": "mine", "entry": "wsgi:x"}}))
    data = topology.variant("other", 71, source=source)
    assert data["app"] == {"source": str(directory), "entry": "wsgi:x"}
    assert topology.parse(data).app.path == directory
