"""The fault scenarios: one definition each, with what it does and what it shows.

A scenario observes what it needs before it breaks anything (`prepare`, whose answer is kept in
the lab's state so that `lab fault --restore` can undo it after a crash), breaks one thing
(`inflict`) and puts it back (`restore`, safe to run twice).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from lab.core.errors import LabError
from lab.core.topology import Topology
from lab.core.wait import Deadline
from lab.faults.machine import Machine
from lab.observe import probes
from lab.observe.live import LiveLab
from lab.remote.connection import wait_for_ssh
from lab.remote.quoting import quote

COMMAND_SECONDS = 60  # a command that breaks or restores something on a host
BOOT_SECONDS = 60  # a stopped host must accept SSH again within this after it is started
PAUSE, RUN = 0.3, 0.1  # slow-web-02: seconds web-02's services are paused, then run
PAUSE_UNIT = "webstack-lab-fault-slow.service"  # the transient unit on web-02 that pauses them


@dataclass
class Context:
    """What a scenario acts through: the topology, SSH to the hosts, the machine's hand on them."""

    topology: Topology
    live: LiveLab
    machine: Machine
    specs: dict  # host name → HostSpec

    def host(self, role_or_host: str) -> str:
        if role_or_host in self.topology.names:
            return role_or_host
        if role_or_host == "lb":  # two balancers (lab-ha.yml): the first, the preferred holder
            return self.live.balancers()[0]
        return self.topology.one_with_role(role_or_host).name

    def sh(self, host: str, command: str) -> str:
        """A command on host as root; a failure is one line naming the host."""
        try:
            return self.live.sh(host, command, sudo=True, timeout=COMMAND_SECONDS)
        except Exception as exc:  # CheckError from the shared observation layer
            message = str(exc).replace("a command of the grader", "a command of lab fault")
            raise LabError(message) from None


class Scenario:
    """One way to break the lab. Subclasses set the texts and override the three steps."""

    name: ClassVar[str]
    shows: ClassVar[str]  # what a student should see (for --list)
    does: ClassVar[str]  # what exactly is done, and how it is undone
    target: ClassVar[str | None] = None  # the web server HAProxy should take out, if any
    writes: ClassVar[bool] = False  # the traffic also signs the guestbook
    stops: ClassVar[str | None] = None  # role or host stopped outright (nothing asks it then)
    machine: ClassVar[bool] = False  # needs the machine's hand on the host (lxc)

    def check_provider(self, ctx: Context) -> None:
        if self.machine:
            ctx.machine.require(self.name)

    def prepare(self, ctx: Context) -> dict:
        return {}

    def inflict(self, ctx: Context, plan: dict) -> None:
        raise NotImplementedError

    def restore(self, ctx: Context, plan: dict) -> None:
        raise NotImplementedError


class HostDown(Scenario):
    """A host stopped as if its power were cut; restored by starting it again."""

    machine = True

    def inflict(self, ctx: Context, plan: dict) -> None:
        ctx.machine.stop(ctx.host(self.stops))

    def restore(self, ctx: Context, plan: dict) -> None:
        host = ctx.host(self.stops)
        ctx.machine.start(host)
        wait_for_ssh(ctx.specs[host], Deadline(BOOT_SECONDS))


class Web01Down(HostDown):
    name = "web-01-down"
    shows = "the site stays up: HAProxy takes web-01 out and web-02 answers everything"
    does = "stops web-01's container at once (lxc-stop -k, a power cut); restore starts it again"
    target = "web-01"
    stops = "web-01"


class Lb01Down(HostDown):
    name = "lb-01-down"
    shows = (
        "the site is gone although both web servers are fine: the load balancer is a SPOF "
        "(on lab-ha.yml with `lab provision ha`, lb-02 takes the site's address over)"
    )
    does = "stops lb-01's container at once (lxc-stop -k, a power cut); restore starts it again"
    stops = "lb"


class ServiceStopped(Scenario):
    """One systemd service stopped on one host; restored by starting it."""

    host: ClassVar[str]
    unit: ClassVar[str]
    kill: ClassVar[bool] = False  # killed at once (SIGKILL) before it is held stopped

    def prepare(self, ctx: Context) -> dict:
        return {"host": ctx.host(self.host), "unit": self.unit}

    def inflict(self, ctx: Context, plan: dict) -> None:
        unit = quote(plan["unit"])
        kill = f"systemctl kill --signal=SIGKILL {unit}; " if self.kill else ""
        ctx.sh(plan["host"], f"{kill}systemctl stop {unit}")

    def restore(self, ctx: Context, plan: dict) -> None:
        ctx.sh(plan["host"], f"systemctl start {quote(plan['unit'])}")


class Web02Nginx(ServiceStopped):
    name = "web-02-nginx"
    shows = "the site stays up: lb-01 is refused by web-02, retries on web-01 and takes web-02 out"
    does = "systemctl stop nginx on web-02; restore starts it"
    target = "web-02"
    host = "web-02"
    unit = "nginx"


def app_unit(ctx: Context, host: str) -> str:
    """The systemd service of the application server Nginx on host forwards to."""
    master = probes.application(ctx.live, host).get("master")
    if not master:
        raise LabError(f"{host}: no application server found behind Nginx")
    unit = ctx.sh(host, f"ps -o unit= -p {int(master['pid'])}").strip()
    if not unit.endswith(".service"):
        raise LabError(
            f"{host}: the application server (pid {master['pid']}, {master['name']}) is not "
            "a systemd service, so the fault cannot stop it and start it again"
        )
    return unit


class App01(ServiceStopped):
    name = "app-01"
    shows = (
        "the site stays up: web-01's Nginx answers 502 until HAProxy's health check takes it out"
    )
    does = (
        "kills (SIGKILL) the application server that web-01's Nginx forwards to (its systemd "
        "service, found by the process holding that socket) and holds the service stopped; "
        "restore starts it"
    )
    target = "web-01"
    host = "web-01"
    kill = True

    def prepare(self, ctx: Context) -> dict:
        host = ctx.host(self.host)
        return {"host": host, "unit": app_unit(ctx, host)}


class PrimaryDown(Scenario):
    name = "primary-down"
    shows = (
        "reads still work on both servers, every write fails: the primary is the SPOF for writes"
    )
    does = (
        "rejects TCP 3306 on the primary (nftables in web-01's network namespace) and resets "
        "its open database connections: no write and no replica reaches it; local reads over the "
        "unix socket still work; restore deletes the table"
    )
    writes = True
    machine = True

    def prepare(self, ctx: Context) -> dict:
        return {"host": ctx.host("db-primary")}

    def inflict(self, ctx: Context, plan: dict) -> None:
        ctx.machine.nft(
            plan["host"],
            "chain input { type filter hook input priority 0; policy accept;\n"
            "  tcp dport 3306 reject with tcp reset\n}",
        )
        ctx.machine.reset_connections(plan["host"], "sport", "=", ":3306")

    def restore(self, ctx: Context, plan: dict) -> None:
        ctx.machine.nft_remove(plan["host"])


class ReplicationCut(Scenario):
    name = "replication-cut"
    shows = "the replica falls behind while the site works; it catches up once the link is back"
    does = (
        "rejects the replica's own connections to the primary's port 3306 (nftables in "
        "web-02's network namespace, matched on the database server's user, so the "
        "application's writes still pass); restore deletes the table"
    )
    writes = True
    machine = True

    def prepare(self, ctx: Context) -> dict:
        replica = ctx.host("db-replica")
        uid = ctx.sh(replica, "ps -o uid= -C mariadbd,mysqld | head -n 1").strip()
        if not uid.isdigit():
            raise LabError(f"{replica}: no database server (mariadbd or mysqld) is running")
        primary = ctx.topology.one_with_role("db-primary").address
        return {"host": replica, "uid": int(uid), "primary": primary}

    def inflict(self, ctx: Context, plan: dict) -> None:
        ctx.machine.nft(
            plan["host"],
            "chain output { type filter hook output priority 0; policy accept;\n"
            f"  meta skuid {int(plan['uid'])} ip daddr {plan['primary']} tcp dport 3306"
            " reject with tcp reset\n}",
        )

    def restore(self, ctx: Context, plan: dict) -> None:
        ctx.machine.nft_remove(plan["host"])


class SlowWeb02(Scenario):
    name = "slow-web-02"
    shows = "web-02 answers slowly, yet HAProxy's round robin keeps sending it half the requests"
    does = (
        f"pauses web-02's Nginx and application server (SIGSTOP) for {PAUSE} s of every "
        f"{PAUSE + RUN:.1f} s, as a server starved of CPU would stall (this kernel has no netem, "
        "and a CPU quota either saturates or hardly slows); a transient systemd unit on web-02 "
        "does it; restore stops that unit and resumes both services (SIGCONT)"
    )
    target = "web-02"

    def prepare(self, ctx: Context) -> dict:
        host = ctx.host("web-02")
        return {"host": host, "units": ["nginx.service", app_unit(ctx, host)]}

    def inflict(self, ctx: Context, plan: dict) -> None:
        units = " ".join(quote(u) for u in plan["units"])
        loop = (
            f"while :; do systemctl kill -s STOP {units}; sleep {PAUSE}; "
            f"systemctl kill -s CONT {units}; sleep {RUN}; done"
        )
        ctx.sh(
            plan["host"],
            f"{forget(PAUSE_UNIT)}; systemd-run --quiet --unit {PAUSE_UNIT} sh -c {quote(loop)}",
        )

    def restore(self, ctx: Context, plan: dict) -> None:
        units = " ".join(quote(u) for u in plan["units"])
        ctx.sh(plan["host"], f"{forget(PAUSE_UNIT)}; systemctl kill -s CONT {units}")


def forget(unit: str) -> str:
    """A shell line stopping a transient unit and forgetting it (nothing when it is absent)."""
    return f"systemctl stop {unit} 2>/dev/null; systemctl reset-failed {unit} 2>/dev/null; true"


ALL: tuple[type[Scenario], ...] = (
    Web01Down,
    Web02Nginx,
    App01,
    Lb01Down,
    PrimaryDown,
    ReplicationCut,
    SlowWeb02,
)
