"""HAProxy on the load balancer: round robin over both web servers, health checks, stats."""

import time

from provision.engine import HostRun
from provision.runner import Component, Run

SERVER_STATES = (
    "echo 'show servers state' | perl -MIO::Socket::UNIX -e "
    '\'$s = IO::Socket::UNIX->new(Peer => "/run/haproxy/admin.sock") or exit 1; '
    "print $s <STDIN>; print while <$s>'"
)


def wait_for_servers(hr: HostRun, names: list[str], seconds: float = 10.0) -> None:
    """Wait until HAProxy's health checks see every web server (operational state 2 = up)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        rows = [line.split() for line in hr.sh(SERVER_STATES, check=False).stdout.splitlines()]
        up = {row[3] for row in rows if len(row) > 5 and row[5] == "2"}
        if set(names) <= up:
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
        wait_for_servers(hr, [s.name for s in servers])

    run.each("lb", step, "lb")


COMPONENT = Component(
    name="lb",
    title="load balancer (HAProxy)",
    roles=("lb",),
    apply=configure,
    packages=lambda run, host: ("haproxy",),
)
