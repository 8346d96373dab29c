"""What faults do from the machine itself to an LXC host: stop it, filter its network."""

from __future__ import annotations

from lab.core.errors import LabError
from lab.core.system import run

NFT_TABLE = "webstack_lab_fault"  # the fault's own table, inside a host's network namespace


class Machine:
    """One lab's LXC containers, reached from the machine (container names from the provider)."""

    def __init__(self, provider, topology):
        self.provider = provider
        self.topology = topology

    def require(self, scenario: str) -> None:
        """Refuse a scenario that needs the machine's hand on a host when hosts are not LXC."""
        if getattr(self.provider, "name", "") != "lxc":
            raise LabError(
                f"{scenario} needs the lxc provider (it acts on the container from this machine);"
                f" this lab's provider is {self.provider.name}",
                hint="web-02-nginx, app-01 and slow-web-02 work with every provider",
            )

    def _lxc(self, tool: str, host: str, *args: str, check: bool = True):
        container = self.provider.container(self.topology.host(host))
        return run(
            [tool, "-P", str(self.provider.lxcpath), "-n", container, *args],
            check=check,
            timeout=60,
        )

    def running(self, host: str) -> bool:
        return self._lxc("lxc-info", host, "-s", "-H", check=False).stdout.strip() == "RUNNING"

    def stop(self, host: str) -> None:
        """Pull the plug: every process of the host is killed at once (lxc-stop -k)."""
        self._lxc("lxc-stop", host, "-k")

    def start(self, host: str) -> None:
        """Start host again and wait until LXC says it runs."""
        for _ in range(2):  # a start that did not take is tried once more
            if self.running(host):
                return
            self._lxc("lxc-start", host, "-d")
            self._lxc("lxc-wait", host, "-s", "RUNNING", "-t", "20", check=False)
        if not self.running(host):
            raise LabError(f"{host} did not start again")

    def _netns(self, host: str) -> str:
        pid = self._lxc("lxc-info", host, "-p", "-H").stdout.strip()
        if not pid.isdigit():
            raise LabError(f"{host} is not running (no process to find its network namespace)")
        return f"--net=/proc/{pid}/ns/net"

    def nft(self, host: str, rules: str) -> None:
        """Load rules (nft syntax, chains only) into the fault's table in host's namespace."""
        script = f"table inet {NFT_TABLE} {{\n{rules}\n}}\n"
        run(["nsenter", self._netns(host), "nft", "-f", "-"], input=script, timeout=30)

    def nft_remove(self, host: str) -> None:
        """Delete the fault's table from host's namespace (nothing when it is not there)."""
        if self.running(host):
            run(
                ["nsenter", self._netns(host), "nft", "delete", "table", "inet", NFT_TABLE],
                check=False,
                timeout=30,
            )

    def reset_connections(self, host: str, *filters: str) -> None:
        """Abort host's TCP connections matching an `ss` filter (the peer gets a reset)."""
        run(["nsenter", self._netns(host), "ss", "-K", "-tn", *filters], timeout=30)
