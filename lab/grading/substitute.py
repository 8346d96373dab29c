"""The substitution rule: a student's server addresses become the lab's, as an instructor would.

In a file, every IPv4 address that is not loopback, unspecified, a netmask or already one of
the lab's is a server address. The distinct ones, in order of first appearance, become the
addresses of the hosts the assignment lists for that file (web-01, then web-02, ...).
Addresses beyond the list are left as they are and reported.
"""

from __future__ import annotations

import ipaddress
import re

IPV4 = re.compile(
    r"(?<![\d.])((?:25[0-5]|2[0-4]\d|1?\d?\d)(?:\.(?:25[0-5]|2[0-4]\d|1?\d?\d)){3})(?![\d.])"
)


def server_addresses(text: str, lab_addresses: set[str]) -> list[str]:
    """The distinct server addresses in text, in order of first appearance."""
    seen: list[str] = []
    for match in IPV4.finditer(text):
        value = match.group(1)
        address = ipaddress.IPv4Address(value)
        if (
            value in seen
            or value in lab_addresses
            or address.is_loopback
            or address.is_unspecified
            or value.startswith("255.")
        ):
            continue
        seen.append(value)
    return seen


def substitute(
    text: str, targets: list[tuple[str, str]], lab_addresses: set[str]
) -> tuple[str, list[dict]]:
    """text with its server addresses replaced by targets' [(host, address)], and the list."""
    found = server_addresses(text, lab_addresses)
    mapping = {old: targets[i] for i, old in enumerate(found) if i < len(targets)}
    changes = [
        {"found": old, "replaced_by": address, "host": host}
        for old, (host, address) in mapping.items()
    ]
    changes += [{"found": old, "replaced_by": "", "host": ""} for old in found[len(targets) :]]
    if not mapping:
        return text, changes
    result = IPV4.sub(lambda m: mapping.get(m.group(1), (None, m.group(1)))[1], text)
    return result, changes
