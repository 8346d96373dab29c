"""The lab network for LXC: a bridge, NAT to the package mirror and an egress fence (nftables)."""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from lab.core import platform
from lab.core.errors import LabError
from lab.core.state import write_private
from lab.core.system import run
from lab.core.topology import Topology
from lab.providers.lxcimage import MIRROR, SECURITY_MIRROR

FORWARD = Path("/proc/sys/net/ipv4/ip_forward")
IPV6_CONF = Path("/proc/sys/net/ipv6/conf")
INOTIFY_INSTANCES = Path("/proc/sys/fs/inotify/max_user_instances")
# Each container's systemd, dbus, logind and getty take inotify instances of the machine's root
# user: with the kernel's default of 128, about the 20th running container fails to boot.
MIN_INOTIFY_INSTANCES = 8192


BRIDGE_PREFIX = "wsl-"
REFUSED_INSIDE, REFUSED_OUTSIDE = "refused_inside", "refused_outside"  # the fence's counters
MIRRORS = (MIRROR, SECURITY_MIRROR)


def bridge_name(topology: Topology) -> str:
    return f"{BRIDGE_PREFIX}{topology.name}"


def table_name(topology: Topology) -> str:
    return f"webstack_lab_{topology.name.replace('-', '_')}"


def upstream_resolver() -> str:
    """The machine's DNS resolver, as an address the containers can reach through NAT."""
    for conf in ("/etc/resolv.conf", "/run/systemd/resolve/resolv.conf"):
        try:
            lines = Path(conf).read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) >= 2 and fields[0] == "nameserver":
                try:
                    address = ipaddress.ip_address(fields[1])
                except ValueError:
                    continue
                if address.version == 4 and not address.is_loopback:
                    return str(address)
    raise LabError(
        "no usable DNS resolver for the lab hosts (only loopback ones in /etc/resolv.conf)",
        hint="the hosts need a resolver reachable through NAT to find the package mirror",
    )


def conflicting_routes(subnet: ipaddress.IPv4Network, own_bridge: str) -> list[str]:
    """Routes on this machine that overlap subnet, other than the lab's own bridge."""
    routes = json.loads(run(["ip", "-j", "-4", "route", "show", "table", "all"]).stdout or "[]")
    return overlapping(routes, subnet, own_bridge)


def overlapping(routes: list[dict], subnet: ipaddress.IPv4Network, own_bridge: str) -> list[str]:
    """The routes (as `ip -j route` prints them) that overlap subnet and are not the lab's."""
    found = []
    for route in routes:
        dst = route.get("dst", "")
        if dst in ("", "default") or route.get("dev") == own_bridge:
            continue
        try:
            network = ipaddress.IPv4Network(dst if "/" in dst else f"{dst}/32", strict=False)
        except ValueError:
            continue
        if network.overlaps(subnet) and route.get("type", "unicast") in ("unicast", "local"):
            found.append(f"{dst} dev {route.get('dev', '?')}")
    return sorted(set(found))


def mirror_addresses(urls: tuple[str, ...]) -> list[str]:
    """The IPv4 addresses of the package mirrors' hosts, as this machine resolves them."""
    found: list[str] = []
    for url in urls:
        name = urlsplit(url).hostname or ""
        try:
            infos = socket.getaddrinfo(name, 80, socket.AF_INET, socket.SOCK_STREAM)
        except OSError:
            continue
        found += [info[4][0] for info in infos if info[4][0] not in found]
    return found


def nft_ruleset(topology: Topology, resolver: str, mirrors: list[str] | None = None) -> str:
    """The lab's nftables table: NAT out; nothing out but DNS to the resolver and HTTP(S).

    HTTP(S) goes only to the package mirrors when their addresses are known. Hosts reach
    neither the machine itself (only its replies to connections it opened) nor another lab,
    over IPv4 or IPv6: an `inet` table sees both (an `ip` one lets IPv6 through). The counters
    count what the hosts tried: a late packet of a connection already closed (conntrack's
    `invalid`, e.g. the last ACK of an SSH session the grader ended) is dropped uncounted.
    """
    bridge, subnet = bridge_name(topology), topology.subnet
    web = f"ip daddr {{ {', '.join(mirrors)} }} " if mirrors else "meta nfproto ipv4 "
    return f"""\
table inet {table_name(topology)} {{
    counter {REFUSED_INSIDE} {{ comment "packets from the hosts to the machine or other labs" }}
    counter {REFUSED_OUTSIDE} {{ comment "packets from the hosts to the outside world" }}
    chain input {{
        type filter hook input priority filter; policy accept;
        iifname "{bridge}" ct state established,related accept
        iifname "{bridge}" ct state invalid drop
        iifname "{bridge}" counter name "{REFUSED_INSIDE}" drop
    }}
    chain forward {{
        type filter hook forward priority filter; policy accept;
        iifname "{bridge}" oifname "{bridge}" accept
        ct state established,related accept
        iifname "{bridge}" ct state invalid drop
        iifname "{bridge}" oifname "{BRIDGE_PREFIX}*" counter name "{REFUSED_INSIDE}" drop
        iifname "{bridge}" ip daddr {resolver} udp dport 53 accept
        iifname "{bridge}" ip daddr {resolver} tcp dport 53 accept
        iifname "{bridge}" {web}tcp dport {{ 80, 443 }} accept
        iifname "{bridge}" counter name "{REFUSED_OUTSIDE}" drop
    }}
    chain postrouting {{
        type nat hook postrouting priority srcnat; policy accept;
        ip saddr {subnet} oifname != "{bridge}" masquerade
    }}
}}
"""


def counter_packets(nft_json: str) -> int:
    """The packets of the named counter in `nft -j list counter ...` output (0 if none)."""
    try:
        items = json.loads(nft_json or "{}").get("nftables", [])
    except ValueError:
        return 0
    return sum(item["counter"].get("packets", 0) for item in items if "counter" in item)


class LabNetwork:
    """Creates and removes the bridge, the nft table and IPv4 forwarding for one lab."""

    def __init__(self, topology: Topology, state):
        self.topology = topology
        self.state = state
        self.bridge = bridge_name(topology)
        self.table = table_name(topology)

    def bridge_exists(self) -> bool:
        return Path(f"/sys/class/net/{self.bridge}").exists()

    def table_exists(self, family: str = "inet") -> bool:
        """family `ip`: the table of an older `lab`, which saw IPv4 only."""
        return run(["nft", "list", "table", family, self.table], check=False).returncode == 0

    def refused(self) -> dict[str, int]:
        """Packets the fence refused so far: {"inside": to the machine or another lab,
        "outside": to the world beyond the mirror} (zeros when the table is gone)."""
        found = {"inside": 0, "outside": 0}
        for key, name in (("inside", REFUSED_INSIDE), ("outside", REFUSED_OUTSIDE)):
            listed = run(["nft", "-j", "list", "counter", "inet", self.table, name], check=False)
            found[key] = counter_packets(listed.stdout if listed.returncode == 0 else "")
        return found

    def disable_ipv6(self) -> None:
        """No IPv6 on the bridge: the lab is IPv4 only, and the machine gets no address there."""
        setting = IPV6_CONF / self.bridge / "disable_ipv6"
        if setting.is_file() and setting.read_text().strip() != "1":
            setting.write_text("1\n")

    @contextmanager
    def _machine_lock(self) -> Iterator[None]:
        """One lab at a time changes the machine's networks: routes checked before a bridge is
        added, and IPv4 forwarding turned off only when no other lab's bridge is left."""
        path = self.state.dir.parent.parent / "network.lock"
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(path, "w") as handle:
            platform.lock(handle, wait=True)
            yield

    def ensure(self, resolver: str) -> None:
        """Bring the network up; parts already there are left alone."""
        with self._machine_lock():
            self._ensure(resolver)

    def _ensure(self, resolver: str) -> None:
        if not self.bridge_exists():
            conflicts = conflicting_routes(self.topology.subnet, self.bridge)
            if conflicts:
                raise LabError(
                    f"{self.topology.subnet} is already routed on this machine ({conflicts[0]}); "
                    "refusing to take it over",
                    hint="set another network.subnet (and name) in lab.yml",
                )
            run(["ip", "link", "add", "name", self.bridge, "type", "bridge"])
            self.state.save(bridge=self.bridge)
            gateway = f"{self.topology.gateway}/{self.topology.prefixlen}"
            run(["ip", "addr", "add", gateway, "dev", self.bridge])
        self.disable_ipv6()  # before the bridge is up: no link-local address is ever assigned
        run(["ip", "link", "set", self.bridge, "up"])
        if not self.table_exists():
            mirrors = mirror_addresses(MIRRORS)
            run(["nft", "-f", "-"], input=nft_ruleset(self.topology, resolver, mirrors))
            self.state.save(nft_table=self.table)
        if self.table_exists("ip"):  # an older lab's IPv4-only table, replaced by the one above
            run(["nft", "delete", "table", "ip", self.table])
        if FORWARD.read_text().strip() != "1":
            write_private(self.forwarding_record, FORWARD.read_text())
            FORWARD.write_text("1\n")
        ensure_inotify_instances()

    @property
    def forwarding_record(self) -> Path:
        """Machine-wide: forwarding's value before any lab turned it on."""
        return self.state.dir.parent.parent / "ip_forward_before_lab"

    def remove(self) -> None:
        """Remove the bridge and nft table; the last lab gone restores IPv4 forwarding."""
        with self._machine_lock():
            self._remove()

    def _remove(self) -> None:
        for family in ("inet", "ip"):
            if self.table_exists(family):
                run(["nft", "delete", "table", family, self.table])
        if self.bridge_exists():
            run(["ip", "link", "delete", self.bridge])
        other_labs = list(Path("/sys/class/net").glob("wsl-*"))
        if not other_labs and self.forwarding_record.is_file():
            FORWARD.write_text(self.forwarding_record.read_text())
            self.forwarding_record.unlink()


def ensure_inotify_instances(path: Path = INOTIFY_INSTANCES) -> None:
    """Raise the machine's inotify instances per user to what many labs' containers need."""
    try:
        current = int(path.read_text())
    except (OSError, ValueError):
        return  # not Linux's /proc: nothing to raise
    if current < MIN_INOTIFY_INSTANCES:
        path.write_text(f"{MIN_INOTIFY_INSTANCES}\n")
