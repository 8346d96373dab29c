"""`lab check` on the reference lab: a slow site cannot hold the run past its deadline, and
the evidence names the cause (the journal's reason HAProxy did not start, a running
configuration older than its file)."""

from __future__ import annotations

import json
import time

import pytest

from tests.e2e.conftest import by_id, check_json

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("reference")]
SITE = "/etc/nginx/sites-available/webstack"
HAPROXY = "/etc/haproxy/haproxy.cfg"
SAVED = "/root/haproxy.cfg.e2e"


def test_a_slow_site_is_cut_off_at_the_deadline_and_the_rest_is_graded(provisioned_lab):
    lab = provisioned_lab
    try:
        lab.ssh(
            "web-01",
            f"sudo sed -i 's/^\\( *listen 80 default_server;\\)/\\1 limit_rate 100;/' {SITE} && "
            f"grep -q 'limit_rate 100' {SITE} && sudo systemctl reload nginx",
        )
        started = time.monotonic()
        result = lab("check", "--deadline", "20", "--json", check=False)
        took = time.monotonic() - started
        report = json.loads(result.stdout)
        checks = {c["id"]: c for c in report["checks"]}
        late = [
            c for c in checks.values() if c["evidence"].startswith("did not finish within 20 s")
        ]
        assert result.returncode == 1 and late, checks
        assert any("still waiting for GET http://" in c["evidence"] for c in late), late
        assert report["seconds"] < 20 + 4, report["seconds"]
        assert took < 20 + 15, took  # the process: start, SSH, the late threads letting go
        # the checks that do not go through the slow site are graded all the same
        for check_id in ("servers.reachable", "db.servers", "dns.www"):
            assert checks[check_id]["status"] == "pass", checks[check_id]
    finally:
        lab("provision", "web")
    assert by_id(check_json(lab, "web.static"))["web.static"]["status"] == "pass"


def test_haproxy_that_does_not_start_is_shown_with_its_journals_alert(provisioned_lab):
    lab = provisioned_lab
    try:
        lab.ssh(
            "lb-01",
            f"sudo cp {HAPROXY} {SAVED} && "
            f"sudo sed -i 's/^\\( *balance roundrobin\\)/\\1\\n    frobnicate yes/' {HAPROXY} && "
            "{ sudo systemctl restart haproxy; true; }",
        )
        checks = by_id(check_json(lab, "lb.haproxy", "lb.round-robin"))
        evidence = checks["lb.haproxy"]["evidence"]
        assert "HAProxy is not running" in evidence, evidence
        assert "[ALERT]" in evidence and "unknown keyword 'frobnicate'" in evidence, evidence
        assert "connection refused" not in evidence, evidence
        # a grade that leaves lb.haproxy out still shows why round robin was not run
        assert "unknown keyword 'frobnicate'" in checks["lb.round-robin"]["evidence"]
    finally:
        lab.ssh(
            "lb-01",
            f"sudo cp {SAVED} {HAPROXY} && sudo systemctl reset-failed haproxy; "
            "sudo systemctl restart haproxy",
        )


def test_a_configuration_edited_without_a_reload_is_older_than_the_file(provisioned_lab):
    lab = provisioned_lab
    try:
        time.sleep(1.5)  # past the second in which the services may have loaded their files
        lab.ssh("lb-01", f"echo '# edited' | sudo tee -a {HAPROXY} >/dev/null")
        lab.ssh("lb-01", "sudo service haproxy start")  # a running service: nothing reloads
        lab.ssh("web-01", f"echo '# edited' | sudo tee -a {SITE} >/dev/null")
        checks = by_id(check_json(lab, "lb.haproxy", "web.nginx"))
        lb, web = checks["lb.haproxy"]["evidence"], checks["web.nginx"]["evidence"]
        # what runs is not what the file says: the balancer's rules are read from the file
        assert checks["lb.haproxy"]["status"] == "fail", lb
        assert "systemctl reload haproxy" in checks["lb.haproxy"]["hint"], checks["lb.haproxy"]
        assert "HAProxy has been running since" in lb and "before haproxy.cfg changed" in lb, lb
        assert "older than the file" in lb, lb
        assert "web-01: Nginx has been running since" in web and "older than the file" in web, web
        assert "web-02: Nginx" not in web, web
        lab.ssh("lb-01", "sudo systemctl reload haproxy")
        lab.ssh("web-01", "sudo systemctl reload nginx")
        time.sleep(1)
        checks = by_id(check_json(lab, "lb.haproxy", "web.nginx"))
        assert checks["lb.haproxy"]["status"] == "pass", checks["lb.haproxy"]
        assert "older than the file" not in checks["lb.haproxy"]["evidence"]
        assert "older than the file" not in checks["web.nginx"]["evidence"]
    finally:
        lab.ssh("lb-01", f"sudo sed -i '/^# edited$/d' {HAPROXY} && sudo systemctl reload haproxy")
        lab.ssh("web-01", f"sudo sed -i '/^# edited$/d' {SITE} && sudo systemctl reload nginx")
