"""No single point of failure at the load balancer: keepalived moves the site's virtual address
between the balancers (unicast VRRP), away from one whose HAProxy stops answering."""

from __future__ import annotations

from collections.abc import Callable

from lab.core.topology import Topology
from lab.facts import vrrp
from lab.remote.quoting import quote
from provision.engine import HostRun, StepFailed
from provision.runner import Component, Run

CONFIG = "/etc/keepalived/keepalived.conf"
TOP_PRIORITY, STEP = 150, 10  # the first balancer in the topology is the preferred holder


def unavailable(topology: Topology) -> str:
    """Why the component cannot be built on topology ('' when it can)."""
    if len(topology.with_role("lb")) < 2 or not topology.virtual_address:
        return "ha needs a second load balancer and a virtual address: use lab-ha.yml"
    return ""


def vrrp_password(secret: Callable[[str], str]) -> str:
    """The balancers' shared VRRP password: the lab's generated secret, cut to the 8 characters
    VRRP's simple authentication carries (exercise 11's page shows the same one)."""
    return secret("vrrp")[:8]


def router_id(topology: Topology) -> int:
    """The VRRP router id (1-255): the virtual address's last number, easy to recognise."""
    return int(topology.virtual_address.rsplit(".", 1)[1]) % 255 or 1


def hold(hr: HostRun, address: str, seconds: int = 20) -> None:
    """Wait until the preferred balancer holds address: a restarted keepalived starts as backup
    and takes it over after about three adverts (measured: 3 s), and `lab check ha` may follow."""
    pattern = quote(f" {address}/")
    wait = (
        f"for i in $(seq {seconds * 2}); do {vrrp.ADDRESSES} | grep -qF -- {pattern} && exit 0; "
        "sleep 0.5; done; exit 1"
    )
    if hr.sh(wait, sudo=False, check=False).exited != 0:
        why = f"keepalived did not take {address} within {seconds} s (journalctl -u keepalived)"
        raise StepFailed(hr.name, "ha", why)


def configure(run: Run) -> None:
    topology = run.topology
    balancers = topology.with_role("lb")
    password = vrrp_password(run.secret)

    def step(hr, host):
        found = vrrp.parse_addresses(hr.sh(vrrp.ADDRESSES, sudo=False).stdout)
        interface = vrrp.interface_of(found, host.address)
        if not interface:
            raise StepFailed(host.name, "ha", f"no interface carries {host.address}")
        changed = hr.template(
            CONFIG,
            "keepalived.conf.j2",
            mode="0600",
            host=host,
            peers=[b for b in balancers if b != host],
            interface=interface,
            priority=TOP_PRIORITY - STEP * balancers.index(host),
            router_id=router_id(topology),
            password=password,
            virtual_address=topology.virtual_address,
            prefixlen=topology.prefixlen,
        )
        if changed:
            hr.validate(f"keepalived -t -f {CONFIG}", "the keepalived configuration")
        hr.service("keepalived", restart=changed)
        if changed and host == balancers[0]:
            hold(hr, topology.virtual_address)

    run.each("lb", step, "ha")


COMPONENT = Component(
    name="ha",
    title="failover of the site's address (keepalived)",
    roles=("lb",),
    apply=configure,
    packages=lambda run, host: ("keepalived",),
    unavailable=unavailable,
)
