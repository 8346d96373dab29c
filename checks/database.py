"""Database (MySQL): a primary and a replica, and what each role means to the application."""

from __future__ import annotations

import secrets

from checks import probes
from checks.base import Check, CheckError, failed, passed
from checks.live import PAUSED, SCRATCH_DB, TOKEN_PREFIX
from checks.web import service_error
from facts import mysql


class DatabaseServers(Check):
    id = "db.servers"
    design = "database"
    section = "database"
    title = "MySQL runs on both web servers: a primary with a binary log and a replica"
    requirement = "1 Database (MySQL): Stores and retrieves data for the web application."
    points = 5
    hint = (
        "Install MySQL/MariaDB on both web servers; give each its own server-id and turn "
        "on the binary log (log_bin) on the primary."
    )

    def observe(self, lab):
        def probe(host):
            try:
                row = probes.admin_sql(
                    lab, host, "SELECT VERSION(), @@server_id, @@log_bin, @@read_only"
                )
            except CheckError as exc:
                unit = "mariadb" if "mariadb" in str(exc).lower() else "mysql"
                return {"error": str(exc), "journal": service_error(lab, host, unit)}
            keys = ("version", "server_id", "log_bin", "read_only")
            return dict(zip(keys, row.strip().split("\t"), strict=False))

        primary, replica = probes.roles(lab)
        return {
            "primary": primary,
            "replica": replica,
            "hosts": lab.on_each([primary, replica], probe),
        }

    def judge(self, o):
        hosts = o["hosts"]
        errors = [
            info["error"] + (f" ({info['journal']})" if info.get("journal") else "")
            for info in hosts.values()
            if "error" in info
        ]
        if errors:
            return failed("; ".join(errors))
        primary, replica = hosts[o["primary"]], hosts[o["replica"]]
        if primary["server_id"] == replica["server_id"]:
            return failed(f"both servers have server-id {primary['server_id']}")
        if primary["log_bin"] != "1":
            return failed(f"{o['primary']} (primary) has no binary log")
        return passed(
            f"{o['primary']}: {primary['version']} primary, binary log on, "
            f"server-id {primary['server_id']}; {o['replica']}: server-id {replica['server_id']}"
        )


def replica_state(lab) -> dict:
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

    def observe(self, lab):
        return {"state": replica_state(lab), "writes": probes.front_door(lab)}

    def judge(self, o):
        state, w = o["state"], o["writes"]
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
        if not w["on_primary"]:
            return failed(
                f"the entries written through the site are not in {w['primary']}'s database: "
                "there is nothing to follow to the replica"
            )
        missing = sorted(set(w["on_primary"]) - set(w["on_replica"]))
        if missing:
            return failed(
                f"{len(missing)} entr{'y' if len(missing) == 1 else 'ies'} written on "
                f"{w['primary']} ({', '.join(sorted(set(w['on_primary'].values())))}) did not "
                f"appear on {replica} within {probes.WAIT:.0f} s"
            )
        remote = {
            t: e for t, e in w["replica_engines"].items() if e.upper() in mysql.REMOTE_ENGINES
        }
        if remote:
            table, engine = next(iter(remote.items()))
            return failed(
                f"{replica}'s {table} is a {engine} table: it reads the primary over the "
                "network instead of holding a replicated copy"
            )
        return passed(
            f"entries written through the site reached {w['primary']} "
            f"({', '.join(sorted(set(w['on_primary'].values())))}) and appeared on {replica} "
            f"after {w['replicated_after']:.1f} s; replica threads running, source "
            f"{state['source_host']}"
        )


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

    def observe(self, lab):
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
                f'MYSQL_PWD={password} mysql -u {user} -e "INSERT INTO {SCRATCH_DB}.probe '
                f"VALUES ('{TOKEN_PREFIX}replica')\" 2>&1 && echo WRITE-ACCEPTED; true",
            )
        finally:
            lab.done_with(what)
        errors = [line for line in attempt.splitlines() if line.startswith("ERROR")]
        return {"replica": replica, "attempt": (errors[-1] if errors else attempt).strip()}

    def judge(self, o):
        if "WRITE-ACCEPTED" in o["attempt"]:
            return failed(f"{o['replica']} accepted a write from an ordinary account")
        if "read-only" not in o["attempt"] and "read_only" not in o["attempt"]:
            return failed(
                f"{o['replica']}: the write failed, but not because the replica is "
                f"read-only: {o['attempt'][:120]}"
            )
        return passed(f"{o['replica']} refused a write: {o['attempt'][:100]}")


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
    exclusive = True  # pauses the replica's SQL thread for a moment

    def observe(self, lab):
        writes = probes.front_door(lab)
        primary, replica = writes["primary"], writes["replica"]
        what = f"replication paused on {replica}"
        resume = f"{mysql.command('START REPLICA SQL_THREAD')} && rm -f {PAUSED}"
        lab.on_cleanup(what, lambda: lab.sh(replica, resume, sudo=True, check=False))
        lab.sh(replica, f"touch {PAUSED} && {mysql.command('STOP REPLICA SQL_THREAD')}", sudo=True)
        try:
            post = probes.post_entry(lab, primary)
            found = probes.find_tokens(lab, primary, [post["token"]])
            lab.on_cleanup(
                "paused entry", lambda: probes.forget_tokens(lab, primary, replica, found, {})
            )
            token, where = post["token"], found.get(post["token"], "")
            primary_read = bool(
                probes.poll(lambda: token in probes.read_entries(lab, primary), 2.0)
            )
            replica_read_paused = token in probes.read_entries(lab, replica)
        finally:
            lab.done_with(what)
        replica_read_later = bool(
            probes.poll(lambda: token in probes.read_entries(lab, replica), probes.WAIT)
        )
        return {
            "primary": primary,
            "replica": replica,
            "origins": {h: p["token"] in writes["on_primary"] for h, p in writes["posts"].items()},
            "paused": {
                "stored": post["status"] in (200, 201) and bool(where),
                "primary_read": primary_read,
                "replica_read_paused": replica_read_paused,
                "replica_read_later": replica_read_later,
            },
        }

    def judge(self, o):
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
