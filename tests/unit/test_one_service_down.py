"""One service down (Nginx stopped on web-02): what can still be observed is graded, on
observations recorded from a lab in that state, and broken ones still fail."""

from __future__ import annotations

import copy
import json
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from checks.base import Check, CheckError, NotObservable, Status, failed, passed
from checks.lb import kept_in_rotation
from checks.runner import run_checks
from checks.web import _proxy_problem
from lab.facts import haproxy
from lab.facts import http as host_http
from tests.helpers import judge, recorded
from tests.record import read_raw
from tests.unit.test_run_deadline import QuietLab

DOWN = "web-02-down"  # recorded with `python -m tests.record ... --name web-02-down`


def down(check_id: str):
    return recorded(f"{check_id}-{DOWN}")


@pytest.mark.parametrize("check_id", ["lb.round-robin", "lb.active-active"])
def test_the_balancer_is_judged_from_haproxys_view_with_a_server_its_checks_took_out(check_id):
    verdict = judge(check_id, down(check_id))
    assert verdict.passed, verdict.evidence
    assert verdict.evidence.startswith("web-02 is DOWN by HAProxy's health checks (L4CON)")
    assert (
        "HAProxy's own view: backend web balances roundrobin over web-01 and web-02, all active"
        in verdict.evidence
    )


def test_round_robin_with_a_server_down_says_every_request_went_to_the_one_up():
    verdict = judge("lb.round-robin", down("lb.round-robin"))
    assert "8 requests all went to web-01, the server UP" in verdict.evidence
    assert "Nginx logs agree" in verdict.evidence


def _servers(o, **changes):
    for server in o["balancer"]["servers"]:
        if server["name"] == "web-02":
            server.update(changes)
    return o


def _algorithm(o, name):
    o["balancer"].setdefault("algorithms", {})["web"] = name
    return _servers(o, balance=name)


def _routed_to_one(o):
    """An ACL sends visitors to a backend of web-01 alone (what HAProxy's counters show)."""
    alone = copy.deepcopy(next(s for s in o["balancer"]["servers"] if s["name"] == "web-01"))
    o["balancer"]["servers"].append({**alone, "backend": "visitors"})
    o["routed"] = {"visitors": 8}
    return o


def _sticky_for_visitors(o):
    """An ACL sends visitors to a backend of both servers that balances by source address."""
    for server in copy.deepcopy(o["balancer"]["servers"]):
        o["balancer"]["servers"].append({**server, "backend": "sticky", "balance": "source"})
    if "algorithms" in o["balancer"]:  # as HAProxy runs them (lb.round-robin's view only)
        o["balancer"]["algorithms"]["sticky"] = "source"
    o["routed"] = {"sticky": 8}
    return o


def _answered_by(o, host):
    for answer in o.get("answers", []):
        answer["served_by"] = host
    if "burst" in o:
        o["burst"] = [host] * len(o["burst"])
    return o


@pytest.mark.parametrize(
    "check_id, broken, words",
    [
        ("lb.round-robin", lambda o: _algorithm(o, "source"), "balance source"),
        ("lb.round-robin", lambda o: _servers(o, backup=True), "web-02 stand(s) by as backup"),
        ("lb.round-robin", _routed_to_one, "backend visitors, whose active servers are web-01"),
        ("lb.round-robin", lambda o: _servers(o, addresses=[]), "do not include web-02"),
        ("lb.round-robin", lambda o: _answered_by(o, "web-02"), "yet 0 answers carried"),
        ("lb.round-robin", _sticky_for_visitors, "backend sticky, which balances with `balance"),
        ("lb.active-active", lambda o: _servers(o, backup=True), "web-02 stand(s) by as backup"),
        ("lb.active-active", _sticky_for_visitors, "backend sticky, which balances with `balance"),
        ("lb.active-active", _routed_to_one, "backend visitors, whose active servers are web-01"),
        ("lb.active-active", lambda o: _answered_by(o, None), "all served by nobody"),
    ],
)
def test_a_balancer_that_sends_everyone_to_one_server_still_fails(check_id, broken, words):
    verdict = judge(check_id, broken(down(check_id)))
    assert not verdict.passed and words in verdict.evidence, verdict.evidence


@pytest.mark.parametrize(
    "row, reason",
    [
        ({"status": "DOWN", "check_status": "L4CON"}, ""),
        ({"status": "DOWN", "check_status": "L7STS"}, ""),
        ({"status": "UP", "check_status": "L7OK"}, "(UP, L7OK)"),
        ({"status": "no check", "check_status": ""}, "(no check, not health-checked)"),
        ({"status": "DOWN", "check_status": "INI"}, "(DOWN, INI)"),
        ({"status": "MAINT", "check_status": "L4CON"}, "(MAINT, L4CON)"),
        (None, ""),  # not among HAProxy's servers: the balancer's configuration says so
    ],
)
def test_a_server_that_cannot_answer_hides_the_turns_unless_health_checks_took_it_out(row, reason):
    said = kept_in_rotation({"web-02": row})
    assert (reason in said) if reason else said == "", said
    if reason:
        assert said.startswith("web-02 cannot answer, yet HAProxy keeps it in the rotation")


def test_the_application_of_a_server_without_nginx_is_seen_directly():
    verdict = judge("app.server", down("app.server"))
    assert verdict.passed, verdict.evidence
    assert "web-02: gunicorn on 127.0.0.1:8000 (asked from the host: no port 80)" in (
        verdict.evidence
    )


def test_an_application_seen_directly_still_fails_a_public_listener():
    o = down("app.server")
    answer = {"programs": ["gunicorn"], "from": "lb-01", "status": 200, "pid": 175}
    o["web-02"].update(
        sockets=["*:8000"], local_only=False, exposed=[{"socket": "192.168.202.12:8000", **answer}]
    )
    verdict = judge("app.server", o)
    assert not verdict.passed
    assert "web-02: gunicorn (pid 175) listens on *:8000: reachable" in verdict.evidence


def test_an_application_seen_directly_must_answer_as_behind_nginx():
    """What web.reverse-proxy would have shown there: a fresh answer, from the socket's holder."""
    o = down("app.server")
    replies = o["web-02"]["replies"]
    replies[1]["json"] = dict(replies[0]["json"])
    verdict = judge("app.server", o)
    assert not verdict.passed and "web-02: two requests to /api/status got the same" in (
        verdict.evidence
    )
    o = down("app.server")
    for reply in o["web-02"]["replies"]:
        reply["json"]["pid"] = 4242
    verdict = judge("app.server", o)
    assert not verdict.passed and "names pid 4242, which does not hold" in verdict.evidence
    o = down("app.server")
    o["web-01"]["front_door"] = True
    o["web-01"]["replies"][1]["json"] = dict(o["web-01"]["replies"][0]["json"])
    assert judge("app.server", o).passed  # through Nginx: web.reverse-proxy's to judge


def test_entries_are_written_and_read_directly_where_nothing_listens_on_port_80():
    verdict = judge("app.database", down("app.database"))
    assert verdict.passed, verdict.evidence
    assert "(web-02: its application itself, with no port 80)" in verdict.evidence
    o = down("app.database")
    o["reads"]["web-02"] = []
    o["read_answers"]["web-02"] = {"status": 500, "said": ""}
    verdict = judge("app.database", o)
    assert not verdict.passed and "web-02: GET /api/guestbook answered HTTP 500" in (
        verdict.evidence
    )


@pytest.mark.parametrize("check_id", ["files.code-base", "db.app-roles"])
def test_what_needs_the_application_is_graded_when_it_is_seen_directly(check_id):
    verdict = judge(check_id, down(check_id))
    assert verdict.passed, verdict.evidence


def test_an_application_asked_directly_is_not_taken_for_nginx_forwarding_to_it():
    app = down("app.server")["web-02"]
    assert _proxy_problem("web-02", app) == (
        "web-02: nothing listens on port 80, so nothing is forwarded to the application"
    )
    assert _proxy_problem("web-02", {**app, "front_door": True}) == ""


def test_backend_sessions_are_read_from_haproxys_own_stat_rows():
    sessions = haproxy.backend_sessions(haproxy.parse_show_stat(read_raw("show-stat-lb-01")))
    assert set(sessions) == {"stats", "web"} and all(n >= 0 for n in sessions.values())


class _Recorder(BaseHTTPRequestHandler):
    seen: ClassVar[list] = []

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        _Recorder.seen.append((self.command, self.path, self.headers.get("Content-Type"), body))
        data = json.dumps({"method": self.command, "body": body}).encode()
        self.send_response(201 if self.command == "POST" else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _answer

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    _Recorder.seen = []
    yield f"127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_a_request_made_inside_a_host_posts_a_json_body(server):
    """The perl client the grader runs on a host, run here against a real HTTP server."""
    entry = json.dumps({"name": "lab-check", "message": "lab-check-0123"})
    for method, body in (("GET", ""), ("POST", entry)):
        command = host_http.request(server, method, "/api/guestbook", "www.foobar.com", body)
        raw = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=10)
        reply = host_http.parse_reply(raw.stdout)
        assert reply.status_code == (201 if body else 200), raw.stderr
        assert reply.json() == {"method": method, "body": body} and reply.text == reply.body
    assert _Recorder.seen == [
        ("GET", "/api/guestbook", None, ""),
        ("POST", "/api/guestbook", "application/json", entry),
    ]


# -- the runner: a direct check runs where its prerequisite was not run, if it can see there --
SEEN: dict[str, list[str]] = {}


@pytest.fixture
def report(tmp_path, monkeypatch, own_registry):
    """Nginx fails on web-02; the proxy check is not run there; the application checks see
    web-02 directly when they can (t.direct), or not (t.unseen), or are not direct at all."""
    from lab.core.topology import PACKAGED, load

    class Nginx(Check):
        id, section, title, requirement, points, hint = ("t.nginx", "web server", "-", "-", 5, "-")
        per_host = True

        def observe(self, lab):
            return {host: host != "web-02" for host in lab.web_hosts()}

        def judge(self, hosts):
            wrong = [h for h, ok in hosts.items() if not ok]
            return failed(f"{wrong} down") if wrong else passed("up")

    class Proxy(Nginx):
        id, needs = "t.proxy", ("t.nginx",)

        def observe(self, lab):
            return {host: True for host in lab.web_hosts()}

    class Direct(Proxy):
        id, needs, direct = "t.direct", ("t.proxy",), True

        def directly(self, lab, host):
            return True

        def observe(self, lab):
            SEEN[self.id] = lab.web_hosts()
            return {host: True for host in lab.web_hosts()}

    class Unseen(Direct):
        id = "t.unseen"

        def directly(self, lab, host):
            return False

    class Plain(Direct):
        id, direct = "t.plain", False

    class Unsure(Direct):
        id = "t.unsure"

        def directly(self, lab, host):
            raise CheckError(f"{host}: unreachable over SSH")

    class Hidden(Proxy):
        id, needs, through_web = "t.hidden", ("t.proxy",), True

        def observe(self, lab):
            raise NotObservable("web-02 hides what this looks at")

    classes = [Nginx, Proxy, Direct, Unseen, Plain, Unsure, Hidden]
    monkeypatch.setenv("LAB_HOME", str(tmp_path))
    SEEN.clear()
    lab = QuietLab(load(PACKAGED), None)
    results = run_checks({c.id: c for c in classes}, classes, lab, "t").results
    return {r.id: r for r in results}


def test_a_direct_check_sees_the_host_its_prerequisite_was_not_run_on_graded_in_full(report):
    direct = report["t.direct"]
    assert SEEN["t.direct"] == ["web-01", "web-02"]
    assert direct.status is Status.PASS and direct.awarded == 5
    assert direct.evidence.endswith("(web-02 seen directly: t.proxy was not run there)")


def test_a_direct_check_that_cannot_see_a_host_runs_on_the_others_only(report):
    for check_id in ("t.unseen", "t.plain", "t.unsure"):
        result = report[check_id]
        assert SEEN[check_id] == ["web-01"], check_id
        assert result.not_run_hosts == ("web-02",) and result.awarded == 2, result


def test_a_check_that_cannot_observe_is_not_run_and_says_why(report):
    hidden = report["t.hidden"]
    assert hidden.status is Status.NOT_RUN and hidden.awarded == 0
    assert hidden.evidence.startswith("through web-01: not run: web-02 hides what this looks at")
