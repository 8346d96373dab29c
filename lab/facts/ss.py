"""Listening sockets and the processes holding them, from `ss`, parsed by fields."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

LISTENING = "ss -Hlnp -t -x"  # TCP and unix listeners, with the processes holding them
_USER = re.compile(r'\("([^"]*)",pid=(\d+),fd=\d+\)')


@dataclass(frozen=True)
class Listener:
    """One listening socket: TCP (address, port) or unix (path), and who holds it."""

    kind: str  # "tcp" or "unix"
    address: str  # IP address, "*" for any, or the unix socket's path
    port: int | None
    processes: tuple[tuple[str, int], ...]  # (name, pid)

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

    def __str__(self) -> str:
        if self.kind == "unix":
            return f"unix:{self.address}"
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}"


def parse(text: str) -> list[Listener]:
    """`ss -Hlnp` lines (with or without the Netid column) as Listeners."""
    listeners = []
    for line in text.splitlines():
        fields = line.split()
        if "LISTEN" not in fields:
            continue
        at = fields.index("LISTEN")
        netid = fields[at - 1] if at else "tcp"
        local = fields[at + 3] if len(fields) > at + 3 else ""
        processes = tuple((name, int(pid)) for name, pid in _USER.findall(line))
        if netid.startswith("u_"):
            listeners.append(Listener("unix", local, None, processes))
        elif ":" in local:
            host, _, port = local.rpartition(":")
            host = host.strip("[]")
            if host in ("0.0.0.0", "::"):
                host = "*"
            listeners.append(
                Listener("tcp", host, int(port) if port.isdigit() else None, processes)
            )
    return listeners


def on_port(listeners: list[Listener], port: int) -> list[Listener]:
    """The TCP listeners on port."""
    return [item for item in listeners if item.kind == "tcp" and item.port == port]
