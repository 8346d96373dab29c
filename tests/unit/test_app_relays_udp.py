"""app.server asks a host's UDP ports too: a relay may carry a visitor's request from datagrams
to the application's TCP socket, and its answer back (socat UDP4-RECVFROM:…,fork TCP:…).

The relay here is a real one on this machine's loopback, in front of a real HTTP server
answering as the application; the grader's own clients (Python here, perl on a lab host) ask it."""

from __future__ import annotations

import socket
import subprocess
import threading
from http.server import ThreadingHTTPServer

import pytest

from lab.facts import http as host_http
from lab.facts import ss
from lab.observe import probes
from lab.observe.live import datagram_request, exchange_datagram
from tests.unit.test_app_relays_elsewhere import STATUS, Application

BOUND = """\
UNCONN 0 0 0.0.0.0:68 0.0.0.0:* users:(("dhclient",pid=40,fd=7))
UNCONN 0 0 127.0.0.53%lo:53 0.0.0.0:* users:(("systemd-resolve",pid=41,fd=13))
UNCONN 0 0 0.0.0.0:9001 0.0.0.0:* users:(("socat",pid=300,fd=5))
UNCONN 0 0 *:9002 *:* users:(("python3",pid=301,fd=3))
"""
VOUCHED = {40: "/usr/sbin/dhclient", 300: "/usr/bin/socat", 301: "/usr/bin/python3.11"}


@pytest.fixture
def udp_relay():
    """The application behind a UDP relay on loopback, as socat UDP4-RECVFROM,fork does it:
    each datagram to a TCP connection of its own, the answer back in datagrams. Its port."""
    app = ThreadingHTTPServer(("127.0.0.1", 0), Application)
    threading.Thread(target=app.serve_forever, daemon=True).start()
    relay = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    relay.bind(("127.0.0.1", 0))
    relay.settimeout(0.2)
    done = threading.Event()

    def carry(request: bytes, visitor) -> None:
        with socket.create_connection(app.server_address, timeout=5) as upstream:
            upstream.sendall(request)
            while data := upstream.recv(1000):  # a datagram per piece, as it comes
                relay.sendto(data, visitor)

    def serve() -> None:
        while not done.is_set():
            try:
                request, visitor = relay.recvfrom(65535)
            except TimeoutError:
                continue
            threading.Thread(target=carry, args=(request, visitor)).start()

    server = threading.Thread(target=serve)
    server.start()
    yield relay.getsockname()[1]
    done.set()
    server.join()
    relay.close()
    app.shutdown()
    app.server_close()


def test_udp_sockets_are_read_from_ss_and_unix_datagram_sockets_are_not():
    found = ss.parse(
        BOUND + 'u_dgr UNCONN 0 0 /run/systemd/notify 1 * 0 users:(("systemd",pid=1,fd=1))\n'
    )
    assert [(s.kind, s.address, s.port) for s in found] == [
        ("udp", "*", 68),
        ("udp", "127.0.0.53%lo", 53),
        ("udp", "*", 9001),
        ("udp", "*", 9002),
    ]
    assert found[1].local_only and found[2].over_ipv4 and not found[2].over_ipv6
    assert found[3].over_ipv4 and found[3].over_ipv6


def test_every_udp_port_beyond_loopback_is_a_candidate_but_the_distributions_own_servers():
    candidates = probes.datagram_candidates(ss.parse(BOUND), VOUCHED, "10.0.0.11", ["fe80::1"])
    assert candidates == {
        ("10.0.0.11", 9001): ["socat"],
        ("10.0.0.11", 9002): ["python3.11"],
        ("fe80::1", 9002): ["python3.11"],
    }
    # a copy of socat named dhclient is not vouched for: asked
    assert ("10.0.0.11", 68) in probes.datagram_candidates(ss.parse(BOUND), {}, "10.0.0.11")


def test_this_machine_gets_the_application_through_a_udp_relay(udp_relay):
    raw = exchange_datagram("127.0.0.1", udp_relay, datagram_request("/api/status", "x"), 3)
    reply = host_http.parse_reply(raw)
    assert reply.status == 200 and reply.json() == STATUS
    assert probes.answered_by_application(reply.json(), {1092}, {}) == 1092


def test_a_lab_host_gets_it_with_the_graders_perl_client(udp_relay):
    line = host_http.datagram("127.0.0.1", udp_relay, datagram_request("/api/status", "x"), 3)
    raw = subprocess.run(line, shell=True, capture_output=True, text=True, timeout=30).stdout
    assert host_http.parse_reply(raw).json() == STATUS


def test_a_closed_or_silent_udp_port_brings_nothing():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        assert exchange_datagram("127.0.0.1", silent.getsockname()[1], b"GET /", 0.3) == ""
        port = silent.getsockname()[1]
    assert exchange_datagram("127.0.0.1", port, b"GET /", 3) == ""  # refused at once


def test_the_datagram_is_a_browsers_request():
    request = datagram_request("/api/status", "foobar.com").decode()
    assert request.startswith("GET /api/status HTTP/1.1\r\nHost: foobar.com\r\nUser-Agent: ")
    assert request.endswith("\r\n\r\n") and "python" not in request.lower()
