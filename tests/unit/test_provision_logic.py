"""Pure parts of provisioning: database flavours, templates, the zone and journal filtering."""

import json
from pathlib import Path

import pytest
from invoke import Result, UnexpectedExit
from invoke.exceptions import CommandTimedOut

from lab.core import topology
from lab.facts.systemd import own_lines
from provision import BASE, COMPONENTS, EXTRAS_ORDER, dbflavour, monitoring
from provision.app import application_files
from provision.dns import zone_text
from provision.engine import HostRun, StepFailed, render
from provision.runner import Run

FIXTURES = Path(__file__).parent / "fixtures"


def test_flavour_by_distribution_and_version():
    assert dbflavour.for_os('ID=debian\nVERSION_ID="12"\n') is dbflavour.MARIADB
    assert dbflavour.for_os('ID=ubuntu\nVERSION_ID="24.04"\n') is dbflavour.MYSQL
    assert dbflavour.for_version("10.11.19-MariaDB-0+deb12u1-log") is dbflavour.MARIADB
    assert dbflavour.for_version("8.0.36-0ubuntu0.22.04.1") is dbflavour.MYSQL


def test_change_source_statements_per_flavour():
    args = ("192.168.56.11", "replication", "s3cret", "mysql-bin.000001", 4)
    maria = dbflavour.MARIADB.change_source_sql(*args)
    mysql = dbflavour.MYSQL.change_source_sql(*args)
    assert maria.startswith("CHANGE MASTER TO MASTER_HOST='192.168.56.11'")
    assert "MASTER_LOG_POS=4" in maria
    assert mysql.startswith("CHANGE REPLICATION SOURCE TO SOURCE_HOST='192.168.56.11'")
    assert "SOURCE_LOG_FILE='mysql-bin.000001'" in mysql


def test_replica_config_is_read_only_and_primary_logs_binary():
    common = dict(
        host="web-02",
        address="192.168.56.12",
        server_id=3,
        read_only_settings=dbflavour.MYSQL.read_only_settings,
    )
    replica = render("mysqld.cnf.j2", role="replica", **common)
    primary = render("mysqld.cnf.j2", role="primary", **common)
    assert "super_read_only = ON" in replica and "log_bin" not in replica
    assert "log_bin = mysql-bin" in primary and "read_only" not in primary


def config_lines(text: str) -> list[str]:
    """The lines of a rendered configuration, stripped, without comments and blank lines."""
    return [line.strip() for line in text.splitlines() if line.strip()[:1] not in ("", "#")]


def haproxy_sections(cfg: str) -> dict[str, list[str]]:
    """HAProxy's sections ("backend web", ...) and their settings, from a rendered config."""
    sections: dict[str, list[str]] = {}
    for line in cfg.splitlines():
        if line[:1].isalpha():
            current = sections.setdefault(line.strip(), [])
        elif line.strip()[:1] not in ("", "#"):
            current.append(line.strip())
    return sections


def test_nginx_site_adds_the_real_hostname_and_proxies_to_the_app():
    site = config_lines(
        render(
            "nginx-site.conf.j2",
            host="shop-7",
            domain="example.test",
            app_dir="/opt/shop",
            app_bind="127.0.0.1:9123",
        )
    )
    assert "server_name example.test www.example.test shop-7;" in site
    assert "add_header X-Served-By $hostname always;" in site
    assert "proxy_pass http://127.0.0.1:9123;" in site
    assert "root /opt/shop/static;" in site
    assert "listen 80 default_server;" in site


def test_haproxy_is_round_robin_with_health_checks_on_every_web_server():
    web = [topology.Host(f"app-{n}", f"10.9.8.{n}", ("web",)) for n in (21, 22, 23)]
    cfg = render("haproxy.cfg.j2", servers=web, address="10.9.8.1", subnet="10.9.8.0/24")
    sections = haproxy_sections(cfg)
    assert "default_backend web" in sections["frontend www"]
    backend = sections["backend web"]
    assert "balance roundrobin" in backend and "option httpchk GET /healthz" in backend
    assert [line for line in backend if line.startswith("server ")] == [
        "server app-21 10.9.8.21:80 check",
        "server app-22 10.9.8.22:80 check",
        "server app-23 10.9.8.23:80 check",
    ]  # one per web host
    assert "backup" not in cfg  # active-active: no server stands by
    assert {"bind 10.9.8.1:8404", "acl lab_network src 10.9.8.0/24"} <= set(
        sections["listen stats"]
    )


def test_zone_points_www_at_the_load_balancer_with_a_cname_to_an_a_record():
    run = Run(topology.load(topology.PACKAGED), state=None, hosts={})
    zone = zone_text(run)
    assert "www     IN CNAME @" in zone
    assert "@       IN A    192.168.56.10" in zone
    assert "8.8.8.8" not in zone
    assert zone_text(run) == zone  # stable serial: a second run changes nothing


def test_journal_filter_keeps_the_services_own_lines():
    journal = (
        "Starting nginx.service - A high performance web server...\n"
        'nginx: [emerg] invalid parameter "nonsense" in /etc/nginx/conf.d/broken.conf:2\n'
        "nginx.service: Control process exited, code=exited, status=1/FAILURE\n"
        "nginx.service: Failed with result 'exit-code'.\n"
    )
    assert (
        own_lines(journal) == 'nginx: [emerg] invalid parameter "nonsense" in '
        "/etc/nginx/conf.d/broken.conf:2"
    )


def test_components_and_application_files():
    assert list(BASE) == ["database", "app", "web", "lb", "dns"]
    extras = [name for name in COMPONENTS if name not in BASE]
    assert extras == [name for name in EXTRAS_ORDER if name in extras]
    files = application_files()
    assert {"app.py", "static/index.html", "static/style.css", "static/app.js"} <= set(files)


def test_replication_password_changes_keep_the_replicas_position():
    assert dbflavour.MARIADB.source_password_sql("pw") == "CHANGE MASTER TO MASTER_PASSWORD='pw'"
    mysql = dbflavour.MYSQL.source_password_sql("pw")
    assert mysql == "CHANGE REPLICATION SOURCE TO SOURCE_PASSWORD='pw'"
    assert "LOG_POS" not in mysql


def test_readiness_covers_what_serves_through_a_rebuilt_component():
    """`lab provision web` reloads Nginx: HAProxy's health checks in front of it must pass
    again before the command says it is done."""
    from provision.ready import in_front

    assert in_front(["web"]) == ["web", "lb"]
    assert in_front(["database"]) == ["database", "app", "web", "lb"]
    assert in_front(["dns", "lb"]) == ["dns", "lb"]


def test_accounts_made_for_another_labs_network_are_dropped():
    """A reference state built for another grading slot, taken over: its accounts for the
    other subnet go; this lab's own are kept; a host value that is no account host is left."""
    from types import SimpleNamespace

    from provision import database, dbflavour

    run = Run(topology.load(topology.PACKAGED), state=None, hosts={})
    rows = (
        "replication\t192.168.231.0/255.255.255.0\n"
        "replication\t192.168.56.0/255.255.255.0\n"
        "webstack_read\tlocalhost\n"
        "webstack_write\t192.168.231.0/255.255.255.0\n"
        "webstack_write\tx'; DROP DATABASE webstack; --\n"
    )
    hr = SimpleNamespace(sh=lambda command, **kw: SimpleNamespace(stdout=rows))
    assert database.stale_accounts_sql(hr, run, dbflavour.MARIADB) == (
        "DROP USER 'replication'@'192.168.231.0/255.255.255.0';\n"
        "DROP USER 'webstack_write'@'192.168.231.0/255.255.255.0';\n"
    )


class AptHost:
    """A host's shell as packages() uses it: fresh lists that lack a package until updated."""

    def __init__(self, lists_fresh: bool):
        self.lists_fresh, self.updated, self.commands = lists_fresh, False, []

    def run(self, command, hide, warn, timeout, in_stream):
        self.commands.append(
            command.split("apt-get ")[-1].split()[0] if "apt-get" in command else command[:8]
        )
        out, code = "", 0
        if "find /var/lib/apt/lists" in command:
            out = "/var/lib/apt/lists/deb_Packages\n" if self.lists_fresh else ""
        elif "apt-get update" in command:
            self.updated = True
        elif "apt-get install" in command and not self.updated:
            code = 100  # E: Unable to locate package gunicorn
        result = Result(stdout=out, stderr="E: Unable to locate package gunicorn", exited=code)
        if code and not warn:
            raise UnexpectedExit(result)
        return result


def test_recent_lists_that_lack_a_package_are_updated_once_then_believed():
    host = AptHost(lists_fresh=True)
    assert HostRun("web-01", "192.168.56.11", host, _packages=set()).packages("gunicorn")
    assert host.commands[1:] == ["install", "update", "install"]


def test_stale_lists_are_updated_before_the_one_install():
    host = AptHost(lists_fresh=False)
    assert HostRun("web-01", "192.168.56.11", host, _packages=set()).packages("gunicorn")
    assert host.commands[1:] == ["update", "install"]


class SystemdHost:
    """A host's systemd as service() uses it: a unit whose process keeps the configuration it
    read when it started; a start while one is under way waits for that one, and a stop
    before that one ended never ends (MariaDB's)."""

    def __init__(self, status: str):
        self.status, self.running_config, self.config = status, "old", "new"

    def run(self, command, hide, warn, timeout, in_stream):
        out = ""
        for step in command.split(";"):
            if "is-active" in step:
                out = f"enabled\n{self.status}\n"
            elif "systemctl start" in step:  # a running unit's start changes nothing
                if self.status in ("inactive", "failed"):
                    self.running_config = self.config
                self.status = "active" if self.status != "reloading" else self.status
            elif "systemctl restart" in step:
                if self.status == "activating":
                    raise CommandTimedOut(Result(exited=-1), timeout)
                self.running_config, self.status = self.config, "active"
            elif "systemctl reload" in step:
                if self.status not in ("active", "reloading"):
                    raise UnexpectedExit(Result(stderr="Job canceled.", exited=1))
                self.running_config = self.config
        return Result(stdout=out, exited=0)


@pytest.mark.parametrize("status", ["activating", "active", "reloading", "inactive", "failed"])
@pytest.mark.parametrize("change", ["restart", "reload"])
def test_a_changed_configuration_is_the_one_the_service_runs(status, change):
    """Also on a host just booted, whose service is still starting with the configuration it
    found (a restored state of another lab: MariaDB bound to that lab's address)."""
    host = SystemdHost(status)
    hr = HostRun("web-01", "192.168.56.11", host, _packages=set())
    assert hr.service("mariadb", **{change: True})
    assert host.running_config == "new" and host.status in ("active", "reloading")


def test_an_unchanged_running_service_is_left_alone():
    host = SystemdHost("active")
    assert not HostRun("web-01", "192.168.56.11", host, _packages=set()).service("nginx")
    assert host.running_config == "old"


class PrometheusHost:
    """A host whose Prometheus says, through its runtime API, when it last loaded its
    configuration: the old load first, the new one from the `loads_after`-th question on."""

    def __init__(self, loads_after: int, succeeded: bool = True):
        self.asked, self.loads_after, self.succeeded = 0, loads_after, succeeded

    def run(self, command, hide, warn, timeout, in_stream):
        self.asked += 1
        stamp = (
            "2026-12-07T22:00:05.5Z" if self.asked > self.loads_after else "2026-12-07T21:00:00Z"
        )
        data = {"lastConfigTime": stamp, "reloadConfigSuccess": self.succeeded}
        return Result(stdout=json.dumps({"status": "success", "data": data}), exited=0)


SINCE = 1796680800  # 2026-12-07T22:00:00Z, by the host's clock before the reload


def test_provisioning_waits_until_prometheus_has_loaded_the_new_configuration():
    host = PrometheusHost(loads_after=3)
    monitoring.wait_for_configuration(HostRun("lb-01", "192.168.56.10", host), SINCE, 5)
    assert host.asked == 4  # three answers with the old configuration's time, then the new one


@pytest.mark.parametrize("succeeded", [True, False])
def test_a_configuration_prometheus_never_loads_fails_the_step(succeeded):
    host = PrometheusHost(loads_after=10**6 if succeeded else 0, succeeded=succeeded)
    with pytest.raises(StepFailed, match="did not load its configuration"):
        monitoring.wait_for_configuration(HostRun("lb-01", "192.168.56.10", host), SINCE, 0.6)
