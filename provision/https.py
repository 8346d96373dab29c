"""HTTPS on the load balancer: HAProxy terminates TLS with a certificate from the lab's own CA,
sends plain HTTP to HTTPS and tells browsers to stay there (HSTS)."""

from __future__ import annotations

from lab.core import ca
from lab.core.topology import Host
from provision import lb
from provision.engine import HostRun
from provision.runner import Component, Run


def configure(run: Run) -> None:
    cert, key = ca.site_certificate(run.state, run.topology.domain, run.topology.subnet)

    def step(hr: HostRun, host: Host) -> None:
        renewed = hr.file(lb.TLS_PEM, cert + key, mode="0600")
        lb.configure_host(run, hr, host, reload=renewed)

    run.each("lb", step, "https")


COMPONENT = Component(
    name="https",
    title="HTTPS (TLS on the load balancer, lab CA)",
    roles=("lb",),
    apply=configure,
    packages=lambda run, host: ("haproxy",),
)
