"""The reference infrastructure, built by `lab up --provision`, observed working from outside."""

from __future__ import annotations

import itertools
import shlex
import time
import uuid

import dns.resolver
import pytest
import requests

from tests.e2e.conftest import changed_count, lab_secret, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("reference")]


def lb_url(lab, path="/"):
    return f"http://{lab.address('lb-01')}{path}"


def served_by(lab, count: int, path="/") -> list[str]:
    """Who answered count requests through the balancer (or the HTTP status when nobody did)."""
    with requests.Session() as session:
        replies = [session.get(lb_url(lab, path), timeout=5) for _ in range(count)]
    return [r.headers.get("X-Served-By", f"HTTP {r.status_code}") for r in replies]


def test_requests_alternate_between_both_web_servers(provisioned_lab):
    seen = served_by(provisioned_lab, 10)
    assert set(seen) == {"web-01", "web-02"}
    assert all(a != b for a, b in itertools.pairwise(seen)), seen


def test_www_resolves_to_the_load_balancer_through_the_lab_dns(provisioned_lab):
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [provisioned_lab.address("lb-01")]
    answer = resolver.resolve("www.foobar.com", "A")
    assert [r.address for r in answer] == [provisioned_lab.address("lb-01")]
    cname = resolver.resolve("www.foobar.com", "CNAME")
    assert str(cname[0].target) == "foobar.com."


def test_static_content_comes_from_nginx_and_dynamic_from_the_app(provisioned_lab):
    page = requests.get(lb_url(provisioned_lab), timeout=5)
    assert page.status_code == 200 and "foobar.com" in page.text
    assert page.headers["Server"].startswith("nginx")
    status = requests.get(lb_url(provisioned_lab, "/api/status"), timeout=5).json()
    assert status["host"] in ("web-01", "web-02")
    assert status["database"]["role"] in ("primary", "replica")
    assert "entries" in status["database"]


def test_a_write_through_the_lb_is_readable_on_both_web_hosts(provisioned_lab):
    message = uuid.uuid4().hex
    reply = requests.post(
        lb_url(provisioned_lab, "/api/guestbook"),
        json={"name": "e2e", "message": message},
        timeout=5,
    )
    assert reply.status_code == 201 and reply.json()["written_to"] == "web-01"
    for host in ("web-01", "web-02"):
        url = f"http://{provisioned_lab.address(host)}/api/guestbook"

        def visible(url=url):
            book = requests.get(url, timeout=5).json()
            return any(e["message"] == message for e in book["entries"]) and book

        assert wait_until(visible, timeout=5)["read_from"] == host


def test_the_replica_is_read_only_and_replicating(provisioned_lab):
    status = requests.get(
        f"http://{provisioned_lab.address('web-02')}/api/status", timeout=5
    ).json()["database"]
    assert status["role"] == "replica" and status["read_only"] is True
    assert status["io_running"] == "Yes" and status["sql_running"] == "Yes"
    password = lab_secret(provisioned_lab, "db_write_password")
    insert = (
        "INSERT INTO webstack.guestbook (name, message, written_via) VALUES ('x', 'direct', 'test')"
    )
    command = (
        f"mysql -h {provisioned_lab.address('web-02')} -u webstack_write "
        f"-p{shlex.quote(password)} -e {shlex.quote(insert)} 2>&1 || true"
    )
    out = provisioned_lab.ssh("web-02", command)
    assert "read-only" in out or "read_only" in out, out


def test_a_stopped_web_server_leaves_the_rotation_and_comes_back(provisioned_lab):
    provisioned_lab.ssh("web-01", "sudo systemctl stop nginx")
    try:
        started = time.monotonic()
        wait_until(lambda: set(served_by(provisioned_lab, 4)) == {"web-02"}, timeout=10)
        assert time.monotonic() - started < 10
        assert set(served_by(provisioned_lab, 6)) == {"web-02"}
    finally:
        provisioned_lab.ssh("web-01", "sudo systemctl start nginx")
    wait_until(lambda: set(served_by(provisioned_lab, 4)) == {"web-01", "web-02"}, timeout=10)


def test_stats_page_is_served_to_the_lab_network(provisioned_lab):
    page = requests.get(f"http://{provisioned_lab.address('lb-01')}:8404/stats", timeout=5)
    assert page.status_code == 200 and "web-01" in page.text and "web-02" in page.text


def test_a_second_provision_changes_nothing(provisioned_lab):
    started = time.monotonic()
    out = provisioned_lab("provision").stdout
    assert time.monotonic() - started < 15
    assert changed_count(out) == 0 and "FAILED" not in out


def test_provisioning_one_component_after_drift_repairs_only_that(provisioned_lab):
    provisioned_lab.ssh(
        "web-02", "echo '# drift' | sudo tee -a /etc/nginx/sites-available/webstack"
    )
    out = provisioned_lab("provision", "web").stdout
    assert changed_count(out) == 2, out  # the site rewritten and Nginx reloaded, on web-02
    assert "# drift" not in provisioned_lab.ssh("web-02", "cat /etc/nginx/sites-available/webstack")
    assert changed_count(provisioned_lab("provision", "web").stdout) == 0


def test_a_failing_service_names_host_step_and_its_own_error(provisioned_lab):
    bad = "server {\\n listen 80 nonsense_option;\\n}\\n"
    provisioned_lab.ssh("web-01", f"printf '{bad}' | sudo tee /etc/nginx/conf.d/broken.conf")
    provisioned_lab.ssh("web-01", "sudo systemctl stop nginx")
    try:
        result = provisioned_lab("provision", "web", check=False)
        assert result.returncode == 1
        assert "web-01" in result.stdout and "FAILED" in result.stdout
        flat = " ".join(result.stdout.split()).replace("│", "")
        assert "nginx did not start" in flat and "nonsense_option" in flat, result.stdout
    finally:
        provisioned_lab.ssh("web-01", "sudo rm -f /etc/nginx/conf.d/broken.conf")
    assert provisioned_lab("provision", "web").returncode == 0


def test_unknown_component_is_one_clear_error(provisioned_lab):
    result = provisioned_lab("provision", "cache", check=False)
    assert result.returncode == 2
    assert "unknown component 'cache'" in result.stderr
