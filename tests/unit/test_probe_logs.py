"""The grader confirms its visitor-like probes in the web servers' own access logs: on builds
that log otherwise than the reference (recorded `nginx -T`, real files, a real shell)."""

import subprocess

import pytest

from lab.core.topology import PACKAGED, load
from lab.facts import nginx
from lab.observe import probes
from lab.observe.live import LiveLab
from tests.record import read_raw

SITE_LOG = "/var/log/nginx/foobar.access.log"
SITE_NAME = "server_name .foobar.com;"


class LocalLab(LiveLab):
    """The packaged lab whose web-01 is this machine: its Nginx dump is a recorded one, with its
    log files moved under a directory of the test's."""

    def __init__(self, dump: str, logs):
        super().__init__(load(PACKAGED), None)
        self.dump, self.logs = dump.replace("/var/log/nginx/", f"{logs}/"), logs

    def sh(self, host, command, sudo=False, check=True, timeout=15):
        if command == nginx.DUMP:
            return self.dump
        return subprocess.run(["sh", "-c", command], capture_output=True, text=True).stdout

    def client_address(self):
        return "192.168.56.1"


def visits() -> str:
    """Seven of the grader's GET / (from the balancer and this machine), among other lines."""
    return read_raw("access-log-web-01").replace("192.168.204.", "192.168.56.")


def probed(tmp_path, dump: str, written: dict) -> int | None:
    """What the grader reads on web-01 after the files written gained their lines."""
    lab = LocalLab(dump, tmp_path)
    (tmp_path / "access.log").write_text("an older line\n")
    marks = probes.log_marks(lab, "web-01")
    for name, text in written.items():
        with (tmp_path / name).open("a") as log:
            log.write(text)
    return probes.logged_since(lab, "web-01", marks)


def dot_named_site(*lines: str) -> str:
    """The recorded site named .foobar.com beside Debian's default, with lines added to it."""
    dump = read_raw("nginx-T-dot-name-beside-default-web-01")
    return dump.replace(SITE_NAME, "\n    ".join((SITE_NAME, *lines)))


def test_a_site_named_with_a_leading_dot_logs_to_its_own_file_beside_the_default_site():
    dump = dot_named_site()
    for host in ("www.foobar.com", "foobar.com", "WWW.FooBar.com."):
        assert nginx.site_access_logs(dump, host, address="192.168.211.11") == [SITE_LOG], host
    assert nginx.site_access_logs(dump, "example.org") == ["/var/log/nginx/access.log"]
    assert nginx.location_for(dump, "www.foobar.com", "/static/app.css")[0] == "/static/"
    assert nginx.location_for(dump, "example.org", "/static/app.css") == ("/", [])


def test_the_probes_are_found_in_the_sites_own_log_not_the_default_sites(tmp_path):
    assert probed(tmp_path, dot_named_site(), {"foobar.access.log": visits()}) == 7


def test_a_request_logged_to_two_files_counts_once(tmp_path):
    dump = dot_named_site("access_log /var/log/nginx/copy.log;")
    assert set(nginx.site_access_logs(dump, "www.foobar.com")) == {
        SITE_LOG,
        "/var/log/nginx/copy.log",
    }
    both = {"foobar.access.log": visits(), "copy.log": visits()}
    assert probed(tmp_path, dump, both) == 7


def test_a_probe_logged_by_another_server_block_is_still_found(tmp_path):
    """A block the grader did not expect took the requests: their log still shows them."""
    assert probed(tmp_path, dot_named_site(), {"access.log": visits()}) == 7


@pytest.mark.parametrize(
    "line",
    [
        "access_log off;",
        "access_log syslog:server=unix:/dev/log;",
        "access_log /var/log/nginx/site.log.gz combined gzip flush=5m;",
        "access_log /var/log/nginx/site.log combined buffer=32k;",
        "access_log /var/log/nginx/site.log combined if=$loggable;",
        "access_log /var/log/nginx/$host.log;",
    ],
)
def test_a_site_that_logs_to_no_file_at_once_cannot_confirm_and_says_so(tmp_path, line):
    dump = dot_named_site().replace(f"access_log {SITE_LOG};", line)
    assert nginx.site_access_logs(dump, "www.foobar.com") is None
    assert probed(tmp_path, dump, {"access.log": ""}) is None


def test_syslog_beside_a_file_is_confirmed_by_the_file(tmp_path):
    dump = dot_named_site("access_log syslog:server=unix:/dev/log;")
    assert probed(tmp_path, dump, {"foobar.access.log": visits()}) == 7


def test_a_probe_no_log_holds_is_not_counted(tmp_path):
    """A fake: X-Served-By named web-01, but web-01's Nginx logged nothing."""
    assert probed(tmp_path, dot_named_site(), {"foobar.access.log": "", "access.log": ""}) == 0
