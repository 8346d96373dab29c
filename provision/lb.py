"""HAProxy on the load balancer: round robin over both web servers, health checks, stats."""

from provision.runner import Component, Run


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

    run.each("lb", step, "lb")


COMPONENT = Component(
    name="lb",
    title="load balancer (HAProxy)",
    roles=("lb",),
    apply=configure,
    packages=lambda run, host: ("haproxy",),
)
