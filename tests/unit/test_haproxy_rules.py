"""HAProxy's rules beside `balance` and `check` that decide who takes a request or how a server's
health is known: a second backend that frontends route some visitors to, `use-server`, and
`tcp-check`/`http-check connect` aimed at another port. Read from haproxy.cfg as HAProxy reads
it, and judged."""

from __future__ import annotations

import copy

from lab.facts import haproxy
from tests.helpers import judge, recorded

SINGLING_OUT = """
global
    stats socket /run/haproxy/admin.sock mode 660 level admin
defaults
    mode http
frontend www
    bind *:80
    acl has_cookie req.hdr_cnt(cookie) gt 0
    use_backend web if !has_cookie
    default_backend web_sticky
backend web
    option tcp-check
    tcp-check connect port 22
    use-server web-01 if has_cookie
    server web-01 192.168.80.11:80 check
    server web-02 192.168.80.12:80 check
backend web_sticky
    balance source
    server s1 192.168.80.11:80 check
    server s2 192.168.80.12:80 check
backend leftover
    balance source
    server s1 192.168.80.11:80 check
"""


def test_routes_check_rules_and_use_server_are_read_per_backend():
    config = haproxy.parse_config(SINGLING_OUT)
    backends = {b.name: b for b in config.backends}
    assert config.routes == {"web", "web_sticky"}
    assert [config.routed(b) for b in config.backends] == [True, True, False]
    assert backends["web"].check_connects == [("", 22)]
    assert backends["web"].chooses == ["use-server web-01 if has_cookie"]
    assert backends["web_sticky"].check_connects == []


def test_the_lines_these_rules_are_on_travel_from_the_balancer():
    kept = [
        line
        for line in SINGLING_OUT.splitlines()
        if line.strip().split(" ", 1)[0] in (*haproxy.SECTIONS, *haproxy.KEYWORDS)
    ]
    assert haproxy.parse_config("\n".join(kept)) == haproxy.parse_config(SINGLING_OUT)


def test_a_backend_named_by_the_request_may_be_any_backend():
    config = haproxy.parse_config(
        "frontend www\n    use_backend %[req.hdr(host),lower]\n"
        "backend b\n    server s 10.0.0.1:80\n"
    )
    assert config.routes is None and config.routed(config.backends[0])


def test_check_rules_of_a_defaults_section_serve_backends_with_none_of_their_own():
    config = haproxy.parse_config(
        "defaults\n    tcp-check connect port 22\nbackend a\n    server s 10.0.0.1:80 check\n"
        "backend b\n    tcp-check connect\n    server s 10.0.0.1:80 check\n"
    )
    assert [b.check_connects for b in config.backends] == [[("", 22)], [("", 0)]]


def with_rules(check_id: str, **rules: dict) -> dict:
    """check_id's recorded observation with these backends' rules (routed unless said)."""
    o = copy.deepcopy(recorded(check_id))
    view = o.get("balancer", o)
    view["rules"] = {
        name: {"routed": True, "connects": [], "chooses": []} | r for name, r in rules.items()
    }
    return o


def sticky_backend(o: dict, routed: bool) -> dict:
    """o with a second backend of both web servers that balances `source`."""
    extra = [s | {"backend": "web_sticky", "balance": "source"} for s in o["balancer"]["servers"]]
    o["balancer"]["servers"] += extra
    o["balancer"]["algorithms"]["web_sticky"] = "source"
    o["balancer"]["rules"]["web_sticky"] = {"routed": routed, "connects": [], "chooses": []}
    return o


def test_a_second_backend_that_visitors_are_routed_to_is_judged_too():
    verdict = judge("lb.round-robin", sticky_backend(with_rules("lb.round-robin", web={}), True))
    assert not verdict.passed
    assert "HAProxy's backend web_sticky balances with `balance source`" in verdict.evidence


def test_a_backend_no_frontend_routes_to_is_not_judged():
    verdict = judge("lb.round-robin", sticky_backend(with_rules("lb.round-robin", web={}), False))
    assert verdict.passed, verdict.evidence


def test_use_server_rules_take_requests_out_of_the_turns():
    o = with_rules("lb.round-robin", web={"chooses": ["use-server web-01 if has_cookie"]})
    verdict = judge("lb.round-robin", o)
    assert not verdict.passed
    assert "picks the server itself for some requests (`use-server web-01" in verdict.evidence


def test_health_checks_that_connect_to_another_port_or_address_fail():
    o = with_rules("lb.health-checks", web={"connects": [("", 22)]})
    verdict = judge("lb.health-checks", o)
    assert not verdict.passed
    assert "web-01: its health checks connect to 192.168.80.11:22" in verdict.evidence
    o = with_rules("lb.health-checks", web={"connects": [("192.168.80.11", 80)]})
    verdict = judge("lb.health-checks", o)
    assert not verdict.passed
    assert "web-02: its health checks connect to 192.168.80.11:80" in verdict.evidence


def test_health_checks_that_connect_to_the_web_port_pass():
    for connects in ([("", 0)], [("", 80)], [("", 22), ("", 80)]):  # each rule must succeed
        o = with_rules("lb.health-checks", web={"connects": connects})
        verdict = judge("lb.health-checks", o)
        assert verdict.passed, (connects, verdict.evidence)
