"""Database (MySQL): a primary and a replica, and what each role means to the application."""

import secrets
import time

from checks.base import Check, CheckError, failed, passed
from checks.live import SCRATCH_DB
from provision import dbflavour

REPLICATION_WAIT = 5.0
SCRATCH_TABLE = f"{SCRATCH_DB}.probe"


def roles(lab) -> tuple[str, str]:
    return lab.name("db-primary"), lab.name("db-replica")


def ensure_scratch(lab, primary: str) -> None:
    lab.mysql(
        primary,
        f"CREATE DATABASE IF NOT EXISTS {SCRATCH_DB}; CREATE TABLE IF NOT EXISTS "
        f"{SCRATCH_TABLE} (token VARCHAR(64) PRIMARY KEY)",
    )


def drop_scratch(lab, primary: str) -> None:
    lab.mysql(primary, f"DROP DATABASE IF EXISTS {SCRATCH_DB}", check=False)


def poll(func, seconds: float):
    """func() until it returns something truthy or seconds pass; returns the last value."""
    deadline, value = time.monotonic() + seconds, None
    while time.monotonic() < deadline:
        value = func()
        if value:
            return value
        time.sleep(0.1)
    return value


class DatabaseServers(Check):
    id = "db.servers"
    section = "database"
    title = "MySQL runs on both web servers: a primary with a binary log and a replica"
    requirement = "1 Database (MySQL): Stores and retrieves data for the web application."
    points = 5
    hint = (
        "Install MySQL/MariaDB on both web servers; give each its own server-id and turn "
        "on the binary log (log_bin) on the primary."
    )
    needs = ("servers.reachable",)

    def observe(self, lab):
        def probe(host):
            try:
                row = lab.mysql(host, "SELECT VERSION(), @@server_id, @@log_bin, @@read_only")
                return dict(
                    zip(
                        ("version", "server_id", "log_bin", "read_only"),
                        row.split("\t"),
                        strict=False,
                    )
                )
            except CheckError as exc:
                return {"error": str(exc)}

        primary, replica = roles(lab)
        return {
            "primary": primary,
            "replica": replica,
            "hosts": lab.on_each([primary, replica], probe),
        }

    def judge(self, observation):
        hosts = observation["hosts"]
        errors = [info["error"] for info in hosts.values() if "error" in info]
        if errors:
            return failed("; ".join(errors))
        primary, replica = hosts[observation["primary"]], hosts[observation["replica"]]
        if primary["server_id"] == replica["server_id"]:
            return failed(f"both servers have server-id {primary['server_id']}")
        if primary["log_bin"] != "1":
            return failed(f"{observation['primary']} (primary) has no binary log")
        return passed(
            f"{observation['primary']}: {primary['version']} primary, binary log on, "
            f"server-id {primary['server_id']}; {observation['replica']}: replica, "
            f"server-id {replica['server_id']}"
        )


class Replication(Check):
    id = "db.replication"
    section = "database"
    title = "Writes on the primary reach the replica within seconds"
    requirement = (
        "The Primary-Replica (Master-Slave) cluster involves a Primary node (Master) "
        "that handles write operations and ... Replica nodes (Slaves) that replicate "
        "data from the Primary."
    )
    points = 10
    hint = (
        "Create a replication user on the primary, point the replica at it (CHANGE MASTER "
        "TO / CHANGE REPLICATION SOURCE TO) and START REPLICA; SHOW REPLICA STATUS must "
        "show both threads running."
    )
    needs = ("db.servers",)

    def observe(self, lab):
        primary, replica = roles(lab)
        token = secrets.token_hex(16)
        status = dbflavour.replica_status(
            lab.sh(replica, "mysql --vertical -e 'SHOW REPLICA STATUS'", sudo=True)
        )
        started = time.monotonic()
        try:
            ensure_scratch(lab, primary)
            lab.mysql(primary, f"INSERT INTO {SCRATCH_TABLE} VALUES ('{token}')")
            seen = poll(
                lambda: (
                    token
                    in lab.mysql(
                        replica,
                        f"SELECT token FROM {SCRATCH_TABLE} WHERE token='{token}'",
                        check=False,
                    )
                ),
                REPLICATION_WAIT,
            )
        finally:
            drop_scratch(lab, primary)
        return {
            "primary": primary,
            "replica": replica,
            "seen": bool(seen),
            "seconds": round(time.monotonic() - started, 2),
            "io_running": status.io_running,
            "sql_running": status.sql_running,
            "source_host": status.source_host,
            "last_error": status.last_error,
            "primary_address": lab.address(primary),
        }

    def judge(self, o):
        if not o["seen"]:
            state = f"io={o['io_running'] or '-'}, sql={o['sql_running'] or '-'}" + (
                f", error: {o['last_error']}" if o["last_error"] else ""
            )
            return failed(
                f"a value written on {o['primary']} did not appear on {o['replica']} "
                f"within {REPLICATION_WAIT:.0f} s (replica threads: {state})"
            )
        if o["source_host"] not in ("", o["primary_address"], o["primary"]):
            return failed(f"{o['replica']} replicates from {o['source_host']}, not the primary")
        return passed(
            f"a random value written on {o['primary']} appeared on {o['replica']} "
            f"after {o['seconds']:.1f} s"
        )


class ReplicaReadOnly(Check):
    id = "db.replica-read-only"
    section = "database"
    title = "The replica refuses writes"
    requirement = (
        "The Primary node is responsible for handling write operations, ensuring data "
        "consistency. Replicas can handle read operations."
    )
    points = 5
    hint = "Set read_only = ON (and super_read_only on MySQL 8) on the replica."
    needs = ("db.replication",)

    def observe(self, lab):
        primary, replica = roles(lab)
        user, password = f"lab_check_{secrets.token_hex(4)}", secrets.token_hex(16)
        account = f"'{user}'@'localhost'"
        try:
            ensure_scratch(lab, primary)
            lab.mysql(
                primary,
                f"CREATE USER {account} IDENTIFIED BY '{password}'; "
                f"GRANT INSERT ON {SCRATCH_DB}.* TO {account}",
            )
            poll(
                lambda: (
                    user
                    in lab.mysql(
                        replica, f"SELECT user FROM mysql.user WHERE user='{user}'", check=False
                    )
                ),
                REPLICATION_WAIT,
            )
            attempt = lab.sh(
                replica,
                f"MYSQL_PWD={password} mysql -u {user} -e "
                f"\"INSERT INTO {SCRATCH_TABLE} VALUES ('from-replica')\" 2>&1 "
                "&& echo WRITE-ACCEPTED; true",
            )
        finally:
            lab.mysql(primary, f"DROP USER IF EXISTS {account}", check=False)
            drop_scratch(lab, primary)
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
    section = "database"
    title = "The application writes to the primary and reads from its own database"
    requirement = (
        "Difference Between Primary and Replica in Regard to the Application: the "
        "Primary handles write operations; Replicas can handle read operations."
    )
    points = 5
    hint = (
        "On every web server set WEBSTACK_DB_PRIMARY_HOST to the primary's address and "
        "let the application read from the local database."
    )
    needs = ("app.database",)

    def observe(self, lab):
        def probe(host):
            reply = lab.http(f"http://{lab.address(host)}/api/status").json()
            pid = str(reply.get("pid", ""))
            environ = (
                lab.sh(host, f"tr '\\0' '\\n' < /proc/{pid}/environ", sudo=True, check=False)
                if pid.isdigit()
                else ""
            )
            settings = dict(line.split("=", 1) for line in environ.splitlines() if "=" in line)
            return {
                "role": reply.get("database", {}).get("role"),
                "writes_to": settings.get("WEBSTACK_DB_PRIMARY_HOST", ""),
            }

        primary, replica = roles(lab)
        return {
            "primary": primary,
            "replica": replica,
            "primary_address": lab.address(primary),
            "hosts": lab.on_each([primary, replica], probe),
        }

    def judge(self, o):
        problems = []
        expected_roles = {o["primary"]: "primary", o["replica"]: "replica"}
        for host, info in o["hosts"].items():
            if info["role"] != expected_roles[host]:
                problems.append(
                    f"{host}: the application reads from a {info['role']} database, "
                    f"expected its local {expected_roles[host]}"
                )
            if info["writes_to"] not in (o["primary_address"], o["primary"]):
                problems.append(
                    f"{host}: the application writes to "
                    f"{info['writes_to'] or 'nowhere'}, not the primary"
                )
        if problems:
            return failed("; ".join(problems))
        return passed(
            f"writes go to {o['primary']} from both web servers; {o['primary']} reads "
            f"its primary, {o['replica']} its replica"
        )
