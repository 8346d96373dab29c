"""Name resolution on a host (getent), for names students use in configurations."""

from __future__ import annotations

import ipaddress
import re

from lab.remote.quoting import quote

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$")


def is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def plain(address: str) -> str:
    """address as the host it names: an IPv4-mapped IPv6 address (::ffff:192.0.2.1, which
    reaches the IPv4 host) as that IPv4 address; anything else as it is."""
    try:
        mapped = ipaddress.ip_address(address.strip("[]")).ipv4_mapped
    except (ValueError, AttributeError):
        return address
    return str(mapped) if mapped else address


def getent(names) -> str:
    """A shell line resolving names (valid host names only) the way the host itself does."""
    valid = [n for n in names if _NAME.match(n)]
    return "; ".join(f'echo "= {n}"; getent ahostsv4 {quote(n)}' for n in valid) or "true"


def parse_getent(text: str) -> dict[str, list[str]]:
    """name → IPv4 addresses from getent()."""
    found: dict[str, list[str]] = {}
    name = None
    for line in text.splitlines():
        if line.startswith("= "):
            name = line[2:].strip()
            found[name] = []
        elif name and line.split() and is_address(line.split()[0]):
            found[name] = list(dict.fromkeys([*found[name], line.split()[0]]))
    return found
