"""Listening sockets and the processes holding them, from `ss`, parsed by fields."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from lab.remote.quoting import quote

LISTENING = "ss -Hlnp -t -x"  # TCP and unix listeners, with the processes holding them
BOUND_UDP = "ss -Hlnp -u"  # UDP sockets that take datagrams from anyone, and their processes
# each process and its network namespace (run as root: others' namespaces are theirs to read)
NAMESPACES = (
    'for p in /proc/[0-9]*; do n=$(readlink "$p/ns/net" 2>/dev/null) && echo "${p#/proc/} $n"; '
    "done; true"
)
_USER = re.compile(r'\("([^"]*)",pid=(\d+),fd=\d+\)')


@dataclass(frozen=True)
class Listener:
    """One listening socket: TCP or UDP (address, port) or unix (path), and who holds it."""

    kind: str  # "tcp", "udp" or "unix"
    address: str  # IP address (with its %interface, if bound to one), "*" for any, or the path
    port: int | None
    processes: tuple[tuple[str, int], ...]  # (name, pid)
    # TCP, UDP: "4" (0.0.0.0, an IPv4 address), "6" ([::] of an IPv6-only socket, an IPv6 address),
    # "" (ss's *: an IPv6 socket that takes IPv4 too, on every address)
    family: str = ""

    @property
    def pids(self) -> set[int]:
        return {pid for _, pid in self.processes}

    @property
    def names(self) -> list[str]:
        return sorted({name for name, _ in self.processes})

    @property
    def local_only(self) -> bool:
        """Unix sockets and loopback addresses: reachable only from the host itself."""
        if self.kind == "unix":
            return True
        try:
            return ipaddress.ip_address(self.address.split("%")[0]).is_loopback
        except ValueError:
            return False  # "*" and the like: every address

    @property
    def over_ipv4(self) -> bool:
        """Whether the socket takes connections (datagrams) over IPv4."""
        return self.kind != "unix" and self.family in ("4", "")

    @property
    def over_ipv6(self) -> bool:
        """Whether the socket takes connections over IPv6 (alone, or besides IPv4: ss's *)."""
        return self.kind != "unix" and self.family in ("6", "")

    def __str__(self) -> str:
        """As ss prints it: 0.0.0.0:80, [::]:22 (IPv6 only), *:8000 (both), [fe80::1]%eth0:81."""
        if self.kind == "unix":
            return f"unix:{self.address}"
        host = WILDCARDS.get(self.family, "*") if self.address == "*" else self.address
        ip, sep, scope = host.partition("%")
        if ":" in ip:
            host = f"[{ip}]" + (f"%{scope}" if sep else "")
        return f"{host}:{self.port}"


WILDCARDS = {"4": "0.0.0.0", "6": "::"}


def parse(text: str) -> list[Listener]:
    """`ss -Hlnp` lines (with or without the Netid column) as Listeners: LISTEN (TCP, unix)
    and UNCONN (UDP)."""
    listeners = []
    for line in text.splitlines():
        fields = line.split()
        state = next((f for f in fields[:2] if f in ("LISTEN", "UNCONN")), None)
        if state is None:
            continue
        at = fields.index(state)
        netid = fields[at - 1] if at else "tcp" if state == "LISTEN" else "udp"
        if state == "UNCONN" and netid != "udp":  # a unix datagram socket: no listener
            continue
        local = fields[at + 3] if len(fields) > at + 3 else ""
        processes = tuple((name, int(pid)) for name, pid in _USER.findall(line))
        if netid.startswith("u_"):
            listeners.append(Listener("unix", local, None, processes))
        elif ":" in local:
            host, _, port = local.rpartition(":")
            ip, sep, scope = host.partition("%")  # [fe80::1]%eth0, 127.0.0.53%lo
            ip = ip.strip("[]")
            family = "" if ip == "*" else "6" if ":" in ip else "4"
            host = "*" if ip in ("*", "0.0.0.0", "::") else ip + (f"%{scope}" if sep else "")
            number = int(port) if port.isdigit() else None
            kind = "udp" if netid == "udp" else "tcp"
            listeners.append(Listener(kind, host, number, processes, family))
    return listeners


def on_port(listeners: list[Listener], port: int) -> list[Listener]:
    """The TCP listeners on port."""
    return [item for item in listeners if item.kind == "tcp" and item.port == port]


def other_namespaces(text: str) -> list[int]:
    """One pid (the lowest) in each network namespace NAMESPACES lists besides pid 1's."""
    found: dict[str, int] = {}
    for line in text.splitlines():
        pid, _, namespace = line.partition(" ")
        if pid.isdigit() and namespace.startswith("net:"):
            found[namespace] = min(int(pid), found.get(namespace, int(pid)))
    own = next((ns for ns, pid in found.items() if pid == 1), None)
    return sorted(pid for ns, pid in found.items() if ns != own)


def in_namespace(pid: int, command: str) -> str:
    """command run by sh in the network namespace of process pid (nsenter, as root)."""
    return f"/usr/bin/nsenter --target {int(pid)} --net /bin/sh -c {quote(command)}"
