"""Each check's judgement on observations recorded from the reference lab, and on broken ones
(every base check here; the extra sections' checks also in test_SECTION_checks.py).

`python -m tests.record --observations` records them again from a live reference lab.
"""

import copy

import pytest

from checks import CATALOGUE, database
from checks.app import ACCOUNTS_NOT_LOADED
from checks.base import BASE_SECTIONS, CheckError, Status
from lab.facts import mysql
from tests.helpers import judge, recorded
from tests.record import read_raw

BASE = [check_id for check_id, cls in CATALOGUE.items() if cls.section in BASE_SECTIONS]


# recorded on a reference lab whose replica was loaded with the primary's dump (accounts
# included) without FLUSH PRIVILEGES, the way exercise 04's page used to say
NOT_LOADED = "app.database-accounts-not-loaded"
# recorded on a reference lab whose replica ignores webstack.% (replicate_wild_ignore_table)
# while a trigger on the primary copies each new row to it over FederatedX
TRIGGER_FAKE = "db.replication-trigger-fake"


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


SOCKET_ERROR = (
    "web-02: ERROR 2002 (HY000): Can't connect to local server through socket "
    "'/run/mysqld/mysqld.sock' (2)"
)


def _down(raw_name):
    """db.servers' observation of a host whose server did not answer (recorded state)."""
    return database.server_down(SOCKET_ERROR, mysql.server_state(read_raw(raw_name)))


def _order(hosts):
    def mutate(o):
        o["answers"] = [{"status": 200, "served_by": h} for h in hosts]
        o["received"] = {h: hosts.count(h) for h in ("web-01", "web-02")}
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


def _aimed(**check):
    """web-02's health as HAProxy reads its server line: checked elsewhere, or tracked."""

    def mutate(o):
        o["configured"]["web-02"].update(check)

    return mutate


def _fake_backends(o):
    for i, server in enumerate(o["balancer"]["servers"]):
        server.update(host="127.0.0.1", addresses=["127.0.0.1"], port=9001 + i)


def _hint(check_id, observation):
    return judge(check_id, observation).hint


BROKEN = [
    ("servers.reachable", _set(["web-02"], {"error": "web-02: unreachable"}), "unreachable"),
    ("servers.reachable", _set(["web-02", "hostname"], "localhost"), "calls itself 'localhost'"),
    (  # a wrapper behind a diversion: the grader would run it for the distribution's client
        "servers.reachable",
        _set(["web-02", "untrusted"], ["/usr/bin/mariadb is diverted (local diversion ...)"]),
        "web-02: the grader cannot trust the programs it runs there: /usr/bin/mariadb is diverted",
    ),
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
    (
        "app.server",
        lambda o: o["web-01"].update(
            sockets=["0.0.0.0:8000"],
            local_only=False,
            exposed=[
                {
                    "socket": "192.168.214.11:8000",
                    "programs": ["gunicorn"],
                    "from": "this machine",
                    "status": 200,
                    "pid": 202,
                }
            ],
        ),
        "listens on 0.0.0.0:8000: reachable from the network, not only by Nginx: GET "
        "/api/status at 192.168.214.11:8000 from this machine was answered by the application",
    ),
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
    (  # every request reached web-02, yet half the answers named web-01
        "lb.round-robin",
        _set(["received"], {"web-01": 0, "web-02": 8}),
        "4 answers carried X-Served-By web-01, but web-01's Nginx logged 0 such requests",
    ),
    (  # web-02 logs nothing; web-01 logged every request, yet only half the answers say so
        "lb.round-robin",
        _set(["received"], {"web-01": 8, "web-02": None}),
        "web-01's Nginx logged 8 of the 8 requests, yet 4 answers carried X-Served-By web-01",
    ),
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
    (  # its check answered wrong while web-02 answers: not a server that died
        "lb.health-checks",
        lambda o: o["stat"]["web-02"].update(status="DOWN", check_status="L7STS"),
        "web-02 is DOWN (L7STS)",
    ),
    ("lb.health-checks", _set(["stat", "web-02", "check_status"], "INI"), "has not completed"),
    ("lb.health-checks", _set(["stat", "web-02", "status"], "MAINT"), "in maintenance"),
    ("lb.health-checks", lambda o: o["stat"].pop("web-02"), "no server at web-02's address"),
    ("lb.health-checks", _behaviour(None, None), "kept it in the rotation"),
    (  # `check addr <web-01> port 80` on web-02: web-02 stays UP whatever it does
        "lb.health-checks",
        _aimed(check_addr="192.168.80.11", check_addresses=["192.168.80.11"], check_port=80),
        "web-02: its health checks go to 192.168.80.11:80, not to the server itself",
    ),
    ("lb.health-checks", _aimed(check_port=8080), "go to 192.168.80.12:8080, not to the server"),
    ("lb.health-checks", _aimed(tracked="web/web-01"), "its health is copied from web/web-01"),
    (  # `check socks4 127.0.0.1:1080 check-via-socks4`: a relay there answers the checks
        "lb.health-checks",
        _aimed(check_via="127.0.0.1:1080"),
        "web-02: its health checks go through 127.0.0.1:1080 (`check-via-socks4`)",
    ),
    (  # the same without a stats socket, where the failover trial would run
        "lb.health-checks",
        lambda o: [_aimed(check_addr="192.168.80.11")(o), _behaviour(None, None)(o)],
        "its health checks go to 192.168.80.11:80",
    ),
    ("lb.health-checks", _behaviour(2.1, None), "did not come back"),
    ("db.servers", _set(["hosts", "web-01", "log_bin"], "0"), "no binary log"),
    (
        "db.servers",
        _set(["hosts", "web-02"], _down("mariadb-state-bad-option")),
        "web-02: the database server does not run (mariadb.service failed): /usr/sbin/mariadbd: "
        "unknown variable 'log_eror=/var/log/mysql/error.log'",
    ),
    (
        "db.servers",
        _set(["hosts", "web-02"], _down("mariadb-state-not-installed")),
        "web-02: no MySQL/MariaDB server is installed",
    ),
    ("db.servers", _set(["hosts", "web-02", "server_id"], "2"), "both servers have server-id"),
    ("db.replication", _set(["writes", "on_replica"], {}), "did not appear"),
    (
        "db.replication",
        _set(["filtered"], {"webstack.guestbook": "Replicate_Do_DB=other"}),
        "web-02's replication filters leave out the application's table webstack.guestbook "
        "(Replicate_Do_DB=other)",
    ),
    (
        "db.replication",
        _set(["paused", "on_replica_paused"], "webstack.guestbook.message"),
        "by something other than replication",
    ),
    ("db.replication", _set(["paused", "on_replica_later"], ""), "within 5 s of resuming"),
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
    (
        "http.www",
        lambda o: o.update(received={"web-01": 0, "web-02": 1}),
        "X-Served-By web-01, but web-01's Nginx did not log it",
    ),
    ("http.www", lambda o: o.update(received={h: 0 for h in o["web"]}), "Nginx did not log it"),
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


def test_a_failed_read_shows_its_status_and_the_applications_own_error():
    o = recorded(NOT_LOADED)
    verdict = judge("app.database", o)
    assert not verdict.passed
    assert verdict.evidence.startswith("web-02: GET /api/guestbook answered HTTP 500; ")
    assert (
        'webstack-app.service logged: pymysql.err.OperationalError: (1045, "Access denied for '
        "user 'webstack_read'@'localhost' (using password: YES)\")"
    ) in verdict.evidence
    assert (
        "'webstack_read'@'localhost' is in web-02's grant tables but its server has not loaded it"
    ) in verdict.evidence
    assert "does not show the entry" not in verdict.evidence
    assert verdict.case == ACCOUNTS_NOT_LOADED and "FLUSH PRIVILEGES" in verdict.hint
    # refused with the account loaded (a wrong password, say): the error, not the flush case
    loaded = copy.deepcopy(o)
    loaded["read_answers"]["web-02"]["error"]["unloaded"] = []
    verdict = judge("app.database", loaded)
    assert "HTTP 500; webstack-app.service logged: pymysql" in verdict.evidence
    assert "grant tables" not in verdict.evidence
    assert verdict.case == "" and "FLUSH" not in verdict.hint
    # no error in the journal: what the answer said; no systemd unit and nothing said: the status
    quiet = copy.deepcopy(loaded)
    quiet["read_answers"]["web-02"].update(said="database unreachable")
    quiet["read_answers"]["web-02"]["error"].update(line="")
    assert (
        "HTTP 500; its answer said: database unreachable" in judge("app.database", quiet).evidence
    )
    quiet["read_answers"]["web-02"]["said"] = ""
    assert judge("app.database", quiet).evidence.endswith(
        "HTTP 500; webstack-app.service logged no error in the last minute"
    )
    quiet["read_answers"]["web-02"]["error"].update(unit="")
    assert judge("app.database", quiet).evidence == "web-02: GET /api/guestbook answered HTTP 500"
    quiet["read_answers"]["web-02"]["status"] = None
    assert judge("app.database", quiet).evidence == "web-02: GET /api/guestbook got no answer"
    quiet["read_answers"]["web-02"]["said"] = "GET http://192.168.56.12/api/guestbook: timed out"
    assert judge("app.database", quiet).evidence == (
        "web-02: GET http://192.168.56.12/api/guestbook: timed out"
    )


def test_a_failed_write_shows_the_applications_own_error():
    o = recorded("app.database")
    o["posts"]["web-01"].update(status=500, error={
        "unit": "webstack-app.service", "database": "web-01", "unloaded": [],
        "line": "pymysql.err.OperationalError: (1142, \"INSERT command denied to user\")",
    })  # fmt: skip
    verdict = judge("app.database", o)
    assert verdict.evidence == (
        "web-01: POST /api/guestbook answered HTTP 500: the application could not store the "
        'entry; webstack-app.service logged: pymysql.err.OperationalError: (1142, "INSERT '
        'command denied to user")'
    )
    assert "'user'@'localhost'" in verdict.hint and verdict.case == ""
    o["posts"]["web-01"]["error"]["unloaded"] = ["'webstack_write'@'192.168.56.%'"]
    verdict = judge("app.database", o)
    assert "is in web-01's grant tables but its server has not loaded it" in verdict.evidence
    assert verdict.case == ACCOUNTS_NOT_LOADED


def test_the_application_relayed_to_the_network_fails_app_server():
    """Recorded with `socat TCP-LISTEN:8001,fork,reuseaddr TCP:127.0.0.1:8000` on web-01: the
    application itself listens on loopback only, yet port 8001 leads to it from outside."""
    o = recorded("app.server-relayed")
    assert o["web-01"]["local_only"] and not o["web-02"]["relays"]
    verdict = judge("app.server", o)
    assert not verdict.passed
    assert verdict.evidence == (
        "web-01: 192.168.214.11:8001 (socat) relays the application to the network: "
        "GET /api/status there from this machine was answered by the application "
        "(HTTP 200, pid 202)"
    )
    forward = {"socket": "192.168.214.12:8000", "programs": [], "from": "lb-01", "status": 503}
    o["web-02"]["relays"] = [dict(forward, pid=None)]
    assert "192.168.214.12:8000 (where nothing listens: a port forward) relays" in (
        judge("app.server", o).evidence
    )
    assert (
        "from lb-01 was answered by the application (HTTP 503)" in judge("app.server", o).evidence
    )


def test_a_result_keeps_the_case_of_a_failure_only():
    check = CATALOGUE["app.database"]()
    assert (
        check.result(Status.FAIL, "refused", case=ACCOUNTS_NOT_LOADED).case == ACCOUNTS_NOT_LOADED
    )
    assert check.result(Status.PASS, "fine", case=ACCOUNTS_NOT_LOADED).case == ""


def test_correct_variants_pass():
    o = recorded("dns.www")
    a_record = dict(o, records=[["www.foobar.com.", "A", o["lb"]]])
    chain = [[f"n{i}.foobar.com.", "CNAME", f"n{i + 1}.foobar.com."] for i in range(6)]
    six = dict(o, records=[["www.foobar.com.", "CNAME", "n0.foobar.com."], *chain,
                           ["n6.foobar.com.", "A", o["lb"]]])  # fmt: skip
    assert judge("dns.www", a_record).passed and judge("dns.www", six).passed
    nxdomain = {"rcode": "NXDOMAIN", "authoritative": True, "records": []}
    beside = dict(o, any_name=[["x.foobar.com.", "A", o["lb"]]], below_www=nxdomain)
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
    assert "FLUSH PRIVILEGES" in _hint("app.database", recorded(NOT_LOADED))
    nginx = recorded("web.nginx")
    nginx["web-01"]["config_ok"] = False
    assert "nginx -t" in _hint("web.nginx", nginx)


def test_a_check_never_raises(own_registry):
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

    result = Boom().run(lab=None)
    assert result.status is Status.FAIL
    assert result.evidence.startswith("the grader could not judge what it saw:")
    result = Unreachable().run(lab=None)
    assert result.status is Status.FAIL and "timed out" in result.evidence


def test_a_cleanup_that_fails_is_tried_again_at_the_end_of_the_run():
    from lab.core.topology import parse, variant
    from lab.observe.live import LiveLab

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


def served_by_with(statuses: dict[str, dict[str, int]], header: bool = True):
    """The recorded web.served-by observation with each host's responses given these codes."""
    o = recorded("web.served-by")
    for host, codes in statuses.items():
        for path, code in codes.items():
            o[host]["responses"][path] = {
                "status": code,
                "values": [host] if header and code < 400 else [],
            }
    return o


def served_by_result(observation):
    verdict = judge("web.served-by", observation)
    assert not verdict.passed
    return verdict, CATALOGUE["web.served-by"]().result(
        Status.FAIL, verdict.evidence, 0.1, verdict.hint
    )


ALL_PATHS = ("/", "/static/style.css", "/api/status")


@pytest.mark.parametrize(
    "codes, cause",
    [
        ({p: 404 for p in ALL_PATHS}, "HTTP 404"),  # before exercise 03: nothing to serve
        ({"/": 404, "/static/style.css": 404, "/api/status": 502}, "could not reach the app"),
        ({p: 502 for p in ALL_PATHS}, "could not reach the application"),
        ({p: 403 for p in ALL_PATHS}, "HTTP 403"),
    ],
)
def test_served_by_hint_follows_the_evidence_when_nothing_answered(codes, cause):
    """No page answered (404/502 before the application is in place): the header may well be
    configured, so the hint names what kept the pages from answering, not add_header."""
    verdict, result = served_by_result(served_by_with({"web-01": codes, "web-02": codes}))
    assert "no page answered" in verdict.evidence
    assert cause in result.hint and "add_header" not in result.hint
    assert "judged once a page answers" in result.hint


def test_served_by_hint_is_add_header_when_a_page_answered_without_it():
    missing = served_by_with({"web-01": {p: 200 for p in ALL_PATHS}}, header=False)
    verdict, result = served_by_result(missing)
    assert "has no X-Served-By" in verdict.evidence
    assert result.hint == CATALOGUE["web.served-by"].hint and "add_header" in result.hint
    # one host answers without the header, the other answers nothing: the header is at fault
    both = served_by_with({"web-02": {p: 404 for p in ALL_PATHS}})
    both["web-01"] = missing["web-01"]
    verdict, result = served_by_result(both)
    assert "no page answered" in verdict.evidence and "has no X-Served-By" in verdict.evidence
    assert "add_header" in result.hint


def test_lab_exercise_hint_gives_the_hint_the_evidence_calls_for():
    from lab.cli.commands.exercise import hints_for
    from lab.core.topology import parse, variant

    topology = parse(variant("unit-hint", 207))
    codes = {p: 404 for p in ALL_PATHS}
    _, nothing = served_by_result(served_by_with({"web-01": codes, "web-02": codes}))
    ladder = hints_for(nothing, topology)
    assert ladder[0] == nothing.hint and len(ladder) == 4  # the cause first, then the ladder
    _, missing = served_by_result(served_by_with({"web-01": {"/": 200}}, header=False))
    ladder = hints_for(missing, topology)
    assert len(ladder) == 3 and "add_header X-Served-By $hostname" in ladder[-1]


def test_haproxy_c_warnings_are_shown_where_they_matter():
    o = recorded("lb.haproxy")
    o["config_warnings"] = [
        "parsing [/etc/haproxy/haproxy.cfg:30] : a 'redirect' rule placed after a "
        "'use_backend' rule will still be processed before.",
        "config : 'redirect' rules ignored for proxy 'www' as they require HTTP mode.",
        "config : one more",
    ]
    evidence = judge("lb.haproxy", o).evidence
    assert "haproxy -c ok; haproxy -c warns: parsing [/etc/haproxy/haproxy.cfg:30]" in evidence
    assert "'redirect' rules ignored for proxy 'www'" in evidence and "(and 1 more)" in evidence
    assert "warns" not in judge("lb.haproxy", recorded("lb.haproxy")).evidence
    health = recorded("lb.health-checks")
    health["config_warnings"] = ["config : 'option httpchk' ignored for proxy 'web'"]
    health["stat"]["web-02"]["check_status"] = ""
    assert "warns: config : 'option httpchk' ignored" in judge("lb.health-checks", health).evidence


# -- a web server's hostname as its X-Served-By: short, fully qualified, any case ----------------
FQDN = {"web-01": "web-01.foobar.com", "web-02": "WEB-02.foobar.com"}


def _fqdn(value):
    return FQDN.get(value, value)


def test_served_by_names_a_host_by_short_name_or_fqdn_in_any_case():
    from lab.observe.probes import names_host, served_by_host

    web, hostnames = ["web-01", "web-02"], {"web-01": "web-01.foobar.com", "web-02": "web-02"}
    assert served_by_host("web-01", hostnames, web, "foobar.com") == "web-01"
    assert served_by_host("Web-01.FOOBAR.com", hostnames, web, "foobar.com") == "web-01"
    assert served_by_host("web-02.foobar.com", hostnames, web, "foobar.com") == "web-02"
    assert served_by_host("web-02.example.org", hostnames, web, "foobar.com") is None
    assert served_by_host("lb-01", hostnames, web, "foobar.com") is None
    assert served_by_host(None, hostnames, web, "foobar.com") is None
    assert not names_host("web-01", ("web-02", "web-02.foobar.com"), "foobar.com")
    # two hosts that both answer to the value: it names neither
    assert served_by_host("web", {"web-01": "web", "web-02": "web"}, web) is None


def test_a_host_named_by_its_fqdn_passes_every_check_that_reads_x_served_by():
    """`hostname web-02.foobar.com`: X-Served-By carries the FQDN (in any case)."""
    rr = recorded("lb.round-robin")
    for answer in rr["answers"]:
        answer["served_by"] = _fqdn(answer["served_by"])
    rr.update(hostnames=FQDN, domain="foobar.com")
    aa = recorded("lb.active-active")
    aa.update(burst=[_fqdn(b) for b in aa["burst"]], hostnames=FQDN, domain="foobar.com")
    served = recorded("web.served-by")
    for host, info in served.items():
        info["hostname"] = FQDN[host]
        for reply in [*info["responses"].values(), info["not_found"]]:
            reply["values"] = [FQDN[host].lower()]
    www = recorded("http.www")
    www.update(served_by=[_fqdn(v) for v in www["served_by"]], hostnames=FQDN)
    redirect = recorded("https.redirect")
    redirect["followed"]["served_by"] = ["web-01.foobar.com"]
    redirect["hostnames"] = FQDN
    site = recorded("ha.site")
    site.update(served_by="web-02.foobar.com", hostnames={"web-01": "web-01", "web-02": "web-02"})
    site["domain"] = "foobar.com"  # hostname web-02, header its FQDN: the same host
    reachable = recorded("servers.reachable")
    for host, info in reachable.items():
        info.update(hostname=f"{host}.foobar.com", domain="foobar.com")
    for check_id, o in [
        ("servers.reachable", reachable),
        ("lb.round-robin", rr),
        ("lb.active-active", aa),
        ("web.served-by", served),
        ("http.www", www),
        ("https.redirect", redirect),
        ("ha.site", site),
    ]:
        verdict = judge(check_id, o)
        assert verdict.passed, (check_id, verdict.evidence)
    rr["answers"][3]["served_by"] = "web-01.foobar.com"  # a lie: web-02's log has it
    lie = judge("lb.round-robin", rr)
    assert not lie.passed and "X-Served-By web-01" in lie.evidence, lie.evidence
    served["web-02"]["responses"]["/"]["values"] = ["web-01.foobar.com"]
    assert "sent X-Served-By: web-01.foobar.com" in judge("web.served-by", served).evidence
    reachable["web-02"]["hostname"] = "web-01.foobar.com"
    assert (
        "web-02 calls itself 'web-01.foobar.com'" in judge("servers.reachable", reachable).evidence
    )


def test_served_by_is_judged_on_error_pages_that_carry_it():
    """A site answering / with 403 and /api/status with 404, both with `add_header ... always`."""
    o = served_by_with({h: {"/": 403, "/api/status": 404} for h in ("web-01", "web-02")})
    for host, info in o.items():
        info["responses"].pop("/static/style.css")
        for reply in info["responses"].values():
            reply["values"] = [host]
    verdict = judge("web.served-by", o)
    assert verdict.passed, verdict.evidence
    assert "web-01: X-Served-By web-01 on / (HTTP 403), /api/status (HTTP 404)" in verdict.evidence
    o["web-02"]["responses"]["/api/status"]["values"] = ["web-01"]  # a fixed name
    verdict = judge("web.served-by", o)
    assert not verdict.passed and "web-02 (hostname web-02): /api/status" in verdict.evidence
    for reply in o["web-02"]["responses"].values():
        reply["values"] = []  # no header at all: nothing names the server
    verdict = judge("web.served-by", o)
    assert not verdict.passed and "no response carried X-Served-By" in verdict.evidence


def test_a_wildcard_is_told_from_www_by_a_name_below_www():
    """Whatever zone files lie on disk (a stray `.zone.bak` holding www), the server's answers
    decide: below a www of its own, the wildcard answers nothing (RFC 4592)."""
    o = recorded("dns.www")
    o["records"] = [["www.foobar.com.", "A", o["lb"]]]
    o["any_name"] = [["x.foobar.com.", "A", o["lb"]]]
    synthesized = {"rcode": "NOERROR", "authoritative": True, "records": [
        ["x.www.foobar.com.", "A", o["lb"]]]}  # fmt: skip
    verdict = judge("dns.www", dict(o, below_www=synthesized))
    assert not verdict.passed and "names below www too" in verdict.evidence
    assert "Add a `www` record" in verdict.hint
    for own in ("NXDOMAIN", "NOERROR"):  # NOERROR: a name below www exists, so www does
        below = {"rcode": own, "authoritative": True, "records": []}
        assert judge("dns.www", dict(o, below_www=below)).passed
    refused = {"rcode": "REFUSED", "authoritative": False, "records": []}
    assert not judge("dns.www", dict(o, below_www=refused)).passed


def test_replication_faked_by_a_trigger_fails_on_its_filter():
    verdict = judge("db.replication", recorded(TRIGGER_FAKE))
    assert not verdict.passed
    assert verdict.evidence.startswith(
        "web-02's replication filters leave out the application's table webstack.guestbook "
        "(Replicate_Wild_Ignore_Table=webstack.%)"
    ), verdict.evidence


def test_replication_faked_by_a_trigger_fails_without_its_filter_seen():
    """A filter the grader would not read (another flavour, another option): the row still
    arrived while the replica's SQL thread was stopped, as recorded."""
    o = recorded(TRIGGER_FAKE)
    o["filtered"] = {}
    verdict = judge("db.replication", o)
    assert not verdict.passed
    assert "appeared in web-02's webstack.guestbook.message while web-02's replication (SQL " in (
        verdict.evidence
    )


def test_a_server_that_does_not_start_is_judged_on_its_journal_not_the_socket():
    o = recorded("db.servers")
    o["hosts"]["web-02"] = _down("mariadb-state-bad-option")
    verdict = judge("db.servers", o)
    assert "Can't connect" not in verdict.evidence and "journalctl -u mariadb" in verdict.hint


def test_a_stopped_server_is_not_blamed_on_an_error_of_its_last_start():
    o = recorded("db.servers")
    o["hosts"]["web-02"] = _down("mariadb-state-bad-option")
    o["hosts"]["web-02"].update(active="inactive", result="success")  # `systemctl stop` after
    verdict = judge("db.servers", o)
    assert verdict.evidence.startswith(
        "web-02: the database server is stopped (mariadb.service inactive): ERROR 2002 (HY000)"
    ), verdict.evidence
    assert "log_eror" not in verdict.evidence and "enable --now" in verdict.hint


def test_a_web_server_whose_log_cannot_tell_passes_and_the_evidence_says_so():
    """access_log off, syslog or a buffered log on web-02: nothing to confirm, nothing to deny."""
    rr = recorded("lb.round-robin")
    rr["received"]["web-02"] = None
    verdict = judge("lb.round-robin", rr)
    assert verdict.passed and "not confirmed by web-02's Nginx" in verdict.evidence
    assert "logs agree" not in verdict.evidence
    www = recorded("http.www")
    www["received"] = dict.fromkeys(www["received"])
    verdict = judge("http.www", www)
    assert verdict.passed and "it logs these requests to no file" in verdict.evidence
    assert "not confirmed" not in judge("http.www", recorded("http.www")).evidence


@pytest.mark.parametrize("check_status", ["L4CON", "* L4TOUT"])
def test_a_server_health_checks_found_dead_is_out_of_the_rotation_as_it_should_be(check_status):
    """Nothing answers on web-02's port (refused, timed out): HAProxy took it out, which is
    what its health checks are for."""
    o = copy.deepcopy(recorded("lb.health-checks"))
    o["stat"]["web-02"].update(status="DOWN", check_status=check_status)
    verdict = judge("lb.health-checks", o)
    assert verdict.passed and f"web-02 DOWN ({check_status}: nothing answers" in verdict.evidence
