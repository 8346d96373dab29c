"""A host's IP addresses, IPv4 and IPv6, by interface (`ip -o addr show`)."""

from __future__ import annotations

from dataclasses import dataclass

ADDRESSES = "ip -o addr show"
UNUSABLE = frozenset({"tentative", "dadfailed"})  # not (yet) an address a connection can use


@dataclass(frozen=True)
class Address:
    """One address on an interface."""

    interface: str
    family: str  # "4" or "6"
    address: str
    prefixlen: int
    scope: str  # host, link, global (site: an old IPv6 scope)
    flags: frozenset[str] = frozenset()  # tentative, deprecated, dadfailed, ...


def parse(text: str) -> list[Address]:
    """`ip -o addr show` lines: '2: eth0    inet6 fe80::1/64 scope link \\  valid_lft ...'."""
    found = []
    for line in text.splitlines():
        words = line.replace("\\", " ").split()
        if len(words) < 4 or words[2] not in ("inet", "inet6") or "/" not in words[3]:
            continue
        address, _, prefix = words[3].partition("/")
        scope = words[words.index("scope") + 1] if "scope" in words[:-1] else ""
        flags = frozenset(w for w in words[4:] if w in UNUSABLE | {"deprecated", "noprefixroute"})
        family = "6" if words[2] == "inet6" else "4"
        if prefix.isdigit():
            found.append(
                Address(words[1].split("@")[0], family, address, int(prefix), scope, flags)
            )
    return found


def interface_of(addresses: list[Address], address: str) -> str | None:
    """The interface carrying address (the lab network's, for a host's own lab address)."""
    return next((a.interface for a in addresses if a.address == address), None)


def ipv6_addresses(addresses: list[Address], address: str) -> list[str]:
    """Where another host of the lab network may reach this one over IPv6: the link-local
    address of the interface carrying address (its lab address; scoped by the asking host's own
    interface), then every global one. None of loopback or not (yet) usable (tentative)."""
    link = interface_of(addresses, address)
    usable = [a for a in addresses if a.family == "6" and not a.flags & UNUSABLE]
    local = [a.address for a in usable if a.scope == "link" and a.interface == link]
    wide = [a.address for a in usable if a.scope in ("global", "site")]
    return list(dict.fromkeys(local + wide))
