"""OpenSSH client configuration for the lab's hosts, for `ssh -F`, editors and graders."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # rendering needs no SSH library: `lab ssh` starts without one
    from lab.remote.connection import HostSpec


def render(specs: Iterable[HostSpec]) -> str:
    """One Host block per host, pinned to the lab key and the lab's known host keys."""
    blocks = []
    for spec in specs:
        lines = [
            f"Host {spec.name}",
            f"  HostName {spec.address}",
            f"  Port {spec.port}",
            f"  User {spec.user}",
            f'  IdentityFile "{spec.key_file}"',
            "  IdentitiesOnly yes",
            "  BatchMode yes",
            "  LogLevel ERROR",
        ]
        if spec.known_hosts:
            strict = "yes" if spec.host_keys_pinned else "accept-new"
            lines += [
                f'  UserKnownHostsFile "{spec.known_hosts}"',
                f"  StrictHostKeyChecking {strict}",
            ]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"
