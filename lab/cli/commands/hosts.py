"""`lab hosts`: /etc/hosts lines for the site's names and the hosts."""

from __future__ import annotations

import sys

from lab.core.errors import ExitCode

HELP = "print /etc/hosts lines for foobar.com, www.foobar.com and the hosts"
ORDER = 60  # its place in `lab --help`


def arguments(parser) -> None:
    """No arguments of its own."""


def run(lab) -> ExitCode:
    domain = lab.topology.domain
    lines = [
        f"# webstack lab {lab.topology.name}: add to /etc/hosts",
        f"{lab.topology.site_address}\t{domain} www.{domain}",
    ]
    lines += [f"{host.address}\t{host.name}" for host in lab.topology.hosts]
    sys.stdout.write("\n".join(lines) + "\n")
    return ExitCode.OK
