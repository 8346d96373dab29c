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
# a rule's destination ports: a port, a list or range (iptables), a set, a map keyed by port, a
# verdict map, or a named set or map (nft), each as printed
_PORTS = re.compile(r"(?:--dports?|\bdport)\s+(map\s+|vmap\s+)?(@[\w.-]+|\{[^}]*\}|[\d,:-]+)")
_BLOCK = re.compile(r"^\s*(set|map|chain)\s+(\S+)\s*\{(.*?)^\s*\}", re.M | re.S)
_ELEMENTS = re.compile(r"elements\s*=\s*\{([^}]*)\}", re.S)
_JUMP = re.compile(r"\b(?:jump|goto)\s+(\S+)")


def forwarded_ports(text: str) -> list[int]:
    """The destination ports (the first of each range) of the NAT rules that forward: where a
    rule forwards itself, or a verdict map sends a port to a chain that forwards."""
    named = {}
    forwarding_chains = set()
    for kind, name, body in _BLOCK.findall(text):
        if kind == "chain":
            if _FORWARD.search(body):
                forwarding_chains.add(name)
        else:
            elements = _ELEMENTS.search(body)
            named[name] = "{" + (elements.group(1) if elements else "") + "}"
    ports = set()
    for line in text.splitlines():
        forwards = bool(_FORWARD.search(line))
        for how, spec in _PORTS.findall(line):
            keyed = bool(how) or spec.startswith("@")
            spec = named.get(spec[1:], "") if spec.startswith("@") else spec
            if how.startswith("vmap"):
                entries = [e for e in _entries(spec, True) if _leads(e[1], forwarding_chains)]
            elif forwards:
                entries = _entries(spec, keyed)
            else:
                continue
            ports.update(port for port, _ in entries if 0 < port < 65536)
    return sorted(ports)


def _entries(spec: str, keyed: bool) -> list[tuple[int, str]]:
    """(first port, what it maps to) of each item of a port spec: `9000`, `9000:9010` and
    `80,443` (iptables), `{ 9200, 9300-9310 }`, `{ 9000 : 127.0.0.1 . 8000 }` (keyed: nft)."""
    found = []
    for item in spec.strip().strip("{}").split(","):
        key, _, value = item.partition(" : ") if keyed else (item, "", "")
        first = re.match(r"\s*(\d+)", key)
        if first:
            found.append((int(first.group(1)), value))
    return found


def _leads(verdict: str, chains: set[str]) -> bool:
    """Whether a verdict map's verdict jumps to a chain that forwards."""
    jump = _JUMP.search(verdict)
    return bool(jump) and jump.group(1) in chains
