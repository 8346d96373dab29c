"""HAProxy on the load balancer: round robin over both web servers, health checks, stats."""

import csv
import io
import shlex
import time

from provision.engine import HostRun
from provision.runner import Component, Run

ADMIN_SOCKET = "/run/haproxy/admin.sock"


def runtime_api(command: str, socket: str = ADMIN_SOCKET) -> str:
    """A shell line sending command to HAProxy's runtime API (perl: on every Debian server)."""
    script = (
        '$s = IO::Socket::UNIX->new(Peer => $ARGV[0]) or die "cannot open $ARGV[0]\\n";'
        " print $s <STDIN>; print while <$s>;"
    )
    return (
        f"echo {shlex.quote(command)} | perl -MIO::Socket::UNIX -e {shlex.quote(script)} {socket}"
    )


def parse_show_stat(text: str) -> list[dict[str, str]]:
    """HAProxy's `show stat` CSV as dicts (the header line starts with '# ')."""
    return list(csv.DictReader(io.StringIO(text.lstrip("# "))))


def backend_servers(rows: list[dict[str, str]], names: list[str]) -> dict[str, dict[str, str]]:
    """The rows of the servers called names (in whichever backend holds them)."""
    return {row["svname"]: row for row in rows if row.get("svname") in names}


def servers_up(show_stat: str, names: list[str]) -> bool:
    """Whether HAProxy sees every server called names UP."""
    rows = backend_servers(parse_show_stat(show_stat), names)
    return set(rows) == set(names) and all(r["status"].startswith("UP") for r in rows.values())


def wait_for_servers(hr: HostRun, names: list[str], seconds: float = 10.0) -> None:
    """Wait until HAProxy's health checks see every web server up."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if servers_up(hr.sh(runtime_api("show stat"), check=False).stdout, names):
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
