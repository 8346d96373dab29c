"""Database (MySQL): a primary and a replica, and what each role means to the application."""

from __future__ import annotations

import secrets
from typing import NotRequired, TypedDict

from checks.base import Check, CheckError, Verdict, failed, passed
from lab.facts import mysql
from lab.observe import probes
from lab.observe.live import SCRATCH_DB, TOKEN_PREFIX, leaves
from lab.remote.quoting import quote


class DatabaseUp(TypedDict):
    """A database server's answer to SELECT VERSION(), @@server_id, @@log_bin, @@read_only."""

    version: str
    server_id: str
    log_bin: str
    read_only: str


class DatabaseDown(TypedDict):
    """A host whose database did not answer (server_down())."""

    error: str  # the client's error
    installed: list[str]  # the server programs installed
    unit: str  # the systemd unit that runs it ('' none loaded)
    active: str  # its ActiveState
    result: str  # its Result
    journal: str  # the server's own reason in its last start attempt ('' none)


class DatabaseServersObservation(TypedDict):
    primary: str
    replica: str
    hosts: dict[str, DatabaseUp | DatabaseDown]


class ReplicaState(TypedDict):
    """The replica's threads and source, its source's name resolved on the replica."""

    configured: bool  # SHOW REPLICA STATUS shows a row
    io_running: str
    sql_running: str
    last_error: str
    source_host: str
    source_addresses: list[str]
    primary_address: str


class ReplicaReading(ReplicaState):
    """What replica_state() reads: the state, with the replication filters it shows."""

    filters: list[tuple[str, str]]  # (Replicate_* name, its non-empty value)


class ReplicationObservation(TypedDict):
    state: ReplicaState
    writes: probes.FrontDoor
    filters: dict[str, str]  # the replica's replication filters, by their Replicate_* names
    filtered: dict[str, str]  # table the application wrote → the filter rule leaving it out
    binlog_filters: NotRequired[dict[str, str]]  # the primary's Binlog_Do_DB/Binlog_Ignore_DB
    paused: probes.PausedWrite | None  # None: replication does not run, or nothing to follow


class ReadOnlyObservation(TypedDict):
    replica: str
    attempt: str  # how a write of an ordinary account ended (WRITE-ACCEPTED: it was taken)


class PausedReads(TypedDict):
    """An entry written through the primary while the replica was paused: where it showed."""

    stored: bool
    primary_read: bool
    replica_read_paused: bool
    replica_read_later: bool


class AppRolesObservation(TypedDict):
    primary: str
    replica: str
    origins: dict[str, bool]  # web server → its write reached the primary
    paused: PausedReads


@leaves("grader accounts and the grader's scratch database")
def _drop_grader_accounts(topology) -> str:
    sql = mysql.CLIENT
    accounts = (
        "SELECT CONCAT('DROP USER ', QUOTE(user), '@', QUOTE(host), ';') FROM mysql.user "
        "WHERE user LIKE 'lab\\_check\\_%'"
    )
    return (
        f"if [ -x {sql} ] && {sql} -e 'SELECT 1' >/dev/null 2>&1; then "
        f"{{ echo 'SET SESSION sql_log_bin = 0;'; {sql} -N -e {quote(accounts)}; "
        f"echo 'DROP DATABASE IF EXISTS {SCRATCH_DB};'; }} | {sql}; fi"
    )


class DatabaseServers(Check):
    id = "db.servers"
    design = "database"
    section = "database"
    title = "MySQL runs on both web servers: a primary with a binary log and a replica"
    requirement = "1 Database (MySQL): Stores and retrieves data for the web application."
    points = 5
    touches = ()
    hint = (
        "Install MySQL/MariaDB on both web servers; give each its own server-id and turn "
        "on the binary log (log_bin) on the primary."
    )

    def observe(self, lab) -> DatabaseServersObservation:
        def probe(host) -> DatabaseUp | DatabaseDown:
            try:
                row = probes.admin_sql(
                    lab, host, "SELECT VERSION(), @@server_id, @@log_bin, @@read_only"
                )
            except CheckError as exc:
                out = lab.sh(host, mysql.SERVER_STATE, sudo=True, check=False)
                return server_down(str(exc), mysql.server_state(out))
            keys = ("version", "server_id", "log_bin", "read_only")
            return dict(zip(keys, row.strip().split("\t"), strict=False))

        primary, replica = probes.roles(lab)
        return {
            "primary": primary,
            "replica": replica,
            "hosts": lab.on_each([primary, replica], probe),
        }

    def judge(self, o: DatabaseServersObservation):
        hosts = o["hosts"]
        down = {host: info for host, info in hosts.items() if "error" in info}
        if down:
            hint = ""
            if any(info.get("installed") == [] for info in down.values()):
                hint = "Install the server package (`sudo apt-get install mariadb-server`)."
            elif any("does not run" in why_down(h, i) for h, i in down.items()):
                hint = (
                    "Fix what the server's journal says (`sudo journalctl -u mariadb`), then "
                    "`sudo systemctl restart mariadb`."
                )
            elif any("is stopped" in why_down(h, i) for h, i in down.items()):
                hint = "Start the server, and at every boot: `sudo systemctl enable --now mariadb`."
            return failed("; ".join(why_down(h, i) for h, i in down.items()), hint)
        primary, replica = hosts[o["primary"]], hosts[o["replica"]]
        if primary["server_id"] == replica["server_id"]:
            return failed(f"both servers have server-id {primary['server_id']}")
        if primary["log_bin"] != "1":
            return failed(f"{o['primary']} (primary) has no binary log")
        return passed(
            f"{o['primary']}: {primary['version']} primary, binary log on, "
            f"server-id {primary['server_id']}; {o['replica']}: server-id {replica['server_id']}"
        )


def server_down(error: str, state: mysql.ServerState) -> DatabaseDown:
    """What db.servers observes of a host whose database did not answer."""
    return {
        "error": error,
        "installed": list(state.installed),
        "unit": state.unit,
        "active": state.active,
        "result": state.result,
        "journal": state.error,
    }


def why_down(host: str, info: DatabaseDown) -> str:
    """Why the grader could not ask host's database: not installed, the server's own reason
    for its last start's failure (its journal; an error of an earlier start that succeeded is
    no reason), stopped, else the client's error."""
    if "installed" in info and not info["installed"]:
        return (
            f"{host}: no MySQL/MariaDB server is installed "
            f"({' and '.join(mysql.SERVER_PROGRAMS)} are missing)"
        )
    state = f" ({info['unit']} {info['active']})" if info.get("unit") else ""
    started_and_failed = info.get("result") not in (None, "", "success")
    if info.get("journal") and info.get("active") != "active" and started_and_failed:
        return f"{host}: the database server does not run{state}: {info['journal']}"
    if info.get("unit") and info.get("active") == "inactive":  # stopped, not broken
        return f"{host}: the database server is stopped{state}: " + info["error"].removeprefix(
            f"{host}: "
        )
    return info["error"]


def replica_state(lab) -> ReplicaReading:
    """The replica's threads and source, with the source's name resolved on the replica."""
    primary, replica = probes.roles(lab)
    status = mysql.replica_status(lab.sh(replica, mysql.REPLICA_STATUS, sudo=True))
    source = status.source_host
    addresses = probes.resolve(lab, replica, [source]).get(source, []) if source else []
    return {
        "configured": status.configured,
        "io_running": status.io_running,
        "sql_running": status.sql_running,
        "last_error": status.last_error,
        "filters": list(status.filters),
        "source_host": source,
        "source_addresses": addresses,
        "primary_address": lab.address(primary),
    }


class Replication(Check):
    id = "db.replication"
    design = "replication"
    section = "database"
    title = "The application's writes on the primary reach the replica within seconds"
    requirement = (
        "The Primary-Replica (Master-Slave) cluster involves a Primary node (Master) "
        "that handles write operations and ... Replica nodes (Slaves) that replicate "
        "data from the Primary."
    )
    points = 10
    hint = (
        "Create a replication user on the primary, load the primary's data on the replica, "
        "point the replica at the primary (CHANGE MASTER TO / CHANGE REPLICATION SOURCE TO) "
        "and START REPLICA; SHOW REPLICA STATUS must show both threads running."
    )
    needs = ("db.servers", "app.database")
    exclusive = "replica"  # pauses the replica's SQL thread for a moment
    through_web = True  # the entries may be written through any web server's site
    head_start = 0.2  # the paused write goes out first: its window, the run's longest, ends sooner

    def prepare(self, lab):
        """The paused write and its 1 s window while the other checks run, if the replica
        replicates (the front door's reads of the replica wait for its end)."""
        primary, replica = probes.roles(lab)
        out, *_ = lab.together(  # what the write needs first, asked at the same time
            lambda: lab.sh(replica, mysql.REPLICA_STATUS, sudo=True),
            lambda: probes.forget_stale_entries(lab),
            lambda: probes.listeners(lab, primary),  # where its site is asked
        )
        status = mysql.replica_status(out)
        if status.io_running == status.sql_running == "Yes":
            probes.paused_write(lab)

    def observe(self, lab) -> ReplicationObservation:
        primary, replica = probes.roles(lab)
        state, writes, variables, binlog = lab.together(
            lambda: replica_state(lab),
            lambda: probes.front_door(lab),
            lambda: lab.sh(replica, mysql.FILTER_VARIABLES, sudo=True, check=False),
            lambda: lab.sh(primary, mysql.BINLOG_STATUS, sudo=True, check=False),
        )
        filters = {**dict(state.pop("filters")), **mysql.parse_filter_variables(variables)}
        tables = sorted({w.rsplit(".", 1)[0] for w in writes["on_primary"].values()})
        filtered = {
            t: rule for t in tables if (rule := mysql.filtered_out(filters, *t.split(".", 1)))
        }
        running = state["io_running"] == state["sql_running"] == "Yes"
        paused = probes.paused_write(lab) if running and writes["on_primary"] else None
        return {
            "state": state,
            "writes": writes,
            "filters": filters,
            "filtered": filtered,
            "binlog_filters": mysql.binlog_filters(binlog),
            "paused": paused,
        }

    def judge(self, o: ReplicationObservation):
        state, w, paused = o["state"], o["writes"], o.get("paused")
        problem = _stream_problem(state, w) or _copy_problem(o) or _pause_problem(paused, w)
        if problem:
            return problem
        proof = (
            f"; with its SQL thread stopped a new entry waited, and arrived "
            f"{paused['arrived_after']:.1f} s after it started again"
            if paused
            else ""
        )
        filters = ", ".join(f"{k}={v}" for k, v in sorted(o.get("filters", {}).items()))
        return passed(
            f"entries written through the site reached {w['primary']} "
            f"({', '.join(sorted(set(w['on_primary'].values())))}) and appeared on {w['replica']} "
            f"after {w['replicated_after']:.1f} s{proof}; replica threads running, source "
            f"{state['source_host']}" + (f"; filters {filters}" if filters else "")
        )


def _stream_problem(state: ReplicaState, w: probes.FrontDoor) -> Verdict | None:
    """The replica replicates nothing, its threads stopped, or from another source."""
    replica = w["replica"]
    if not state["configured"]:
        return failed(f"{replica} replicates from nothing (SHOW REPLICA STATUS is empty)")
    if state["io_running"] != "Yes" or state["sql_running"] != "Yes":
        error = f", error: {state['last_error']}" if state["last_error"] else ""
        return failed(
            f"{replica}: replication threads io={state['io_running'] or '-'}, "
            f"sql={state['sql_running'] or '-'}{error}"
        )
    if state["primary_address"] not in state["source_addresses"]:
        where = ", ".join(state["source_addresses"]) or "does not resolve"
        return failed(
            f"{replica} replicates from {state['source_host']} ({where}), not from "
            f"{w['primary']} ({state['primary_address']})"
        )
    return None


def _copy_problem(o: ReplicationObservation) -> Verdict | None:
    """The site's entries are not on the primary, filtered out, missing on the replica, or in
    a table that reads the primary over the network."""
    w = o["writes"]
    replica = w["replica"]
    if not w["on_primary"]:
        return failed(
            f"the entries written through the site are not in {w['primary']}'s database: "
            "there is nothing to follow to the replica"
        )
    schemas = sorted({where.split(".", 1)[0] for where in w["on_primary"].values()})
    unlogged = {
        s: rule for s in schemas if (rule := mysql.unlogged(o.get("binlog_filters", {}), s))
    }
    if unlogged:
        schema, rule = next(iter(unlogged.items()))
        return failed(
            f"{w['primary']}'s binary log leaves out the application's database {schema} "
            f"({rule}): its writes never reach replication",
            "Remove the binlog-do-db/binlog-ignore-db lines that leave out the application's "
            "database from the primary's configuration and restart it.",
        )
    if o.get("filtered"):
        table, rule = next(iter(o["filtered"].items()))
        return failed(
            f"{replica}'s replication filters leave out the application's table {table} "
            f"({rule}): its rows do not come through replication",
            "Remove the replicate-* filters that leave out the application's database "
            "from the replica's configuration and restart it.",
        )
    missing = sorted(set(w["on_primary"]) - set(w["on_replica"]))
    if missing:
        return failed(
            f"{len(missing)} entr{'y' if len(missing) == 1 else 'ies'} written on "
            f"{w['primary']} ({', '.join(sorted(set(w['on_primary'].values())))}) did not "
            f"appear on {replica} within {probes.WAIT:.0f} s"
        )
    remote = {t: e for t, e in w["replica_engines"].items() if e.upper() in mysql.REMOTE_ENGINES}
    if remote:
        table, engine = next(iter(remote.items()))
        return failed(
            f"{replica}'s {table} is a {engine} table: it reads the primary over the "
            "network instead of holding a replicated copy"
        )
    return None


def _pause_problem(paused: probes.PausedWrite | None, w: probes.FrontDoor) -> Verdict | None:
    """With the replica's SQL thread paused, an entry was not stored, arrived anyway (copied
    by something else), or did not arrive once replication resumed."""
    replica = w["replica"]
    if paused is None:
        return None
    if not paused["stored"]:
        return failed(
            f"an entry written through {paused.get('through', w['primary'])} while "
            f"{replica}'s replication was paused was not stored on the primary"
        )
    if paused["on_replica_paused"]:
        return failed(
            f"an entry written on {w['primary']} appeared in {replica}'s "
            f"{paused['on_replica_paused']} while {replica}'s replication (SQL thread) "
            "was stopped: it is copied there by something other than replication"
        )
    if not paused["on_replica_later"]:
        return failed(
            f"an entry written on {w['primary']} while {replica}'s replication was "
            f"paused did not reach {replica} within {probes.WAIT:.0f} s of resuming"
        )
    return None


class ReplicaReadOnly(Check):
    id = "db.replica-read-only"
    design = "replica-read-only"
    section = "database"
    title = "The replica refuses writes"
    requirement = (
        "The Primary node is responsible for handling write operations, ensuring data "
        "consistency. Replicas can handle read operations."
    )
    points = 5
    hint = "Set read_only = ON (and super_read_only on MySQL 8) on the replica."
    needs = ("db.servers",)
    touches = ()

    def observe(self, lab) -> ReadOnlyObservation:
        _, replica = probes.roles(lab)
        flags = probes.admin_sql(lab, replica, "SHOW GLOBAL VARIABLES LIKE '%read_only'")
        variables = dict(line.split("\t", 1) for line in flags.splitlines() if "\t" in line)
        if variables.get("super_read_only") == "ON":
            return {"replica": replica, "attempt": "super_read_only=ON refuses every write"}
        user, password = f"lab_check_{secrets.token_hex(4)}", secrets.token_hex(16)
        account = f"'{user}'@'localhost'"
        local = "SET SESSION sql_log_bin = 0;"  # the grader's own things stay on this server
        undo = f"{local} DROP USER IF EXISTS {account}; DROP DATABASE IF EXISTS {SCRATCH_DB};"
        what = f"grader account on {replica}"
        lab.on_cleanup(what, lambda: probes.admin_sql(lab, replica, undo, check=False))
        try:
            probes.admin_sql(
                lab,
                replica,
                f"{local} CREATE DATABASE IF NOT EXISTS {SCRATCH_DB}; CREATE TABLE IF NOT EXISTS "
                f"{SCRATCH_DB}.probe (token VARCHAR(64)); CREATE USER {account} IDENTIFIED BY "
                f"'{password}'; GRANT INSERT ON {SCRATCH_DB}.* TO {account}",
            )
            attempt = lab.sh(
                replica,
                f'MYSQL_PWD={password} {mysql.CLIENT} -u {user} -e "INSERT INTO {SCRATCH_DB}.probe '
                f"VALUES ('{TOKEN_PREFIX}replica')\" 2>&1 && echo WRITE-ACCEPTED; true",
            )
        finally:
            lab.done_with(what)
        errors = [line for line in attempt.splitlines() if line.startswith("ERROR")]
        return {"replica": replica, "attempt": (errors[-1] if errors else attempt).strip()}

    def judge(self, o: ReadOnlyObservation):
        if "WRITE-ACCEPTED" in o["attempt"]:
            return failed(f"{o['replica']} accepted a write from an ordinary account")
        if "read-only" not in o["attempt"] and "read_only" not in o["attempt"]:
            return failed(
                f"{o['replica']}: the write failed, but not because the replica is "
                f"read-only: {o['attempt']}"
            )
        return passed(f"{o['replica']} refused a write: {o['attempt']}")


class ApplicationRoles(Check):
    id = "db.app-roles"
    design = "app-db-roles"
    section = "database"
    title = "The application writes to the primary and reads from its own database"
    requirement = (
        "Difference Between Primary and Replica in Regard to the Application: the "
        "Primary handles write operations; Replicas can handle read operations."
    )
    points = 5
    hint = (
        "Point every web server's application at the primary for writes, and let it read from "
        "the database on its own host (the replica on the replica's host)."
    )
    needs = ("app.database", "db.replication")
    exclusive = "replica"  # pauses the replica's SQL thread for a moment

    def observe(self, lab) -> AppRolesObservation:
        writes = probes.front_door(lab)
        paused = probes.paused_write(lab)
        return {
            "primary": writes["primary"],
            "replica": writes["replica"],
            "origins": {h: p["token"] in writes["on_primary"] for h, p in writes["posts"].items()},
            "paused": {
                "stored": paused["status"] in (200, 201) and bool(paused["stored"]),
                "primary_read": paused["primary_read"],
                "replica_read_paused": paused["replica_read_paused"],
                "replica_read_later": paused["replica_read_later"],
            },
        }

    def judge(self, o: AppRolesObservation):
        primary, replica, p = o["primary"], o["replica"], o["paused"]
        astray = [h for h, ok in o["origins"].items() if not ok]
        if astray:
            return failed(f"writes through {', '.join(astray)} did not reach the primary {primary}")
        if not p["stored"]:
            return failed(f"an entry written through {primary} was not stored on {primary}")
        if not p["primary_read"]:
            return failed(f"{primary}'s application did not show an entry its own primary holds")
        if p["replica_read_paused"]:
            return failed(
                f"with {replica}'s replication paused, {replica}'s application still showed a "
                f"new entry: it reads from the primary, not from its own replica"
            )
        if not p["replica_read_later"]:
            return failed(
                f"{replica}'s application did not show the entry once replication went on"
            )
        return passed(
            f"writes through {' and '.join(o['origins'])} reached {primary}; with replication "
            f"paused {replica} did not see a new entry until its replica had it: reads are local"
        )
