"""A firewall on every host (ufw): incoming denied by default, each port open only to whom needs it.

SSH from anywhere on every host; HTTP, HTTPS (and DNS where it is served) from anywhere on the
load balancers; on the others, Nginx only from the load balancers, MariaDB only from the other
database host and node exporter only from the load balancers (Prometheus runs there).
"""

from __future__ import annotations

import re
import shlex

from lab.core.topology import KNOWN_ROLES, Host, Topology
from provision.engine import HostRun
from provision.runner import Component, Run

SSH, HTTP, HTTPS, DNS, MYSQL = 22, 80, 443, 53, 3306
NODE_EXPORTER = 9100  # scraped by Prometheus on the load balancers (the monitoring component)
HAPROXY_EXPORTER = 8405  # on each load balancer, scraped by the other balancers' Prometheus
DATABASE_ROLES = ("db-primary", "db-replica")
SHOW_ADDED = "ufw show added"
DEFAULTS_FILE = "/etc/default/ufw"
WANTED_POLICIES = {"DEFAULT_INPUT_POLICY": "DROP", "DEFAULT_OUTPUT_POLICY": "ACCEPT"}
# A connection opened before the firewall is picked up by conntrack mid-stream as NEW when the
# far side speaks first, and dropped: the replica, which only listens on its connection to the
# primary, would stall until slave_net_timeout (60 s). So it reconnects once the firewall is on.
RECONNECT_REPLICA = (
    "if command -v mysql >/dev/null && mysql -N -e 'SHOW REPLICA STATUS' 2>/dev/null | grep -q .; "
    "then mysql -e 'STOP REPLICA IO_THREAD; START REPLICA IO_THREAD'; fi"
)
_POLICY = re.compile(r'^(DEFAULT_[A-Z]+_POLICY)="?([A-Z]+)"?\s*$', re.MULTILINE)


def _from(hosts: list[Host], port: int | None = None, proto: str = "tcp") -> list[str]:
    """ufw rules admitting each of hosts (to one port, or one IP protocol)."""
    if port is None:
        return [f"allow from {h.address} proto {proto}" for h in hosts]
    return [f"allow from {h.address} to any port {port} proto {proto}" for h in hosts]


def rules(topology: Topology, host: Host) -> list[str]:
    """host's ufw rules, spelt as `ufw show added` prints them (so a second run compares)."""
    others = [h for h in topology.hosts if h.name != host.name]
    balancers = [h for h in others if "lb" in h.roles]
    wanted = [f"allow {SSH}/tcp"]
    if "lb" in host.roles:
        wanted += [f"allow {HTTP}/tcp", f"allow {HTTPS}/tcp"]
        wanted += _from(balancers, HAPROXY_EXPORTER) + _from(balancers, proto="vrrp")
    if "dns" in host.roles:
        wanted.append(f"allow {DNS}")  # UDP and TCP
    if "web" in host.roles and "lb" not in host.roles:
        wanted += _from(balancers, HTTP)
    if set(DATABASE_ROLES) & set(host.roles):
        databases = [h for h in others if set(DATABASE_ROLES) & set(h.roles)]
        wanted += _from(databases, MYSQL)
    wanted += _from(balancers, NODE_EXPORTER)
    return wanted


def added(output: str) -> list[str]:
    """The rules in `ufw show added` (without the leading `ufw`), in order."""
    return [line.strip()[4:] for line in output.splitlines() if line.strip().startswith("ufw ")]


def policies(defaults: str) -> dict[str, str]:
    """DEFAULT_*_POLICY values of /etc/default/ufw."""
    return dict(_POLICY.findall(defaults))


def converge(hr: HostRun, wanted: list[str]) -> bool:
    """Make ufw hold exactly wanted, with the default policies, and enable it: rules first, so
    SSH is admitted before the firewall starts dropping. True when it was enabled now."""
    have = added(hr.sh(SHOW_ADDED).stdout)
    for rule in [r for r in have if r not in wanted]:
        hr.sh(f"ufw --force delete {shlex.join(shlex.split(rule))}")
        hr.changed(f"ufw: removed {rule}")
    for rule in [r for r in wanted if r not in have]:
        hr.sh(f"ufw {shlex.join(shlex.split(rule))}")
        hr.changed(f"ufw: {rule}")
    current = policies(hr.sh(f"cat {DEFAULTS_FILE}").stdout)
    for key, value in WANTED_POLICIES.items():
        if current.get(key) != value:
            direction = "incoming" if "INPUT" in key else "outgoing"
            hr.sh(f"ufw default {'deny' if value == 'DROP' else 'allow'} {direction}")
            hr.changed(f"ufw: default {value} {direction}")
    if "Status: active" in hr.sh("ufw status").stdout:
        return False
    hr.sh("ufw --force enable")
    hr.changed("ufw: enabled")
    return True


def configure(run: Run) -> None:
    def step(hr: HostRun, host: Host) -> None:
        if converge(hr, rules(run.topology, host)) and "db-replica" in host.roles:
            hr.sh(RECONNECT_REPLICA)

    run.parallel([h for h in run.topology.hosts if h.name not in run.failures], step, "firewall")


COMPONENT = Component(
    name="firewall",
    title="firewall (ufw)",
    roles=tuple(sorted(KNOWN_ROLES)),
    apply=configure,
    packages=lambda run, host: ("ufw",),
)
