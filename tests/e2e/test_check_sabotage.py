"""`lab check` on a live lab: the reference passes everything; each check fails when its
requirement is broken, and passes again once the lab is restored."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from checks import CATALOGUE
from checks.base import BASE_SECTIONS
from lab.cli.commands.exercise import hint_ladder
from lab.core.topology import load
from lab.course.exercises import WORK
from tests.accuracy import (
    ANY,
    FAIL,
    PASS,
    Case,
    agrees,
    blocked,
    dependents,
    graded,
    off,
    passing,
    recording,
    shown,
    statuses,
)
from tests.e2e.conftest import haproxy_servers_down, wait_until

# The base design's checks: the extra sections have sabotage files of their own
# (test_firewall.py, test_https.py, test_monitoring.py, test_ha.py).
BASE = {check_id for check_id, cls in CATALOGUE.items() if cls.section in BASE_SECTIONS}

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("reference")]
SITE = "/etc/nginx/sites-available/webstack"
UNIT = "/etc/systemd/system/webstack-app.service"
ENV = "/etc/webstack/app.env"
HAPROXY = "/etc/haproxy/haproxy.cfg"


@dataclass(frozen=True)
class Sabotage:
    check: str
    host: str
    breaks: str  # shell run on host (as the lab user; sudo where needed)
    expect: str  # words the failed check's evidence must contain
    restore_host: str = ""  # shell run on host to restore (runtime state)
    restore_component: str = ""  # `lab provision COMPONENT` repairs the drift
    also: tuple = ()  # other checks the same breakage may fail (with what needs them)
    name: str = ""  # the test's id, where a check has more than one sabotage
    case: str = ""  # the failure the evidence names: `lab exercise hint N` climbs its own ladder
    last_hint: str = ""  # words the last rung of that ladder shows


def mysql(sql: str) -> str:
    return f'sudo mysql -e "{sql}"'


DENIED = "pymysql.err.OperationalError: (1045, \"Access denied for user 'webstack_read'@'localhost'"


PROXY_ALL = (
    "server {{ listen 80 default_server; add_header X-Served-By $hostname always; "
    "location / {{ proxy_pass http://127.0.0.1:8000; }} }}"
)
FIXED_STATUS = (
    "server {{ listen 80 default_server; add_header X-Served-By $hostname always; "
    "root /srv/webstack/app/static; "
    "location /api/status {{ default_type application/json; "
    'return 200 \'{{\\"host\\": \\"web-01\\", \\"pid\\": 1, \\"request_id\\": \\"fixed\\"}}\'; }} '
    "location / {{ proxy_pass http://127.0.0.1:8000; }} }}"
)


def write_site(text: str) -> str:
    """Shell replacing the Nginx site (base64: the shell expands nothing in it), then reload."""
    encoded = base64.b64encode(text.format().encode()).decode()
    return f"echo {encoded} | base64 -d | sudo tee {SITE} >/dev/null && sudo systemctl reload nginx"


def edit(path: str, sed: str, then: str) -> str:
    return f"sudo sed -i {sed} {path} && {then}"


RESTART_APP = "sudo systemctl daemon-reload && sudo systemctl restart webstack-app"
RELOAD_LB = "sudo systemctl reload haproxy"

SABOTAGES = [
    Sabotage(
        "servers.reachable",
        "web-02",
        "sudo hostname imposter",
        "calls itself 'imposter'",
        restore_host="sudo hostname web-02",
        also=("web.served-by", "http.www"),  # nginx still sends the name it started with
    ),
    Sabotage(
        "web.nginx",
        "web-02",
        "sudo systemctl stop nginx",
        "web-02: GET",
        restore_host="sudo systemctl start nginx",
        also=("lb.health-checks",),  # HAProxy sees web-02 down
    ),
    Sabotage(
        "web.static",
        "web-01",
        write_site(PROXY_ALL),
        "web-01: / answered HTTP 404",
        restore_component="web",
        also=("lb.round-robin", "http.www"),  # the page is gone for visitors too
    ),
    Sabotage(
        "web.reverse-proxy",
        "web-01",
        write_site(FIXED_STATUS),
        "same request_id",
        restore_component="web",
        also=("web.static", "lb.round-robin", "http.www"),  # the fake site proxies the page as well
    ),
    Sabotage(
        "web.served-by",
        "web-02",
        edit(SITE, "'s/X-Served-By $hostname/X-Served-By web-01/'", "sudo systemctl reload nginx"),
        "web-02 (hostname web-02): / sent X-Served-By: web-01",
        restore_component="web",
        also=("http.www",),  # the header names a server that never saw the request
    ),
    Sabotage(
        "app.server",
        "web-02",
        edit(UNIT, "'s/--bind 127.0.0.1:8000/--bind 0.0.0.0:8000/'", RESTART_APP),
        "0.0.0.0:8000: reachable from the network, not only by Nginx: GET /api/status at",
        restore_component="app",
    ),
    Sabotage(
        "app.database",
        "web-01",
        edit(
            ENV, "'s/^WEBSTACK_DB_READ_PASSWORD=.*/WEBSTACK_DB_READ_PASSWORD=wrong/'", RESTART_APP
        ),
        f"web-01: GET /api/guestbook answered HTTP 500; webstack-app.service logged: {DENIED}",
        restore_component="app",
    ),
    Sabotage(  # exercise 04's dead end: a replica that never read the accounts its dump loaded
        "app.database",
        "web-02",
        "sudo mysqldump mysql global_priv db tables_priv > /tmp/grants.sql && "
        + mysql("DROP USER 'webstack_read'@'localhost'")  # as on a replica before the dump
        + " && sudo mysql mysql < /tmp/grants.sql && rm -f /tmp/grants.sql",
        f"web-02: GET /api/guestbook answered HTTP 500; webstack-app.service logged: {DENIED}",
        restore_host=mysql("FLUSH PRIVILEGES"),
        name="app.database-accounts-not-loaded",
        case="accounts-not-loaded",
        last_hint="sudo mariadb -e 'FLUSH PRIVILEGES'",
    ),
    Sabotage(
        "files.code-base",
        "web-02",
        f"echo '# local change' | sudo tee -a /srv/webstack/app/app.py && {RESTART_APP}",
        "differ: app.py",
        restore_component="app",
    ),
    Sabotage(
        "lb.haproxy",
        "lb-01",
        "sudo systemctl stop haproxy",
        "lb-01",
        restore_host="sudo systemctl start haproxy",
    ),
    Sabotage(
        "lb.round-robin",
        "lb-01",
        edit(HAPROXY, "'s/balance roundrobin/balance source/'", RELOAD_LB),
        "balance source",
        restore_component="lb",
        also=("lb.active-active",),  # one server takes every request
    ),
    Sabotage(
        "lb.active-active",
        "lb-01",
        edit(HAPROXY, "'s/\\(server web-02 .*\\) check/\\1 check backup/'", RELOAD_LB),
        "web-02 stand(s) by as backup",
        restore_component="lb",
        also=("lb.round-robin",),  # the backup server takes none
    ),
    Sabotage(
        "lb.health-checks",
        "lb-01",
        edit(HAPROXY, "'s/:80 check/:80/'", RELOAD_LB),
        "is not health-checked",
        restore_component="lb",
    ),
    Sabotage(
        "db.servers",
        "web-02",
        "sudo systemctl stop mariadb",
        "web-02",
        restore_host="sudo systemctl start mariadb",
        also=("app.database",),  # web-02's application cannot read
    ),
    Sabotage(
        "db.replication",
        "web-02",
        mysql("STOP REPLICA"),
        "io=No",
        restore_host=mysql("START REPLICA"),
    ),
    Sabotage(
        "db.replica-read-only",
        "web-02",
        mysql("SET GLOBAL read_only = 0"),
        "web-02 accepted a write",
        restore_host=mysql("SET GLOBAL read_only = 1"),
    ),
    Sabotage(
        "db.app-roles",
        "web-02",
        edit(
            "/srv/webstack/app/app.py",
            '-e \'s|unix_socket=settings("DB_SOCKET", "/run/mysqld/mysqld.sock")|'
            "host=settings(\"DB_PRIMARY_HOST\")|' -e 's/DB_READ_/DB_WRITE_/g'",
            RESTART_APP,
        ),
        "it reads from the primary, not from its own replica",
        restore_component="app",
        also=("files.code-base",),  # web-02 runs changed application files
    ),
    Sabotage(
        "dns.www",
        "lb-01",
        "sudo sed -i 's/^www .*/www IN A 127.0.0.1/' /etc/nsd/foobar.com.zone && "
        "sudo systemctl restart nsd",
        "not the load balancer's address",
        restore_component="dns",
    ),
    Sabotage(
        "http.www",
        "lb-01",
        edit(
            HAPROXY,
            "'/^frontend www/a\\    http-request deny if { hdr(host) -i www.foobar.com }'",
            RELOAD_LB,
        ),
        "http://www.foobar.com/",
        restore_component="lb",
        also=("lb.round-robin", "lb.active-active"),  # HAProxy refuses the site's name
    ),
]


REFERENCE = passing()  # a plain `lab check`


def case_of(sabotage: Sabotage) -> Case:
    """The sabotage as a case: `lab check` on its check, the others it may fail and what needs
    them; its check fails, what needs that is not run, the others may fail, the rest passes."""
    targets = graded({sabotage.check, *sabotage.also})
    below = dependents({sabotage.check}) - {sabotage.check}

    def accepted(check: str) -> frozenset:
        if check == sabotage.check:
            return FAIL
        if check in below:
            return blocked(check, {sabotage.check})
        return ANY if check in targets else PASS

    want = {c: accepted(c) for c in shown(targets)}
    return Case(sabotage.name or sabotage.check, "sabotage", targets, want)


def check_json(lab, *what) -> tuple[int, dict]:
    result = lab("check", *what, "--json", check=False)
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)


def result_of(report: dict, check_id: str) -> dict:
    return next(c for c in report["checks"] if c["id"] == check_id)


def test_the_reference_lab_passes_every_check(provisioned_lab, tmp_path):
    """The one plain `lab check` of the reference: every check passes, 105 points."""
    junit = tmp_path / "report.xml"
    with recording(REFERENCE) as given:
        code, report = check_json(provisioned_lab, "--junit", str(junit))
        given["graded"] = report
    failing = [(c["id"], c["evidence"]) for c in report["checks"] if c["status"] != "pass"]
    assert code == 0 and not failing, failing
    assert report["score"] == report["max_score"] == 105
    assert agrees(REFERENCE, statuses(report))  # a plain `lab check`: the base design
    assert 'failures="0"' in junit.read_text()


def test_every_check_has_a_sabotage():
    assert {s.check for s in SABOTAGES} == BASE


@pytest.mark.long
@pytest.mark.parametrize("sabotage", SABOTAGES, ids=[s.name or s.check for s in SABOTAGES])
def test_breaking_a_requirement_fails_its_check(provisioned_lab, sabotage):
    """Only the sabotaged check and what needs it are graded: the check fails with its
    evidence and hint, nothing else the case does not allow fails, and after the repair every
    one of those checks passes again."""
    lab = provisioned_lab
    case = case_of(sabotage)
    with recording(case) as given:
        try:
            lab.ssh(sabotage.host, sabotage.breaks)
            code, report = _settled(
                lab, case, lambda r: result_of(r, sabotage.check)["status"] == "fail"
            )
            given["graded"] = report
            result = result_of(report, sabotage.check)
            assert code == 1 and result["status"] == "fail", result
            assert sabotage.expect in result["evidence"], result["evidence"]
            assert result["hint"] and result["awarded"] == 0
            if sabotage.case:
                _climb_the_cases_hints(lab, sabotage)
            assert agrees(case, statuses(report)), off(case, report)
        finally:
            if sabotage.restore_host:
                lab.ssh(sabotage.host, sabotage.restore_host)
            if sabotage.restore_component:
                lab("provision", sabotage.restore_component)
        code, report = _settled(lab, case, lambda r: agrees(case, statuses(r), "repaired"))
        given["repaired"] = report
    assert code == 0 and agrees(case, statuses(report), "repaired"), off(case, report, "repaired")


# With Nginx stopped on web-02 (HAProxy's health checks take it out), the balancer and web-02's
# application are judged from what can still be seen: a balancer that sends every visitor to
# one server, or an application open to the network, still fails; a server HAProxy keeps in
# the rotation though it cannot answer leaves the balancer's checks not run.
VISITORS_TO_WEB_01 = (
    "sudo sed -i 's/^    default_backend web$/    acl browser hdr_sub(User-Agent) -i Mozilla\\n"
    "    use_backend one if browser\\n    default_backend web/' " + HAPROXY + " && "
    "printf 'backend one\\n    server web-01 {web1}:80 check\\n' | sudo tee -a "
    + HAPROXY
    + " >/dev/null && "
    + RELOAD_LB
)
# a canned answer where the application listened (127.0.0.1:8000), the application stopped
CANNED = """import http.server, json
class Canned(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"host": "web-02", "pid": 1, "request_id": "fixed"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)
http.server.HTTPServer(("127.0.0.1", 8000), Canned).serve_forever()
"""
CANNED_APPLICATION = (
    f"sudo systemctl stop webstack-app && echo {base64.b64encode(CANNED.encode()).decode()} | "
    "base64 -d | sudo tee /run/lab-canned.py >/dev/null && sudo systemd-run --quiet "
    "--unit=lab-canned /usr/bin/python3 /run/lab-canned.py && sleep 1"
)
WEB_02_DOWN_AND = {
    "balance-source": (
        "lb-01",
        edit(HAPROXY, "'s/balance roundrobin/balance source/'", RELOAD_LB),
        {"lb.round-robin": ("fail", "balance source"), "lb.active-active": ("fail", "source")},
    ),
    "web-02-backup": (
        "lb-01",
        edit(HAPROXY, "'s/\\(server web-02 .*\\) check/\\1 check backup/'", RELOAD_LB),
        {
            "lb.round-robin": ("fail", "web-02 stand(s) by as backup"),
            "lb.active-active": ("fail", "web-02 stand(s) by as backup"),
        },
    ),
    "visitors-to-web-01-alone": (
        "lb-01",
        VISITORS_TO_WEB_01,
        {
            "lb.round-robin": ("fail", "backend one, whose active servers are web-01"),
            "lb.active-active": ("fail", "backend one, whose active servers are web-01"),
        },
    ),
    "no-health-checks": (
        "lb-01",
        edit(HAPROXY, "'s/:80 check/:80/'", RELOAD_LB),
        {
            "lb.round-robin": ("not-run", "web-02 cannot answer, yet HAProxy keeps it"),
            "lb.active-active": ("not-run", "web-02 cannot answer, yet HAProxy keeps it"),
        },
    ),
    "a-canned-application": (
        "web-02",
        CANNED_APPLICATION,
        {"app.server": ("fail", "web-02: two requests to /api/status got the same request_id")},
    ),
    "application-open-to-the-network": (
        "web-02",
        edit(UNIT, "'s/--bind 127.0.0.1:8000/--bind 0.0.0.0:8000/'", RESTART_APP),
        {"app.server": ("fail", "web-02: gunicorn (pid")},
    ),
}


@pytest.mark.long
@pytest.mark.parametrize("name", list(WEB_02_DOWN_AND))
def test_with_nginx_down_on_web_02_what_is_still_seen_is_still_judged(provisioned_lab, name):
    lab = provisioned_lab
    host, breaks, expected = WEB_02_DOWN_AND[name]
    breaks = breaks.replace("{web1}", lab.address("web-01"))
    try:
        lab.ssh("web-02", "sudo systemctl stop nginx")
        lab.ssh(host, breaks)
        if name != "no-health-checks":
            wait_until(lambda: haproxy_servers_down(lab) == 1, 30)
        _, report = check_json(lab, *expected)
    finally:
        lab.ssh(
            "web-02", "sudo systemctl stop lab-canned 2>/dev/null; sudo rm -f /run/lab-canned.py"
        )
        lab.ssh("web-02", "sudo systemctl start nginx")
        lab("provision", "lb" if host == "lb-01" else "app")
    for check_id, (status, words) in expected.items():
        result = result_of(report, check_id)
        assert result["status"] == status and words in result["evidence"], result


def test_a_check_run_leaves_no_trace(provisioned_lab):
    lab = provisioned_lab
    before = lab.ssh("web-01", mysql("SELECT COUNT(*) FROM webstack.guestbook") + " -N")
    users = "SELECT COUNT(*) FROM mysql.user WHERE user LIKE 'lab_check%'"
    check_json(lab, "database")
    for host in ("web-01", "web-02"):
        assert lab.ssh(host, mysql("SHOW DATABASES LIKE 'webstack_lab_check'")).strip() == ""
        assert lab.ssh(host, mysql(users) + " -N").strip() == "0"
    assert lab.ssh("web-01", mysql("SELECT COUNT(*) FROM webstack.guestbook") + " -N") == before


# what exercise 04's replica is graded on: the application's reads and the database section
READS = passing("app.database", "db.servers")
EXERCISE_04 = Path(__file__).parents[2] / "docs" / "exercises" / "04-database.md"


def replica_steps() -> list[str]:
    """The shell blocks of exercise 04's "Start the replica from the primary's data", as
    written: dump the primary with its position, then load it on the replica."""
    text = EXERCISE_04.read_text()
    section = text[text.index("## 3. Start the replica") : text.index("## 4.")]
    return re.findall(r"```sh[^\n]*\n(.*?)```", section, re.DOTALL)  # marks after sh


def test_exercise_04_starts_a_replica_with_the_pages_own_commands(provisioned_lab, tmp_path):
    """web-02 as a replica that has nothing yet; the page's dump and load, run as written
    (`sudo lab ...` in a root shell); then the replica runs and the application reads there."""
    lab = provisioned_lab
    steps = replica_steps()
    assert len(steps) == 2 and "mariadb-dump" in steps[0] and "mariadb <" in steps[1], steps
    shims = tmp_path / "bin"
    shims.mkdir()
    for name, body in (("sudo", 'exec "$@"'), ("lab", f'exec {sys.executable} -m lab "$@"')):
        (shims / name).write_text(f"#!/bin/sh\n{body}\n")
        (shims / name).chmod(0o755)
    env = lab.env(PATH=f"{shims}:{os.environ['PATH']}")
    empty = "STOP REPLICA; RESET REPLICA; SET GLOBAL gtid_slave_pos = ''; "
    empty += "DROP USER 'webstack_read'@'localhost'; DROP DATABASE webstack"
    lab.ssh("web-02", mysql(empty))
    try:
        shown = []
        for step in steps:
            run = subprocess.run(
                ["bash", "-e", "-c", step], cwd=tmp_path, env=env, capture_output=True, text=True
            )
            assert run.returncode == 0, run.stderr
            shown.append(run.stdout)
        position = shown[0].splitlines()  # the grep: the position the dump carries, only that
        assert position[0] == "CHANGE MASTER TO MASTER_USE_GTID=slave_pos;", shown[0]
        assert re.fullmatch(r"SET GLOBAL gtid_slave_pos='\d+-\d+-\d+';", position[1]), shown[0]
        assert len(position) == 2, shown[0]
        lab.ssh("web-02", mysql("START REPLICA"))
        code, report = _settled(lab, READS, lambda r: agrees(READS, statuses(r), "repaired"))
        assert code == 0 and agrees(READS, statuses(report)), off(READS, report)
    finally:  # whatever happened, web-02 reads its accounts and replicates again
        lab.ssh("web-02", mysql("FLUSH PRIVILEGES; START REPLICA"), check=False)


def _climb_the_cases_hints(lab, sabotage: Sabotage) -> None:
    """`lab exercise hint N` shows the evidence and the rungs of this failure's own ladder,
    up to its last (from wherever an earlier run of the lab left the ladder)."""
    exercise = next(n for n, work in WORK.items() if sabotage.check in work.checks)
    ladder = hint_ladder(sabotage.check, load(lab.topology), case=sabotage.case)
    assert ladder != hint_ladder(sabotage.check, load(lab.topology))
    words = [" ".join(rung.split()) for rung in ladder]
    for _ in ladder:
        shown = " ".join(lab("exercise", "hint", exercise, check=False).stdout.split())
        assert sabotage.expect in shown and any(rung in shown for rung in words), shown
    assert words[-1] in shown and sabotage.last_hint in shown, shown


def _settled(lab, case: Case, done, timeout: float = 10.0):
    """`lab check` on the case's checks until done(report) is truthy (services take a moment
    to restart), or the last report."""
    deadline = time.monotonic() + timeout
    while True:
        code, report = check_json(lab, *case.targets)
        if done(report) or time.monotonic() > deadline:
            return code, report
        time.sleep(0.5)
