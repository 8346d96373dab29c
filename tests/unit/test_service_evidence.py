"""Evidence a student can act on: why a service did not start (its journal's error, never a
notice), and a running configuration older than its file."""

from __future__ import annotations

import time

from lab.facts import haproxy, proc, systemd
from tests.helpers import judge, recorded

# `journalctl -u haproxy -n 20 -o cat` on lb-01 (HAProxy 2.6.12, Debian 12), recorded after
# a stop, an unknown keyword added to haproxy.cfg and `systemctl restart haproxy`
HAPROXY_RESTART_FAILED = """\
Stopping haproxy.service - HAProxy Load Balancer...
[NOTICE]   (50) : haproxy version is 2.6.12-1+deb12u4
[NOTICE]   (50) : path to executable is /usr/sbin/haproxy
[WARNING]  (50) : Exiting Master process...
[ALERT]    (50) : Current worker (58) exited with code 143 (Terminated)
[WARNING]  (50) : All workers exited. Exiting... (0)
haproxy.service: Deactivated successfully.
Stopped haproxy.service - HAProxy Load Balancer.
Starting haproxy.service - HAProxy Load Balancer...
[NOTICE]   (1091) : haproxy version is 2.6.12-1+deb12u4
[NOTICE]   (1091) : path to executable is /usr/sbin/haproxy
[ALERT]    (1091) : config : parsing [/etc/haproxy/haproxy.cfg:29] : unknown keyword 'frobnicate' in 'backend' section
[ALERT]    (1091) : config : Error(s) found in configuration file : /etc/haproxy/haproxy.cfg
[ALERT]    (1091) : config : Fatal errors found in configuration.
haproxy.service: Main process exited, code=exited, status=1/FAILURE
haproxy.service: Failed with result 'exit-code'.
Failed to start haproxy.service - HAProxy Load Balancer.
"""  # noqa: E501


def test_the_reason_haproxy_did_not_start_is_its_first_alert_of_the_last_start():
    assert systemd.start_failure(HAPROXY_RESTART_FAILED) == (
        "[ALERT] (1091) : config : parsing [/etc/haproxy/haproxy.cfg:29] : unknown keyword "
        "'frobnicate' in 'backend' section"
    )


def test_a_service_stopped_on_purpose_gives_no_reason_to_quote():
    stopped = HAPROXY_RESTART_FAILED.split("Starting ")[0]  # the worker's [ALERT] 143 included
    assert systemd.start_failure(stopped) == ""
    reloaded = (
        "Starting nginx.service - nginx...\nStarted nginx.service - nginx.\n"
        "Reloaded nginx.service - nginx.\n"
    )
    assert systemd.start_failure(reloaded) == ""  # the line the old evidence quoted


def test_nginx_that_cannot_bind_port_80_says_so():
    journal = (
        "Starting nginx.service - A high performance web server...\n"
        "nginx: [emerg] bind() to 0.0.0.0:80 failed (98: Address already in use)\n"
        "nginx: [emerg] still could not bind()\n"
        "nginx.service: Control process exited, code=exited, status=1/FAILURE\n"
    )
    assert systemd.start_failure(journal) == (
        "nginx: [emerg] bind() to 0.0.0.0:80 failed (98: Address already in use)"
    )


def test_notices_and_warnings_are_not_errors():
    assert not systemd.is_error("[NOTICE]   (50) : haproxy version is 2.6.12-1+deb12u4")
    assert not systemd.is_error("[WARNING]  (50) : All workers exited. Exiting... (0)")
    assert systemd.is_error("[ALERT]    (9) : Starting frontend www: cannot bind socket")


def balancer(**extra) -> dict:
    """lb.haproxy's observation of lb-01 (as recorded) once HAProxy stopped: nothing answers
    through it, and its stats socket neither (extra: what else differs)."""
    o = {k: v for k, v in recorded("lb.haproxy").items() if k != "status"}
    o.update(
        running=False,
        reading="a private copy",
        stat=None,
        loaded=None,
        mtimes={},
        listeners=[],
        error="GET http://192.168.56.10/: connection refused",
        journal="",
        installed=True,
    )
    return {**o, **extra}


def test_lb_haproxy_quotes_the_journal_not_the_socket_error():
    verdict = judge("lb.haproxy", balancer(journal=systemd.start_failure(HAPROXY_RESTART_FAILED)))
    assert not verdict.passed
    assert "HAProxy is not running" in verdict.evidence
    assert "unknown keyword 'frobnicate'" in verdict.evidence
    assert "connection refused" not in verdict.evidence


def test_lb_haproxy_says_when_the_package_is_absent():
    assert haproxy.parse_installed("install ok installed\n")
    assert not haproxy.parse_installed("deinstall ok config-files\n")
    assert not haproxy.parse_installed("\n")
    verdict = judge("lb.haproxy", balancer(installed=False))
    assert "HAProxy is not installed" in verdict.evidence


def test_random_bytes_on_port_80_name_the_program_not_a_journal_line():
    o = balancer(listeners=["perl"], error="GET http://192.168.56.10/: ConnectionError")
    verdict = judge("lb.haproxy", o)
    assert verdict.evidence == (
        "lb-01: port 80 belongs to perl, not HAProxy (GET http://192.168.56.10/: ConnectionError)"
    )
    hosts = {"web-02": {"listeners": ["perl"], "loaded": None, "mtimes": {}, "config_ok": True,
                        "config_error": "", "error": "GET http://192.168.56.12/: ConnectionError",
                        "journal": ""}}  # fmt: skip
    verdict = judge("web.nginx", hosts)
    assert verdict.evidence.startswith("web-02: port 80 belongs to perl, not Nginx")


# recorded on web-01: `grep '^btime ' /proc/stat; echo "ticks $(getconf CLK_TCK)";
# cat /proc/63/stat /proc/1768/stat; stat -L -c 'mtime %.9Y %n' FILES` (stat lines shortened
# after starttime, field 22)
LOADED_AND_CHANGED = """\
btime 1796557182
ticks 100
63 (nginx) S 1 63 63 0 -1 4194624 78 0 0 0 0 0 0 0 20 0 1 0 395977 10854400 400 1
1768 (nginx) S 63 63 63 0 -1 4194624 40 0 0 0 0 0 0 0 20 0 1 0 446011 11116544 900 1
mtime 1796561481.052824057 /etc/nginx/nginx.conf
mtime 1796561666.500000000 /etc/nginx/sites-enabled/my site
"""


def test_the_start_of_the_youngest_process_and_the_files_mtimes():
    started, mtimes = proc.parse_loaded_and_changed(LOADED_AND_CHANGED)
    assert started == {63: 1796557182 + 3959.77, 1768: 1796557182 + 4460.11}
    assert mtimes["/etc/nginx/sites-enabled/my site"] == 1796561666.5


def test_a_file_changed_after_the_configuration_was_loaded_is_named():
    loaded = 1796561642.11
    mtimes = {"/etc/nginx/nginx.conf": 1796561481.05, "/etc/nginx/sites-enabled/s": loaded + 24}
    assert proc.stale_config(loaded, mtimes) == ("/etc/nginx/sites-enabled/s", loaded + 24)
    words = proc.older_than_file("Nginx", loaded, mtimes)
    assert words == (
        f"Nginx has been running since {time.strftime('%H:%M:%S', time.localtime(loaded))}, "
        f"before s changed at {time.strftime('%H:%M:%S', time.localtime(loaded + 24))}: the "
        "running configuration is older than the file; reload it"
    )


def test_a_reload_in_the_same_second_as_the_edit_is_not_stale():
    loaded = 1796561642.9
    assert proc.stale_config(loaded, {"/etc/haproxy/haproxy.cfg": loaded + 0.8}) is None
    assert proc.stale_config(loaded, {"/etc/haproxy/haproxy.cfg": loaded - 60}) is None
    assert proc.stale_config(None, {"/etc/haproxy/haproxy.cfg": loaded}) is None
    assert proc.older_than_file("HAProxy", loaded, {}) == ""


def test_haproxy_fails_when_the_file_changed_since_it_loaded_it():
    """The balancer's rules are read from the file: a running configuration older than the
    file (an edit not reloaded, or a fake loaded and the file put back) cannot be vouched for."""
    o = balancer(
        listeners=["haproxy"],
        running=True,
        status=200,
        loaded=1000.0,
        mtimes={"/etc/haproxy/haproxy.cfg": 1100.0},
    )
    for answered in ("error", "journal", "installed"):  # kept only when no answer came
        del o[answered]
    verdict = judge("lb.haproxy", o)
    assert not verdict.passed
    assert "HAProxy has been running since" in verdict.evidence
    assert "before haproxy.cfg changed at" in verdict.evidence
    assert "systemctl reload haproxy" in verdict.hint


def test_a_file_put_back_with_an_old_mtime_is_changed_by_its_ctime():
    """`cp ref.cfg haproxy.cfg; touch -d '2 hours ago' haproxy.cfg`: the ctime still says when."""
    text = "mtime 1796550000.000000000 1796561700.250000000 /etc/haproxy/haproxy.cfg\n"
    assert proc.parse_loaded_and_changed(text)[1] == {"/etc/haproxy/haproxy.cfg": 1796561700.25}
