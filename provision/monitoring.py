"""Monitoring: Prometheus on each load balancer, node exporter everywhere, HAProxy's exporter.

Prometheus scrapes node exporter on every host (by lab address) and HAProxy's built-in exporter,
and alerts when a web server leaves the rotation or the replica stops replicating. MariaDB has
no exporter here: a timer on the replica writes its state for node exporter's textfile collector.
"""

from __future__ import annotations

import json

from lab.core.topology import KNOWN_ROLES
from lab.core.wait import until
from lab.facts import prometheus as prometheus_facts
from provision.engine import HostRun, StepFailed
from provision.runner import Component, Run

EXPORTER_PORT = 8405  # HAProxy's Prometheus exporter, on each load balancer's lab address
PROMETHEUS_CONFIG = "/etc/prometheus/prometheus.yml"
RULES = "/etc/prometheus/webstack-rules.yml"
HAPROXY_CONFD = "/etc/haproxy/conf.d"  # loaded after haproxy.cfg: the lb component's file stays
HAPROXY_EXPORTER = f"{HAPROXY_CONFD}/monitoring.cfg"
HAPROXY_DROPIN = "/etc/systemd/system/haproxy.service.d/webstack-confd.conf"
HAPROXY_FILES = f"-f /etc/haproxy/haproxy.cfg -f {HAPROXY_CONFD}"
TEXTFILE_DIR = "/var/lib/prometheus/node-exporter"  # Debian's textfile collector directory
REPLICA_UNIT = "webstack-replica-metrics"
REPLICA_SCRIPT = f"/usr/local/sbin/{REPLICA_UNIT}"
PROMETHEUS_API = "http://localhost:9090/api/v1"
LOAD_SECONDS = 60.0  # a Prometheus just installed replays its data before it reads a reload


def exporters(run: Run) -> None:
    """Node exporter running on every host."""
    run.parallel(
        COMPONENT.hosts(run.topology),
        lambda hr, host: hr.service("prometheus-node-exporter"),
        "monitoring",
    )


def haproxy_exporter(hr: HostRun, host, subnet: str) -> None:
    """HAProxy's exporter in a file of its own, loaded beside haproxy.cfg (one drop-in)."""
    if hr.sh("command -v haproxy", check=False).failed:
        raise StepFailed(hr.name, "monitoring", "no HAProxy here: run `lab provision lb` first")
    changed = hr.template(
        HAPROXY_EXPORTER,
        "monitoring/haproxy-exporter.cfg.j2",
        address=host.address,
        port=EXPORTER_PORT,
        subnet=subnet,
    )
    dropin = hr.file(
        HAPROXY_DROPIN,
        "# webstack lab: HAProxy also loads /etc/haproxy/conf.d (managed by `lab provision`)\n"
        f'[Service]\nEnvironment="CONFIG=/etc/haproxy/haproxy.cfg -f {HAPROXY_CONFD}"\n',
    )
    if changed or dropin:
        hr.validate(f"haproxy -c -q {HAPROXY_FILES}", "the HAProxy configuration")
    if dropin:  # new -f arguments: only a restart reads them
        hr.sh("systemctl daemon-reload")
    hr.service("haproxy", restart=dropin, reload=changed)


def prometheus(hr: HostRun, run: Run) -> None:
    """Prometheus with the lab's scrape targets and alert rules."""
    changed = hr.template(
        PROMETHEUS_CONFIG,
        "monitoring/prometheus.yml.j2",
        rules=RULES,
        hosts=run.topology.hosts,
        balancers=run.topology.with_role("lb"),
        exporter_port=EXPORTER_PORT,
    )
    changed |= hr.template(RULES, "monitoring/rules.yml.j2")
    if changed:
        hr.validate(f"promtool check config {PROMETHEUS_CONFIG}", "the Prometheus configuration")
    since = int(hr.sh("date +%s").stdout.strip())  # by the host's clock, as Prometheus says it
    hr.service("prometheus", reload=changed)
    if changed:
        wait_for_configuration(hr, since)


def wait_for_configuration(hr: HostRun, since: int, seconds: float = LOAD_SECONDS) -> None:
    """Wait until Prometheus has loaded its configuration at or after since: a reload is a
    signal it acts on in its own time (once ready: one just installed replays its data first),
    and until then it scrapes what the old configuration named."""

    def loaded() -> bool:
        out = hr.sh(f"curl -fsS {PROMETHEUS_API}/status/runtimeinfo", check=False).stdout
        try:
            info = json.loads(out)["data"]
        except (ValueError, KeyError, TypeError):
            return False
        stamp = prometheus_facts.epoch_seconds(str(info.get("lastConfigTime", "")))
        return bool(info.get("reloadConfigSuccess")) and stamp is not None and stamp >= since

    if not until(loaded, seconds, 0.5):
        raise StepFailed(
            hr.name, hr.component, f"Prometheus did not load its configuration in {seconds:.0f} s"
        )


def replica_metrics(hr: HostRun) -> None:
    """A timer writing the replica's state (both threads running?) every 5 s for node exporter."""
    changed = hr.template(
        REPLICA_SCRIPT, "monitoring/replica-metrics.sh.j2", mode="0755", directory=TEXTFILE_DIR
    )
    units = hr.template(
        f"/etc/systemd/system/{REPLICA_UNIT}.service",
        "monitoring/replica-metrics.service.j2",
        script=REPLICA_SCRIPT,
    )
    units |= hr.template(
        f"/etc/systemd/system/{REPLICA_UNIT}.timer", "monitoring/replica-metrics.timer.j2"
    )
    if units:
        hr.sh("systemctl daemon-reload")
    hr.service(f"{REPLICA_UNIT}.timer", restart=changed or units)


def configure(run: Run) -> None:
    exporters(run)
    subnet = str(run.topology.subnet)

    def balancer(hr, host):
        haproxy_exporter(hr, host, subnet)
        prometheus(hr, run)

    run.each("lb", balancer, "monitoring")
    run.each("db-replica", lambda hr, host: replica_metrics(hr), "monitoring")


def packages(run: Run, host) -> tuple[str, ...]:
    return (
        ("prometheus", "prometheus-node-exporter")
        if "lb" in host.roles
        else ("prometheus-node-exporter",)
    )


COMPONENT = Component(
    name="monitoring",
    title="monitoring (Prometheus, node exporter, HAProxy's exporter)",
    roles=tuple(sorted(KNOWN_ROLES)),
    apply=configure,
    packages=packages,
)
