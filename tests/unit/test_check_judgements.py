"""Each check's judgement on observations recorded from the reference lab, and on broken ones."""

import copy
import json
from pathlib import Path

import pytest

from checks import CATALOGUE
from checks.app import is_local_only, listen_addresses
from checks.lb import backend_servers, parse_show_stat

RECORDED = Path(__file__).parent / "fixtures" / "observations"
FIXTURES = Path(__file__).parent / "fixtures"


def recorded(check_id):
    return json.loads((RECORDED / f"{check_id}.json").read_text())


def judge(check_id, observation):
    return CATALOGUE[check_id]().judge(observation)


def test_every_check_has_a_recorded_observation_and_passes_it():
    for check_id in CATALOGUE:
        verdict = judge(check_id, recorded(check_id))
        assert verdict.passed, (check_id, verdict.evidence)
        assert verdict.evidence


def _set(path, value):
    def mutate(o):
        target = o
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return mutate


def _rr(order):
    def mutate(o):
        o["answers"] = [{"header": h, "app_host": h, "status": 200} for h in order]

    return mutate


BROKEN = [
    (
        "servers.reachable",
        _set(["web-02"], {"error": "web-02: could not run `hostname`: timed out"}),
        "timed out",
    ),
    ("servers.reachable", _set(["web-02", "hostname"], "localhost"), "calls itself 'localhost'"),
    ("web.nginx", _set(["web-01", "server"], "Apache/2.4"), "Apache"),
    ("web.nginx", _set(["web-02", "listeners"], ["python3"]), "port 80 belongs to"),
    ("web.static", _set(["web-01", "/", "etag"], ""), "did not come from a file"),
    ("web.static", _set(["web-02", "/static/style.css", "status"], 404), "HTTP 404"),
    (
        "web.reverse-proxy",
        _set(["web-01", "replies", 1, "json", "request_id"], None),
        "same answer",
    ),
    (
        "web.reverse-proxy",
        _set(["web-02", "replies", 0], {"status": 502, "json": None}),
        "HTTP 502",
    ),
    ("web.reverse-proxy", _set(["web-01", "process"], ""), "not a running application"),
    (
        "web.served-by",
        _set(["web-02", "headers"], ["web-01", "web-01", "web-01"]),
        "sent X-Served-By: web-01",
    ),
    ("app.server", _set(["web-01", "listening"], ["0.0.0.0:8000"]), "reachable from the network"),
    ("app.server", _set(["web-02", "listening"], []), "listens nowhere"),
    (
        "app.database",
        _set(["web-01", "database"], {"error": "(2003, 'Can't connect')"}),
        "no database data",
    ),
    (
        "files.code-base",
        lambda o: o["hosts"]["web-02"]["files"].update({"app.py": "0" * 64}),
        "different app.py",
    ),
    (
        "files.code-base",
        lambda o: o["hosts"]["web-01"]["files"].pop("static/app.js"),
        "missing static/app.js",
    ),
    ("lb.haproxy", _set(["listeners"], ["nginx"]), "port 80 belongs to"),
    ("lb.haproxy", _set(["status"], 503), "no server"),
    ("lb.round-robin", _rr(["web-01", "web-01", "web-02", "web-02"]), "not round robin"),
    ("lb.round-robin", _rr(["web-01"] * 6), "only web-01 answered"),
    (
        "lb.round-robin",
        lambda o: o["answers"][0].update(header="web-02", app_host="web-01"),
        "but the application ran on",
    ),
    ("lb.active-active", _set(["servers", "web-02", "bck"], "1"), "backup"),
    ("lb.active-active", _set(["burst"], ["web-01"] * 8), "all served by web-01"),
    ("lb.health-checks", _set(["servers", "web-01", "check_status"], ""), "not health-checked"),
    ("lb.health-checks", _set(["servers", "web-02", "status"], "DOWN"), "web-02 is DOWN"),
    ("db.servers", _set(["hosts", "web-01", "log_bin"], "0"), "no binary log"),
    ("db.servers", _set(["hosts", "web-02", "server_id"], "2"), "both servers have server-id"),
    ("db.replication", _set(["seen"], False), "did not appear"),
    ("db.replica-read-only", _set(["attempt"], "WRITE-ACCEPTED"), "accepted a write"),
    ("db.app-roles", _set(["hosts", "web-02", "writes_to"], "127.0.0.1"), "not the primary"),
    ("db.app-roles", _set(["hosts", "web-02", "role"], "primary"), "expected its local replica"),
    (
        "dns.www",
        _set(["records"], [["www.foobar.com.", "A", "8.8.8.8"]]),
        "not the load balancer's address",
    ),
    (
        "dns.www",
        _set(["records"], [["www.foobar.com.", "CNAME", "nowhere.foobar.com."]]),
        "no A record at the end",
    ),
    ("dns.www", _set(["authoritative"], False), "not authoritatively"),
    ("dns.www", _set(["rcode"], "NXDOMAIN"), "NXDOMAIN"),
    ("http.www", _set(["status"], 503), "HTTP 503"),
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


def test_every_check_has_a_broken_case():
    assert {c for c, _, _ in BROKEN} == set(CATALOGUE)


def test_show_stat_parsing_recorded_from_haproxy():
    rows = parse_show_stat((FIXTURES / "haproxy-2.6-show-stat.csv").read_text())
    servers = backend_servers(rows, ["web-01", "web-02"])
    assert set(servers) == {"web-01", "web-02"}
    assert servers["web-01"]["check_status"] == "L7OK" and servers["web-02"]["bck"] == "0"
    backend = next(r for r in rows if r["pxname"] == "web" and r["svname"] == "BACKEND")
    assert backend["algo"] == "roundrobin"


def test_listen_addresses_of_a_process_from_ss():
    ss = (
        'LISTEN 0 2048 127.0.0.1:8000 0.0.0.0:* users:(("gunicorn",pid=2048,fd=5),'
        '("gunicorn",pid=2031,fd=5))\n'
        'LISTEN 0 511 0.0.0.0:80 0.0.0.0:* users:(("nginx",pid=2232,fd=5))\n'
        'LISTEN 0 4096 /run/app.sock 12345 * 0 users:(("uwsgi",pid=77,fd=3))\n'
    )
    assert listen_addresses(ss, "2031") == ["127.0.0.1:8000"]
    assert listen_addresses(ss, "77") == ["/run/app.sock"]
    assert is_local_only("127.0.0.1:8000") and is_local_only("[::1]:8000")
    assert is_local_only("/run/app.sock")
    assert not is_local_only("0.0.0.0:8000") and not is_local_only("192.168.56.11:8000")
    assert not is_local_only("*:8000")
