"""HAProxy on the load balancer: round robin over both web servers, health checks, stats."""

from lab.core.topology import Host
from lab.core.wait import until
from lab.facts import haproxy, proc
from provision.engine import HostRun
from provision.runner import Component, Run

ADMIN_SOCKET = "/run/haproxy/admin.sock"
TLS_PEM = "/etc/haproxy/certs/site.pem"  # the https component's certificate and key


def wait_for_servers(hr: HostRun, servers, seconds: float = 10.0) -> None:
    """Wait until HAProxy's health checks see every web server (matched by address) up."""
    addresses = {server.name: server.address for server in servers}

    def all_up() -> bool:
        out = hr.sh(haproxy.runtime_api("show stat", ADMIN_SOCKET), check=False).stdout
        rows = haproxy.servers_at(haproxy.parse_show_stat(out), addresses)
        return len(rows) == len(addresses) and all(haproxy.server_up(r) for r in rows.values())

    until(all_up, seconds, 0.3)


def older_than_config(hr: HostRun, path: str = "/etc/haproxy/haproxy.cfg") -> bool:
    """Whether the running HAProxy (its youngest process) started before path last changed
    (mtime or ctime), as lb.haproxy judges it."""
    pids = hr.sh("pgrep -x haproxy", check=False).stdout.split()
    if not pids:
        return False
    started, changed = proc.parse_loaded_and_changed(
        hr.sh(proc.loaded_and_changed(pids, [path]), check=False).stdout
    )
    return proc.stale_config(max(started.values()) if started else None, changed) is not None


def configure_host(run: Run, hr: HostRun, host: Host, reload: bool = False) -> None:
    """Write haproxy.cfg (with TLS once the https component installed its certificate)."""
    servers = run.topology.with_role("web")
    tls = hr.sh(f"test -f {TLS_PEM}", check=False).ok
    changed = hr.template(
        "/etc/haproxy/haproxy.cfg",
        "haproxy.cfg.j2",
        servers=servers,
        address=host.address,
        subnet=str(run.topology.subnet),
        tls=TLS_PEM if tls else "",
    )
    if not changed and older_than_config(hr):  # a configuration loaded, then the file put back
        hr.changed("haproxy: reloaded (what ran was older than haproxy.cfg)")
        reload = True
    if changed or reload:
        hr.validate("haproxy -c -q -f /etc/haproxy/haproxy.cfg", "the HAProxy configuration")
    hr.service("haproxy", reload=changed or reload)
    wait_for_servers(hr, servers)


def configure(run: Run) -> None:
    run.each("lb", lambda hr, host: configure_host(run, hr, host), "lb")


COMPONENT = Component(
    name="lb",
    title="load balancer (HAProxy)",
    roles=("lb",),
    apply=configure,
    packages=lambda run, host: ("haproxy",),
)
