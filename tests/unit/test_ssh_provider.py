"""The ssh provider's inventory: valid files give specs, every mistake is one clear line."""

import socket
import stat
import threading
from contextlib import contextmanager, suppress

import paramiko
import pytest

from lab.core import topology
from lab.core.errors import LabError
from lab.providers.ssh import parse_inventory
from lab.remote.connection import Fleet, HostKeyChanged, HostSpec

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
        (inventory(**{"web-01": {"user": "x", "key": "k", "port": True}}), "port number"),
        (inventory(**{"web-01": {"user": "x", "key": "k", "ssh": None}}), "hosts.web-01.ssh"),
        (inventory(**{"web-01": {"user": "x", "key": "k", "ssh": ["a"]}}), "hosts.web-01.ssh"),
    ],
)
def test_malformed_inventories_name_the_field(data, message):
    with pytest.raises(LabError, match=message):
        parse_inventory(data, TOPO)


def test_an_inventory_without_known_hosts_records_first_keys_and_marks_tunnels(tmp_path):
    data = inventory(**{"web-02": {"ssh": "10.1.2.3", "user": "u", "key": "k"}})
    specs = parse_inventory(data, TOPO, known_hosts=tmp_path / "known_hosts")
    assert all(s.record_host_keys and s.known_hosts == tmp_path / "known_hosts" for s in specs)
    assert [s.tunnel for s in specs] == [False, False, True]  # ssh differs from the address


def test_an_inventory_known_hosts_file_is_enforced_as_given(tmp_path):
    (tmp_path / "pinned").write_text("")
    data = {**inventory(), "known_hosts": "pinned"}
    specs = parse_inventory(data, TOPO, known_hosts=tmp_path / "state", base=tmp_path)
    assert all(s.known_hosts == tmp_path / "pinned" and s.host_keys_pinned for s in specs)
    assert not any(s.record_host_keys for s in specs)
    with pytest.raises(LabError, match="known_hosts: no file"):
        parse_inventory({**inventory(), "known_hosts": "missing"}, TOPO, base=tmp_path)


# -- host keys, against a real SSH handshake with an in-process server on loopback -------------


class _Server(paramiko.ServerInterface):
    def get_allowed_auths(self, username):
        return "publickey"

    def check_auth_publickey(self, username, key):
        return paramiko.AUTH_SUCCESSFUL


@contextmanager
def ssh_server(host_key: paramiko.PKey):
    """An SSH server on 127.0.0.1 that offers host_key and lets any key in; yields its port."""
    listener = socket.create_server(("127.0.0.1", 0))
    transports = []

    def serve():
        while True:
            try:
                sock, _ = listener.accept()
            except OSError:
                return
            transport = paramiko.Transport(sock)
            transport.add_server_key(host_key)
            transports.append(transport)
            with suppress(paramiko.SSHException, EOFError, OSError):  # a client gone
                transport.start_server(server=_Server())

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()
        for transport in transports:
            transport.close()


def spec_for(port: int, tmp_path, **kwargs) -> HostSpec:
    client_key = tmp_path / "id_rsa"
    if not client_key.is_file():
        paramiko.RSAKey.generate(2048).write_private_key_file(str(client_key))
    return HostSpec("web-01", "127.0.0.1", port, "u", client_key, tmp_path / "kh", **kwargs)


def test_the_first_host_key_is_recorded_0600_and_a_changed_one_is_refused_in_one_line(tmp_path):
    first, second = paramiko.RSAKey.generate(2048), paramiko.RSAKey.generate(2048)
    with ssh_server(first) as port:
        spec = spec_for(port, tmp_path, record_host_keys=True)
        with Fleet([spec]) as fleet:
            fleet.opened("web-01")
        recorded = (tmp_path / "kh").read_text()
        assert recorded == f"[127.0.0.1]:{port} ssh-rsa {first.get_base64()}\n"
        assert stat.S_IMODE((tmp_path / "kh").stat().st_mode) == 0o600
        with Fleet([spec]) as fleet:  # the same key again: accepted, nothing added
            fleet.opened("web-01")
        assert (tmp_path / "kh").read_text() == recorded
    with ssh_server(second) as port2:
        # the same address and port, another server: the recorded key is enforced
        (tmp_path / "kh").write_text(recorded.replace(f":{port} ", f":{port2} "))
        spec = spec_for(port2, tmp_path, record_host_keys=True)
        with Fleet([spec]) as fleet, pytest.raises(HostKeyChanged) as refused:
            fleet.opened("web-01")
    message = str(refused.value)
    assert "\n" not in message and message.startswith(f"web-01 (127.0.0.1:{port2}): host key")
    assert second.fingerprint in message and first.fingerprint in message
    assert str(tmp_path / "kh") in message
    assert (
        "ssh-rsa" in (tmp_path / "kh").read_text()
        and (tmp_path / "kh").read_text().count("\n") == 1
    )  # the new key was not learnt


def test_a_pinned_known_hosts_refuses_an_unknown_host(tmp_path):
    with ssh_server(paramiko.RSAKey.generate(2048)) as port:
        (tmp_path / "kh").write_text("")
        spec = spec_for(port, tmp_path, host_keys_pinned=True)
        with Fleet([spec]) as fleet, pytest.raises(paramiko.SSHException, match="not found"):
            fleet.opened("web-01")
    assert (tmp_path / "kh").read_text() == ""
