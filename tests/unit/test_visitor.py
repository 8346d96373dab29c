"""The grader's requests look like a browser's: nothing in them tells a server it is the grader
(../shared/style.md, "Probes look like visitors"); it finds its own requests in a server's log
by what any visitor's request carries."""

from __future__ import annotations

import socket
import threading
from unittest import mock

import pytest

from checks.lb import misrouted
from lab.core.topology import parse, variant
from lab.facts import haproxy, nginx
from lab.facts import http as host_http
from lab.observe import visitor
from lab.observe.live import LiveLab, browser_headers
from tests.record import read_raw

ANY = mock.ANY
SCRIPT_LIKE = ("python", "urllib", "curl", "lab-check", "lab_check", "grader", "bot")


@pytest.mark.parametrize(
    "method, path, kind",
    [
        ("GET", "/", "page"),
        ("GET", "/about", "page"),
        ("GET", "/static/style.css", "style"),
        ("GET", "/static/app.js", "script"),
        ("GET", "/favicon.ico", "image"),
        ("GET", "/api/status", "fetch"),
        ("POST", "/api/guestbook", "fetch"),
    ],
)
def test_each_request_has_the_headers_firefox_sends_for_it(method, path, kind):
    assert visitor.kind(method, path) == kind
    headers = visitor.headers(method, path, "http://www.foobar.com")
    assert headers["User-Agent"].startswith("Mozilla/5.0 (X11; Linux x86_64; rv:")
    assert headers["Accept-Language"] and headers["Accept-Encoding"].startswith("gzip, deflate")
    text = " ".join(f"{k}: {v}" for k, v in headers.items()).lower()
    assert not [word for word in SCRIPT_LIKE if word in text], text
    if kind == "page":
        assert headers["Upgrade-Insecure-Requests"] == "1" and "Referer" not in headers
    else:
        assert headers["Referer"] == "http://www.foobar.com/"
    if method == "POST":
        assert headers["Origin"] == "http://www.foobar.com"
    # over plain http, Firefox sends no Sec-Fetch-* and offers neither brotli nor zstd: a
    # request that did would be the grader's alone
    assert not [name for name in headers if name.startswith("Sec-Fetch")]
    assert headers["Accept-Encoding"] == "gzip, deflate"
    secure = visitor.headers(method, path, "https://www.foobar.com")
    assert secure["Sec-Fetch-Mode"] == ("navigate" if kind == "page" else ANY)
    assert secure["Accept-Encoding"] == visitor.ENCODINGS


def test_the_grader_offers_every_encoding_a_browser_offers_and_can_read_them():
    assert visitor.ENCODINGS == "gzip, deflate, br, zstd"


def test_a_callers_headers_replace_the_browsers_in_place_and_host_comes_first():
    headers = browser_headers(
        "GET", "http://192.168.1.10/api/status", {"Host": "foobar.com", "accept": "text/plain"}
    )
    assert list(headers)[:3] == ["Host", "User-Agent", "Accept"]
    assert headers["Host"] == "foobar.com" and headers["Accept"] == "text/plain"
    assert headers["Referer"] == "http://foobar.com/"


def test_what_goes_on_the_wire_is_a_browsers_request():
    """A real request of the grader's, read by a socket server on this machine."""
    server = socket.create_server(("127.0.0.1", 0))
    seen = []

    def answer():
        client, _ = server.accept()
        with client:
            data = b""
            while b"\r\n\r\n" not in data:
                data += client.recv(65536)
            seen.append(data.decode("latin-1"))
            client.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        lab = LiveLab(parse(variant("unit-vis", 99)), fleet=None)
        reply = lab.http(f"http://127.0.0.1:{server.getsockname()[1]}/")
        thread.join(5)
    finally:
        server.close()
    assert reply.status_code == 200 and reply.text == "ok"
    lines = seen[0].split("\r\n")
    assert lines[0] == "GET / HTTP/1.1"
    names = [line.split(":", 1)[0] for line in lines[1:] if line]
    assert names == ["Host", *visitor.headers("GET", "/", "http://www.foobar.com")]
    assert "Host: www.foobar.com" in lines
    assert not [word for word in SCRIPT_LIKE if word in seen[0].lower()], seen[0]


def _log() -> str:
    return read_raw("access-log-web-01")


def test_the_grader_counts_its_requests_in_an_access_log_by_client_path_and_browser():
    log = _log()
    # through the balancer (.10) and straight from this machine (.1); not the health checks,
    # nor the curl, nor the page's other files
    assert nginx.count_requests(log, "GET", "/", visitor.USER_AGENT, ["192.168.204.10"]) == 5
    both = ["192.168.204.10", "192.168.204.1"]
    assert nginx.count_requests(log, "GET", "/", visitor.USER_AGENT, both) == 7
    assert nginx.count_requests(log, "GET", "/healthz", visitor.USER_AGENT, both) == 0
    assert nginx.count_requests(log, "GET", "/", visitor.USER_AGENT, ["10.0.0.1"]) == 0
    assert nginx.count_requests("", "GET", "/", visitor.USER_AGENT, both) == 0


def test_a_log_without_user_agents_counts_by_client_and_path_one_without_requests_is_unknown():
    log = _log()
    no_agent = "\n".join(line.rsplit(' "', 1)[0] for line in log.splitlines())
    both = ["192.168.204.10", "192.168.204.1"]
    assert nginx.count_requests(no_agent, "GET", "/", visitor.USER_AGENT, both) == 8  # curl too
    addresses_only = "\n".join(line.split()[0] for line in log.splitlines())
    assert nginx.count_requests(addresses_only, "GET", "/", visitor.USER_AGENT, both) is None


def test_sessions_are_added_up_over_every_backend_with_a_server_at_the_address():
    rows = [
        {"pxname": "web", "svname": "a", "addr": "10.0.0.11:80", "stot": "5"},
        {"pxname": "web", "svname": "b", "addr": "10.0.0.12:80", "stot": "5"},
        {"pxname": "sticky", "svname": "a", "addr": "10.0.0.11:80", "stot": "8"},
        {"pxname": "sticky", "svname": "BACKEND", "addr": "", "stot": "8"},
    ]
    found = haproxy.sessions_at(rows, {"web-01": "10.0.0.11", "web-02": "10.0.0.12"})
    assert found == {"web-01": 13, "web-02": 5}


def test_a_lie_shows_only_when_the_logs_cannot_hold_other_traffic():
    claims = ["web-01", "web-02"] * 4
    assert misrouted(claims, {"web-01": 4, "web-02": 4}, None, alone=True) == ""
    # more requests than answers named it: others' traffic, or a lie; alone, a lie
    assert misrouted(claims, {"web-01": 8, "web-02": None}, None) == ""
    assert "logged 8 of the 8" in misrouted(claims, {"web-01": 8, "web-02": None}, None, True)
    assert misrouted(claims, {"web-01": 8, "web-02": 4}, None, alone=True) == ""
    # fewer: a lie whatever else was sent
    assert "logged 3 such" in misrouted(claims, {"web-01": 3, "web-02": 9}, None)


def test_a_request_made_inside_a_host_carries_the_same_browser():
    assert host_http.AGENT == visitor.USER_AGENT
    assert f"'{visitor.USER_AGENT}'" in host_http.get("127.0.0.1:8000", "/api/status", "www")
