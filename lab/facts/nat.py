"""Port forwards in the host's NAT rules: the ports a DNAT or REDIRECT sends elsewhere, as
iptables (`iptables-save`) and nftables (`nft list ruleset`) print them.

A forward opens a port where nothing listens (ss shows none): 8080 → 127.0.0.1:8000 reaches an
application bound to loopback. The grader asks each such port from outside, as any other relay.
"""

from __future__ import annotations

import re

# both printers, each when installed (ufw's iptables-nft rules show in both: ports are a set)
RULES = "{ iptables-save -t nat; nft list ruleset; } 2>/dev/null; true"

_FORWARD = re.compile(r"\b(DNAT|REDIRECT|dnat|redirect)\b")
_DPORT = re.compile(r"(?:--dport|\bdport)\s+\{?\s*(\d+)")


def forwarded_ports(text: str) -> list[int]:
    """The destination ports (the first of a range or set) of the NAT rules that forward."""
    ports = set()
    for line in text.splitlines():
        if _FORWARD.search(line):
            ports.update(int(p) for p in _DPORT.findall(line) if 0 < int(p) < 65536)
    return sorted(ports)
