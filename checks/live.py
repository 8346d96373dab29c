"""The live lab as checks see it: the network from this machine, and each host over SSH."""

from __future__ import annotations

import shlex

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rdatatype
import requests

from checks.base import CheckError
from lab.connection import Fleet, describe, fan_out
from lab.topology import Topology

HTTP_TIMEOUT = 5
SCRATCH_DB = "webstack_lab_check"  # the grader's own database; dropped after every run


class LiveLab:
    """Observation tools shared by every check of a run; connections are opened once."""

    def __init__(self, topology: Topology, fleet: Fleet):
        self.topology = topology
        self.fleet = fleet

    # -- hosts ----------------------------------------------------------------------------
    def address(self, role_or_host: str) -> str:
        if role_or_host in self.topology.names:
            return self.topology.host(role_or_host).address
        return self.topology.one_with_role(role_or_host).address

    def name(self, role: str) -> str:
        return self.topology.one_with_role(role).name

    def web_hosts(self) -> list[str]:
        return [h.name for h in self.topology.with_role("web")]

    def sh(self, host: str, command: str, sudo: bool = False, check: bool = True) -> str:
        """Run a command on host; a failure becomes a CheckError naming host and command."""
        full = f"sudo -n sh -c {shlex.quote(command)}" if sudo else command
        try:
            result = self.fleet[host].run(full, hide=True, warn=True, timeout=15)
        except Exception as exc:
            raise CheckError(f"{host}: could not run `{command[:40]}`: {describe(exc)}") from None
        if check and result.failed:
            output = (result.stderr or result.stdout).strip().splitlines()
            last = output[-1] if output else f"exit code {result.exited}"
            raise CheckError(f"{host}: `{command[:50]}` failed: {last}")
        return result.stdout

    def on_each(self, hosts: list[str], func) -> dict:
        """func(host) for each host in parallel, results by host (exceptions re-raised)."""
        outcomes = fan_out(hosts, func)
        for outcome in outcomes.values():
            if outcome.error:
                raise outcome.error
        return {host: outcome.value for host, outcome in outcomes.items()}

    def mysql(self, host: str, statements: str, check: bool = True) -> str:
        """SQL as the database's administrator on host (socket authentication via sudo)."""
        return self.sh(
            host,
            f"mysql --batch --skip-column-names -e {shlex.quote(statements)}",
            sudo=True,
            check=check,
        )

    # -- network from this machine ----------------------------------------------------------
    def http(self, url: str, method: str = "GET", **kwargs) -> requests.Response:
        """One HTTP request on a fresh connection (so the balancer decides every time)."""
        headers = {"Connection": "close", **kwargs.pop("headers", {})}
        try:
            return requests.request(
                method, url, headers=headers, timeout=HTTP_TIMEOUT, allow_redirects=False, **kwargs
            )
        except requests.RequestException as exc:
            raise CheckError(f"{method} {url}: {_reason(exc)}") from None

    def dns_query(self, server: str, name: str, rdtype: str = "A") -> dns.message.Message:
        """Ask server directly (no resolver, no recursion) about name."""
        query = dns.message.make_query(name, rdtype)
        query.flags &= ~dns.flags.RD
        try:
            return dns.query.udp(query, server, timeout=3)
        except (dns.exception.DNSException, OSError) as exc:
            raise CheckError(
                f"DNS query to {server} for {name}: {exc or type(exc).__name__}"
            ) from None


def _reason(exc: requests.RequestException) -> str:
    text = str(exc)
    for marker in ("Connection refused", "timed out", "No route to host", "Name or service"):
        if marker in text:
            return marker.lower()
    return type(exc).__name__
