"""Each check's judgement on observations recorded from the reference lab, and on broken ones
(every base check here; the extra sections' checks also in test_SECTION_checks.py).

`python -m tests.record --observations` records them again from a live reference lab.
"""

import copy
import json
from pathlib import Path

import pytest

from checks import CATALOGUE
from checks.base import BASE_SECTIONS, CheckError, Status

RECORDED = Path(__file__).parent / "fixtures" / "observations"
BASE = [check_id for check_id, cls in CATALOGUE.items() if cls.section in BASE_SECTIONS]


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


def _order(hosts):
    def mutate(o):
        o["answers"] = [{"status": 200, "served_by": h} for h in hosts]
        o["received"] = {
            h: [i for i, x in enumerate(hosts) if x == h] for h in ("web-01", "web-02")
        }
        o["sent"] = {h: hosts.count(h) for h in ("web-01", "web-02")}

    return mutate


def _behaviour(left, back):
    def mutate(o):
        o["stat"] = None
        o["socket"] = False
        o["behaviour"] = {"host": "web-02", "lb": "lb-01", "left_after": left, "back_after": back}

    return mutate


def _servers(**changes):
    def mutate(o):
        for server in o["balancer"]["servers"]:
            server.update(changes)

    return mutate


def _fake_backends(o):
    for i, server in enumerate(o["balancer"]["servers"]):
        server.update(host="127.0.0.1", addresses=["127.0.0.1"], port=9001 + i)


def _hint(check_id, observation):
    return judge(check_id, observation).hint


BROKEN = [
    ("servers.reachable", _set(["web-02"], {"error": "web-02: unreachable"}), "unreachable"),
    ("servers.reachable", _set(["web-02", "hostname"], "localhost"), "calls itself 'localhost'"),
    ("web.nginx", _set(["web-01", "server"], "Apache/2.4"), "Apache"),
    ("web.nginx", _set(["web-02", "listeners"], ["python3"]), "port 80 belongs to"),
    ("web.nginx", _set(["web-02", "config_ok"], False), "nginx -t fails"),
    ("web.static", _set(["web-01", "/", "file"], ""), "matches no file"),
    ("web.static", _set(["web-01", "/", "etag"], '"1732800000.0-27-2263498011"'), "not sent by"),
    ("web.static", _set(["web-02", "/static/style.css", "status"], 404), "HTTP 404"),
    ("web.reverse-proxy", _set(["web-01", "targets"], []), "forwards nothing"),
    ("web.reverse-proxy", _set(["web-01", "holders"], {"127.0.0.1:8000": []}), "nothing listens"),
    (
        "web.reverse-proxy",
        _set(["web-01", "replies", 1, "json", "request_id"], None),
        "same request_id",
    ),
    (
        "web.reverse-proxy",
        _set(["web-02", "replies", 0], {"status": 200, "json": None}),
        "HTTP 200",
    ),
    ("web.reverse-proxy", _set(["web-01", "replies", 0, "json", "pid"], 1), "does not hold"),
    (
        "web.reverse-proxy",
        lambda o: [
            r["json"].update(pid=o["web-01"]["nginx_pids"][0]) for r in o["web-01"]["replies"]
        ],
        "Nginx itself",
    ),
    ("web.reverse-proxy", _set(["web-01", "direct", "json"], None), "not the contract"),
    (
        "web.served-by",
        _set(["web-02", "responses", "/", "values"], ["web-01"]),
        "sent X-Served-By: web-01",
    ),
    ("web.served-by", _set(["web-02", "responses", "/", "values"], ["web-02", "web-02"]), "twice"),
    ("web.served-by", _set(["web-01", "responses", "/api/status", "values"], []), "no X-Served-By"),
    ("app.server", _set(["web-01", "local_only"], False), "reachable from the network"),
    ("app.server", _set(["web-02", "master"], None), "no process holds"),
    ("app.database", _set(["posts", "web-01", "status"], 500), "HTTP 500"),
    ("app.database", lambda o: o.update(on_primary={}, on_replica={}), "in neither database"),
    ("app.database", _set(["reads", "web-02"], []), "does not show the entry it stored"),
    (
        "files.code-base",
        lambda o: o["web-02"]["files"].update({"app.py": "0" * 64}),
        "differ: app.py",
    ),
    ("files.code-base", lambda o: o["web-01"]["files"].pop("static/app.js"), "static/app.js"),
    ("files.code-base", _set(["web-02", "entry"], "evil.py"), "runs evil.py"),
    ("files.code-base", _set(["web-01", "entry"], ""), "could not find the code"),
    ("lb.haproxy", _set(["listeners"], ["nginx"]), "port 80 belongs to"),
    ("lb.haproxy", _set(["status"], 503), "no server could answer"),
    ("lb.haproxy", _set(["config_ok"], False), "haproxy -c fails"),
    ("lb.round-robin", _order(["web-01", "web-01", "web-02", "web-02"]), "not round robin"),
    ("lb.round-robin", _order(["web-01"] * 6), "only web-01 answered"),
    (  # no stats socket: the configuration on disk tells the algorithm
        "lb.round-robin",
        lambda o: [_servers(balance="leastconn")(o), o["balancer"].update(algorithms={})],
        "balance leastconn",
    ),
    ("lb.round-robin", _fake_backends, "do not include web-01"),
    ("lb.round-robin", _set(["received", "web-02"], [0, 1, 2, 3, 4, 5, 6, 7]), "reached web-02"),
    ("lb.round-robin", _set(["sent", "web-02"], 0), "HAProxy sent web-02 0 of the requests"),
    ("lb.round-robin", lambda o: o["balancer"]["algorithms"].update(web="leastconn"), "leastconn"),
    ("lb.health-checks", _set(["configured", "web-02", "inter"], "1h"), "about 7200 s"),
    ("lb.active-active", _servers(backup=True), "backup"),
    (
        "lb.active-active",
        lambda o: o.update(burst=["web-01"] * 8, sent={"web-01": 8, "web-02": 0}),
        "all served by web-01",
    ),
    ("lb.active-active", _set(["sent", "web-02"], 0), "HAProxy sent web-02 0 of the requests"),
    ("lb.health-checks", _set(["stat", "web-01", "check_status"], ""), "not health-checked"),
    ("lb.health-checks", _set(["stat", "web-02", "status"], "DOWN"), "web-02 is DOWN"),
    ("lb.health-checks", _set(["stat", "web-02", "check_status"], "INI"), "has not completed"),
    ("lb.health-checks", _set(["stat", "web-02", "status"], "MAINT"), "in maintenance"),
    ("lb.health-checks", _set(["stat", "web-02"], None), "no server at web-02's address"),
    ("lb.health-checks", _behaviour(None, None), "kept it in the rotation"),
    ("lb.health-checks", _behaviour(2.1, None), "did not come back"),
    ("db.servers", _set(["hosts", "web-01", "log_bin"], "0"), "no binary log"),
    ("db.servers", _set(["hosts", "web-02", "server_id"], "2"), "both servers have server-id"),
    ("db.replication", _set(["writes", "on_replica"], {}), "did not appear"),
    ("db.replication", _set(["state", "io_running"], "No"), "io=No"),
    ("db.replication", _set(["state", "configured"], False), "replicates from nothing"),
    ("db.replication", _set(["state", "source_addresses"], ["10.0.0.9"]), "not from web-01"),
    (
        "db.replication",
        _set(["writes", "replica_engines", "webstack.guestbook.message"], "FEDERATED"),
        "FEDERATED table",
    ),
    ("db.replica-read-only", _set(["attempt"], "WRITE-ACCEPTED"), "accepted a write"),
    ("db.replica-read-only", _set(["attempt"], "ERROR 1045 Access denied"), "not because"),
    ("db.app-roles", _set(["origins", "web-02"], False), "did not reach the primary"),
    ("db.app-roles", _set(["paused", "replica_read_paused"], True), "reads from the primary"),
    ("db.app-roles", _set(["paused", "replica_read_later"], False), "once replication went on"),
    ("dns.www", _set(["records"], [["www.foobar.com.", "A", "8.8.8.8"]]), "not the load balancer"),
    (
        "dns.www",
        _set(["records"], [["www.foobar.com.", "CNAME", "nowhere.foobar.com."]]),
        "no A record at the end",
    ),
    ("dns.www", _set(["authoritative"], False), "not authoritatively"),
    ("dns.www", _set(["rcode"], "NXDOMAIN"), "NXDOMAIN"),
    ("dns.www", lambda o: o.update(any_name=[["x.foobar.com.", "A", o["lb"]]]), "wildcard"),
    ("http.www", _set(["status"], 503), "HTTP 503"),
    ("http.www", _set(["served_by"], ["imposter"]), "not from a web server"),
    ("http.www", lambda o: o.update(received={h: [0] for h in o["web"]}), "but it reached"),
    ("http.www", lambda o: o.update(received={h: [] for h in o["web"]}), "no web server's Nginx"),
    ("ha.one-holder", _set(["balancers", "lb-02", "speakers"], []), "nothing speaks VRRP on lb-02"),
    ("ha.one-holder", _set(["balancers", "lb-02", "holds"], "192.168.74.100/24 dev eth0"), "split"),
    ("ha.site", _set(["addresses"], ["192.168.74.10"]), "not the virtual address"),
    ("ha.same-config", _set(["balancers", "lb-02", "servers"], []), "lb-02 lacks server"),
    ("ha.failover", _set(["answered_after"], None), "did not answer again"),
    ("ha.failover", _set(["takeover"], ["lb-01"]), "no other balancer took the address over"),
    ("ha.failover", _set(["left_up"], ["keepalived still speaks VRRP"]), "could not take lb-01"),
    ("ha.site", _set(["served_by"], "lb-01"), "not a page from a web server"),
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
    assert set(BASE) <= {c for c, _, _ in BROKEN} <= set(CATALOGUE)


def test_correct_variants_pass():
    o = recorded("dns.www")
    a_record = dict(o, records=[["www.foobar.com.", "A", o["lb"]]])
    chain = [[f"n{i}.foobar.com.", "CNAME", f"n{i + 1}.foobar.com."] for i in range(6)]
    six = dict(o, records=[["www.foobar.com.", "CNAME", "n0.foobar.com."], *chain,
                           ["n6.foobar.com.", "A", o["lb"]]])  # fmt: skip
    assert judge("dns.www", a_record).passed and judge("dns.www", six).passed
    beside = dict(o, any_name=[["x.foobar.com.", "A", o["lb"]]], www_in_zone=True)
    assert judge("dns.www", beside).passed  # a wildcard beside www's own record
    served = recorded("web.served-by")
    for host in served.values():
        host["not_found"]["values"] = []  # no `always`: error pages carry no header
    verdict = judge("web.served-by", served)
    assert verdict.passed and "error pages carry none" in verdict.evidence
    static = recorded("web.static")
    for files in static.values():
        for reply in files.values():
            reply["etag"] = ""  # etag off
    assert judge("web.static", static).passed
    behaviour = copy.deepcopy(recorded("lb.health-checks"))
    _behaviour(3.2, 1.1)(behaviour)
    assert "left the rotation after 3.2 s" in judge("lb.health-checks", behaviour).evidence


def test_hints_follow_the_evidence():
    o = recorded("app.database")
    o["posts"]["web-01"]["status"] = 500
    assert "'user'@'localhost'" in _hint("app.database", o)
    nginx = recorded("web.nginx")
    nginx["web-01"]["config_ok"] = False
    assert "nginx -t" in _hint("web.nginx", nginx)


class Boom(CATALOGUE["web.reverse-proxy"]):
    """A check whose observation is an odd reply: its judge meets a list, not an object."""

    id = "test.boom"
    section = "web server"

    def observe(self, lab):
        return {"web-01": [1]}


class Unreachable(CATALOGUE["servers.reachable"]):
    id = "test.unreachable"

    def observe(self, lab):
        raise CheckError("web-02: unreachable over SSH: timed out")


def test_a_check_never_raises():
    from checks.base import Check

    try:
        result = Boom().run(lab=None)
        assert result.status is Status.FAIL
        assert result.evidence.startswith("the grader could not judge what it saw:")
        result = Unreachable().run(lab=None)
        assert result.status is Status.FAIL and "timed out" in result.evidence
    finally:
        Check.registry.pop("test.boom", None)
        Check.registry.pop("test.unreachable", None)


def test_a_cleanup_that_fails_is_tried_again_at_the_end_of_the_run():
    from checks.live import LiveLab
    from lab.topology import parse, variant

    lab = LiveLab(parse(variant("unit-live", 99)), fleet=None)
    attempts = []

    def restart():
        attempts.append(1)
        if len(attempts) == 1:
            raise CheckError("nginx did not start")

    lab.on_cleanup("nginx stopped", restart)
    with pytest.raises(CheckError):
        lab.done_with("nginx stopped")
    assert lab.cleanup() == [] and len(attempts) == 2  # the end of the run tried it again
