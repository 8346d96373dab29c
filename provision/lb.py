"""HAProxy on the load balancer: round robin over both web servers, health checks, stats."""

import time

from facts import haproxy
from provision.engine import HostRun
from provision.runner import Component, Run

ADMIN_SOCKET = "/run/haproxy/admin.sock"


def wait_for_servers(hr: HostRun, servers, seconds: float = 10.0) -> None:
    """Wait until HAProxy's health checks see every web server (matched by address) up."""
    addresses = {server.name: server.address for server in servers}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        out = hr.sh(haproxy.runtime_api("show stat", ADMIN_SOCKET), check=False).stdout
        rows = haproxy.servers_at(haproxy.parse_show_stat(out), addresses)
        if len(rows) == len(addresses) and all(haproxy.server_up(r) for r in rows.values()):
            return
        time.sleep(0.3)


def configure(run: Run) -> None:
    servers = run.topology.with_role("web")

    def step(hr, host):
        changed = hr.template(
            "/etc/haproxy/haproxy.cfg",
            "haproxy.cfg.j2",
            servers=servers,
            address=host.address,
            subnet=str(run.topology.subnet),
        )
        if changed:
            hr.validate("haproxy -c -q -f /etc/haproxy/haproxy.cfg", "the HAProxy configuration")
        hr.service("haproxy", reload=changed)
        wait_for_servers(hr, servers)

    run.each("lb", step, "lb")


COMPONENT = Component(
    name="lb",
    title="load balancer (HAProxy)",
    roles=("lb",),
    apply=configure,
    packages=lambda run, host: ("haproxy",),
)
