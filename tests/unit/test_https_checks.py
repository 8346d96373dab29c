"""The https section's judgements on observations recorded from a reference HTTPS lab (dev-tls,
Debian 12, HAProxy 2.6), on broken copies of them, and on correct builds unlike the reference;
the pure helpers: redirect following, certificate names, captured requests."""

from __future__ import annotations

import copy
import socket
import struct

import pytest
from requests.structures import CaseInsensitiveDict

from checks import CATALOGUE
from checks.https import covers, headers_of, request_head
from lab.observe.live import upgraded
from provision.engine import render
from tests.helpers import judge, recorded

HTTPS = [cid for cid, cls in CATALOGUE.items() if cls.section == "https"]


def test_the_reference_passes_every_https_check():
    assert len(HTTPS) == 6 and all(CATALOGUE[c].points == 5 for c in HTTPS)
    for check_id in HTTPS:
        verdict = judge(check_id, recorded(check_id))
        assert verdict.passed, (check_id, verdict.evidence)


def cert(name="www.foobar.com", **changes):
    def mutate(o):
        o["served"][name]["certificate"].update(changes)

    return mutate


def served(name, **changes):
    def mutate(o):
        o["served"][name].update(changes)

    return mutate


def no_tls(name, error):
    def mutate(o):
        o["served"][name] = {"name": name, "address": o["served"][name]["address"], "error": error}

    return mutate


def no_lab_ca(o):
    for each in o["served"].values():
        each.update(lab_ca=False, verify_error="no lab CA")
        each["certificate"]["by_lab_ca"] = False


def followed(served_by, hostnames=None):
    def mutate(o):
        o["followed"]["served_by"] = served_by
        if hostnames is not None:
            o["hostnames"] = hostnames

    return mutate


def relayed(host, head):
    def mutate(o):
        o["relayed"] = {h: "" for h in o["relayed"]}
        o["relayed"][host] = head

    return mutate


RELAYED = (
    "GET /?lab-check=c9b33311ae48-r-2 HTTP/1.1\r\nhost: www.foobar.com\r\n"
    "x-forwarded-proto: https\r\n"
)


def names_for(name, names, common_names=None):
    def mutate(o):
        o[name]["certificate"]["names"] = names
        if common_names is not None:
            o[name]["certificate"]["common_names"] = common_names

    return mutate


def answer(host, **changes):
    def mutate(o):
        key = next(k for k in o["answers"] if k.startswith(host))
        o["answers"][key].update(changes)

    return mutate


def hsts(values):
    def mutate(o):
        o["answers"]["/api/status"]["values"] = values

    return mutate


def head(host, old, new):
    def mutate(o):
        o["received"][host] = o["received"][host].replace(old, new)

    return mutate


def explicit_port(o) -> str:
    return f"https://www.foobar.com:443{o['answers']['www.foobar.com']['path']}"


BROKEN = [
    (
        "https.trusted",
        no_tls("www.foobar.com", "connection refused"),
        "(www.foobar.com): no TLS: connection refused",
    ),
    ("https.trusted", no_lab_ca, "the lab has no CA"),
    (
        "https.trusted",  # the lab CA's certificate for www only; foobar.com's (SNI) self-signed
        cert("foobar.com", by_lab_ca=False, self_signed=True, issuer="CN=foobar.com"),
        "(foobar.com): CN=foobar.com is issued by CN=foobar.com (self-signed), not by the lab CA",
    ),
    (
        "https.trusted",
        cert(by_lab_ca=False, self_signed=True, issuer="CN=www.foobar.com"),
        "(self-signed), not by the lab CA",
    ),
    ("https.trusted", cert(not_after="2026-01-01T00:00:00+00:00"), "expired on 2026-01-01"),
    ("https.trusted", cert(not_before="2030-01-01T00:00:00+00:00"), "valid only from 2030-01-01"),
    (
        "https.trusted",
        served("foobar.com", verify_error="permitted subtree violation"),
        "does not verify against the lab CA: permitted subtree violation",
    ),
    ("https.names", names_for("www.foobar.com", ["foobar.com"]), "www.foobar.com is not among"),
    (
        "https.names",
        names_for("foobar.com", ["*.foobar.com"], ["*.foobar.com"]),
        "foobar.com is not among",
    ),
    (
        "https.names",
        names_for("foobar.com", [], ["foobar.com"]),
        "only the certificate's common name (CN), which browsers ignore",
    ),
    ("https.redirect", answer("www", status=200, location=""), "answered HTTP 200, not 301"),
    ("https.redirect", answer("www", status=302), "answered HTTP 302"),
    (
        "https.redirect",
        answer("foobar", location="https://foobar.com/"),
        "not https://foobar.com/api/status",
    ),
    (
        "https.redirect",
        answer("www", location="http://www.foobar.com/"),
        "not https://www.foobar.com/",
    ),
    (
        "https.redirect",
        lambda o: o.update(followed={"error": "GET https://x/: connection refused"}),
        "the redirect leads nowhere",
    ),
    (
        "https.redirect",
        lambda o: o.update(followed={"status": 503, "served_by": [], "url": ""}),
        "HTTP 503 from no web server",
    ),
    ("https.redirect", followed(["nginx"]), "HTTP 200 from nginx"),
    (
        "https.redirect",  # a fixed name that is neither a host of the lab nor a hostname
        followed(["web-01"], {"web-01": "ip-10-0-0-5", "web-02": "ip-10-0-0-6"}),
        "HTTP 200 from web-01",
    ),
    (
        "https.protocols",
        lambda o: o["tried"].update({"TLSv1": "TLSv1"}),
        "accepts TLSv1: old, broken protocols",
    ),
    (
        "https.protocols",
        lambda o: o["tried"].update(
            {"TLSv1.2": "refused: connection refused", "TLSv1.3": "refused: connection refused"}
        ),
        "refuses TLS 1.2 and 1.3 too",
    ),
    (
        "https.protocols",  # this machine's OpenSSL cannot offer TLS 1.0: not seen refused
        lambda o: o["tried"].update({"TLSv1": "refused: NO_PROTOCOLS_AVAILABLE"}),
        "TLSv1 untested: this machine's OpenSSL cannot offer it",
    ),
    (
        "https.protocols",
        lambda o: o["tried"].update(
            {"TLSv1.1": "untested: this machine's OpenSSL was built without it"}
        ),
        "TLSv1.1 untested",
    ),
    ("https.hsts", hsts([]), "https://www.foobar.com/api/status (HTTP 200) has no Strict"),
    ("https.hsts", hsts(["includeSubDomains"]), "has no max-age"),
    ("https.hsts", hsts(["max-age=0"]), "max-age=0 tells browsers to forget"),
    ("https.hsts", hsts(["max-age=1", "max-age=2"]), "sends Strict-Transport-Security 2 times"),
    (
        "https.forwarded",
        lambda o: o["received"].update({"web-02": ""}),
        "web-02 received none of 2 HTTPS requests",
    ),
    (
        "https.forwarded",
        head("web-01", "x-forwarded-for: 192.168.72.1", "x-forwarded-for: 10.9.9.9"),
        "web-01 was not told the client's address 192.168.72.1",
    ),
    (
        "https.forwarded",
        head("web-02", "x-forwarded-proto: https", "x-forwarded-proto: http"),
        "web-02 was not told the request came over HTTPS",
    ),
    (
        "https.forwarded",
        head("web-01", "\r\nx-forwarded-proto: https", ""),
        "no X-Forwarded-Proto https",
    ),
    (
        "https.forwarded",  # http-request set-header X-Forwarded-For 192.168.72.1
        relayed("web-02", RELAYED + "x-forwarded-for: 192.168.72.1"),
        "a request from web-01 (192.168.72.11) reached web-02 with x-forwarded-for: "
        "192.168.72.1, x-forwarded-proto: https: not that client's address",
    ),
    (
        "https.forwarded",  # for=192.168.72.1 is not for=192.168.72.11
        relayed("web-01", RELAYED + 'Forwarded: for="192.168.72.1";proto=https'),
        "reached web-01 with x-forwarded-proto: https, forwarded: ",
    ),
    (
        "https.forwarded",
        lambda o: (
            relayed("web-01", "")(o)
            or o["relay"].update(error="web-01 could not connect to 192.168.72.10:443: timed out")
        ),
        "no web server received any of 1 HTTPS requests sent from web-01 (192.168.72.11): "
        "web-01 could not connect",
    ),
]


@pytest.mark.parametrize(
    ("check_id", "break_it", "message"),
    BROKEN,
    ids=[f"{c}-{i}" for i, (c, _, _) in enumerate(BROKEN)],
)
def test_a_broken_observation_fails_with_a_useful_message(check_id, break_it, message):
    observation = copy.deepcopy(recorded(check_id))
    break_it(observation)
    verdict = judge(check_id, observation)
    assert not verdict.passed
    assert message in verdict.evidence, verdict.evidence


def test_every_https_check_has_a_broken_case():
    assert {c for c, _, _ in BROKEN} == set(HTTPS)


CORRECT_VARIANTS = [
    (  # another certificate of the lab CA for foobar.com (SNI), naming it alone
        "https.trusted",
        cert("foobar.com", subject="CN=foobar.com,O=student", names=["foobar.com"]),
    ),
    ("https.redirect", followed(["ip-10-0-0-5"], {"web-01": "ip-10-0-0-5", "web-02": "x"})),
    ("https.names", names_for("www.foobar.com", ["*.foobar.com", "foobar.com"])),
    ("https.names", names_for("foobar.com", ["FOOBAR.com.", "www.foobar.com"])),
    ("https.redirect", answer("www", status=308)),
    ("https.redirect", lambda o: answer("www", location=explicit_port(o))(o)),
    (
        "https.protocols",  # TLS 1.3 only is TLS 1.2 "and newer" too
        lambda o: o["tried"].update({"TLSv1.2": "refused: TLSV1_ALERT_PROTOCOL_VERSION"}),
    ),
    ("https.hsts", hsts(['max-age="63072000"; includeSubDomains; preload'])),
    (
        "https.forwarded",  # RFC 7239 instead of the X- headers
        head(
            "web-01",
            "x-forwarded-proto: https\r\nx-forwarded-for: 192.168.72.1",
            'Forwarded: for="192.168.72.1";proto=https',
        ),
    ),
    (
        "https.forwarded",  # a proxy chain: the client is one of the addresses
        head("web-02", "x-forwarded-for: 192.168.72.1", "X-Forwarded-For: 10.0.0.7, 192.168.72.1"),
    ),
    (
        "https.forwarded",  # RFC 7239 for the relayed request too
        relayed("web-01", RELAYED + 'Forwarded: for="192.168.72.11";proto=https'),
    ),
]


@pytest.mark.parametrize(("check_id", "vary"), CORRECT_VARIANTS)
def test_correct_builds_unlike_the_reference_pass(check_id, vary):
    observation = copy.deepcopy(recorded(check_id))
    vary(observation)
    verdict = judge(check_id, observation)
    assert verdict.passed, verdict.evidence


def test_the_recordings_show_the_lab_ca_and_a_refusal_by_the_server():
    assert all(s["certificate"]["by_lab_ca"] for s in recorded("https.trusted")["served"].values())
    assert "TLSV1_ALERT_PROTOCOL_VERSION" in recorded("https.protocols")["tried"]["TLSv1"]


@pytest.mark.parametrize(
    ("url", "status", "location", "expected"),
    [
        (
            "http://192.168.72.10/x?y=1",
            301,
            "https://www.foobar.com/x?y=1",
            ("https://192.168.72.10/x?y=1", "https://www.foobar.com/x?y=1"),
        ),
        (
            "http://192.168.72.10/",
            308,
            "https://192.168.72.10:8443/",
            ("https://192.168.72.10:8443/", "https://192.168.72.10:8443/"),
        ),
        ("http://192.168.72.10/", 301, "https://evil.example/", None),  # another site
        ("http://192.168.72.10/", 301, "http://www.foobar.com/", None),  # not to https
        ("http://192.168.72.10/", 301, "/elsewhere", None),
        ("http://192.168.72.10/", 301, "https://www.foobar.com:x/", None),
        ("http://192.168.72.10/", 200, "https://www.foobar.com/", None),
        ("https://192.168.72.10/", 301, "https://www.foobar.com/", None),  # once only
    ],
)
def test_the_grader_follows_only_a_redirect_to_https_on_the_same_site(
    url, status, location, expected
):
    headers = CaseInsensitiveDict({"location": location})
    assert upgraded(url, "www.foobar.com", status, headers) == expected


def test_certificate_names_cover_hosts_like_browsers_match_them():
    assert covers("www.foobar.com", "WWW.foobar.com")
    assert covers("*.foobar.com", "www.foobar.com")
    assert not covers("*.foobar.com", "foobar.com")
    assert not covers("*.foobar.com", "a.www.foobar.com")
    assert not covers("foobar.com", "www.foobar.com")


def packet(payload: bytes, source: str = "192.168.72.10") -> str:
    """An IPv4/TCP packet as the sniffer prints it (hex), with options in the TCP header."""
    tcp = struct.pack("!HHIIBBHHH", 40000, 80, 1, 1, 8 << 4, 0x18, 502, 0, 0) + b"\x01" * 12
    ip = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(tcp) + len(payload),
        1,
        0,
        64,
        socket.IPPROTO_TCP,
        0,
        socket.inet_aton(source),
        socket.inet_aton("192.168.72.11"),
    )
    return (ip + tcp + payload).hex()


def test_the_request_head_is_read_from_a_captured_packet():
    request = b"GET /?lab-check=a-0 HTTP/1.1\r\nhost: www\r\nX-Forwarded-For: 1.2.3.4\r\n\r\nbody"
    found = request_head(packet(request))
    assert found == "GET /?lab-check=a-0 HTTP/1.1\r\nhost: www\r\nX-Forwarded-For: 1.2.3.4"
    assert headers_of(found) == {"host": ["www"], "x-forwarded-for": ["1.2.3.4"]}
    assert request_head("") == request_head("zz") == ""
    assert request_head(packet(request)[:10]) == ""


def test_the_balancer_speaks_tls_only_once_the_https_component_installed_its_certificate():
    values = dict(servers=[], address="192.168.56.10", subnet="192.168.56.0/24")
    plain = render("haproxy.cfg.j2", **values)
    assert ":443" not in plain and "redirect" not in plain
    secure = render("haproxy.cfg.j2", tls="/etc/haproxy/certs/site.pem", **values)
    assert "bind *:443 ssl crt /etc/haproxy/certs/site.pem ssl-min-ver TLSv1.2" in secure
    assert "redirect scheme https code 301 unless { ssl_fc }" in secure
