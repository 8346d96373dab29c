"""VRRP on a load balancer: the IPv4 addresses on its interfaces and who speaks VRRP."""

from __future__ import annotations

import re
from dataclasses import dataclass

ADDRESSES = "ip -o -4 addr show"
RAW_SOCKETS = "ss -Hanp -w"  # raw sockets (VRRP is IP protocol 112), with their processes
VRRP_PROTOCOL = 112
_USER = re.compile(r'\("([^"]*)",pid=(\d+),fd=\d+\)')


@dataclass(frozen=True)
class Address:
    """One IPv4 address on an interface."""

    interface: str
    address: str
    prefixlen: int


def parse_addresses(text: str) -> list[Address]:
    """`ip -o -4 addr show` lines: '2: eth0    inet 192.168.56.10/24 brd ... scope global eth0'."""
    found = []
    for line in text.splitlines():
        words = line.split()
        if len(words) > 3 and words[2] == "inet" and "/" in words[3]:
            address, _, prefix = words[3].partition("/")
            found.append(Address(words[1].split("@")[0], address, int(prefix)))
    return found


def holds(addresses: list[Address], address: str) -> Address | None:
    """The entry of address among a host's addresses, or None."""
    return next((a for a in addresses if a.address == address), None)


def interface_of(addresses: list[Address], address: str) -> str | None:
    """The interface carrying address (the lab network's, for a host's own address)."""
    entry = holds(addresses, address)
    return entry.interface if entry else None


def vrrp_speakers(text: str) -> list[tuple[str, int]]:
    """(process, pid) holding a raw socket for IP protocol 112 (`ss -Hanp -w`)."""
    speakers = []
    for line in text.splitlines():
        words = line.split()
        local = next((w for w in words if ":" in w and not w.startswith("users:")), "")
        protocol = local.rpartition(":")[2]
        if protocol in (str(VRRP_PROTOCOL), "vrrp"):
            speakers += [(name, int(pid)) for name, pid in _USER.findall(line)]
    return sorted(set(speakers))
