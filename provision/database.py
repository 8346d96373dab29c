"""MySQL (MariaDB on Debian): primary on web-01 with a binary log, a read-only replica on web-02."""

from __future__ import annotations

import shlex
import time

from provision import dbflavour
from provision.engine import HostRun, StepFailed
from provision.runner import Component, Run

DB_NAME = "webstack"
REPLICATION_USER = "replication"
READ_USER = "webstack_read"
WRITE_USER = "webstack_write"
CATCH_UP_SECONDS = 30

SCHEMA = f"""\
CREATE DATABASE IF NOT EXISTS {DB_NAME};
CREATE TABLE IF NOT EXISTS {DB_NAME}.guestbook (
    id INT AUTO_INCREMENT PRIMARY KEY,
    name VARCHAR(64) NOT NULL,
    message VARCHAR(280) NOT NULL,
    written_via VARCHAR(64) NOT NULL,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
"""


def sql(hr: HostRun, statements: str, secret: bool = False) -> str:
    """Run SQL as the database's root (socket authentication); tab-separated rows back.

    Statements carrying passwords go through stdin, never the command line.
    """
    if secret:
        return hr.sh("mysql --batch --skip-column-names", stdin=statements).stdout
    return hr.sh(f"mysql --batch --skip-column-names -e {shlex.quote(statements)}").stdout


def replica_status(hr: HostRun) -> dbflavour.ReplicaStatus:
    return dbflavour.replica_status(hr.sh("mysql --vertical -e 'SHOW REPLICA STATUS'").stdout)


def network_pattern(run: Run) -> str:
    """The lab network as a MySQL account host ('192.168.56.0/255.255.255.0')."""
    return f"{run.topology.subnet.network_address}/{run.topology.subnet.netmask}"


def accounts(run: Run, flavour: dbflavour.Flavour) -> list[tuple[str, str, str, list[str]]]:
    """(user, account host, secret name, grants): replication and least-privilege app accounts."""
    lab_net = network_pattern(run)
    return [
        (REPLICATION_USER, lab_net, "db_replication_password", ["REPLICATION SLAVE ON *.*"]),
        (
            READ_USER,
            "localhost",
            "db_read_password",
            [f"SELECT ON {DB_NAME}.*", f"{flavour.monitor_privilege} ON *.*"],
        ),
        (WRITE_USER, lab_net, "db_write_password", [f"SELECT, INSERT ON {DB_NAME}.guestbook"]),
    ]


def accounts_sql(run: Run, flavour: dbflavour.Flavour) -> str:
    """CREATE/ALTER USER and GRANT statements for every account, with this lab's passwords."""
    lines = []
    for user, host, secret, grants in accounts(run, flavour):
        account = f"'{user}'@'{host}'"
        password = run.secret(secret)
        lines.append(f"CREATE USER IF NOT EXISTS {account} IDENTIFIED BY '{password}';")
        lines.append(f"ALTER USER {account} IDENTIFIED BY '{password}';")
        lines += [f"GRANT {grant} TO {account};" for grant in grants]
    return "\n".join(lines) + "\n"


def logins_work(hr: HostRun, run: Run, host) -> bool:
    """Whether every account accepts this lab's password (socket or the lab address)."""
    for user, account_host, secret, _ in accounts(run, run.flavour(host)):
        where = "" if account_host == "localhost" else f"-h {host.address} "
        login = hr.sh(
            f"MYSQL_PWD={shlex.quote(run.secret(secret))} mysql {where}-u {user} -e 'SELECT 1'",
            sudo=False,
            check=False,
        )
        if login.failed:
            return False
    return True


def server_config(hr: HostRun, run: Run, host, role: str) -> bool:
    flavour = run.flavour(host)
    server_id = run.topology.names.index(host.name) + 1
    changed = hr.template(
        flavour.conf_file,
        "mysqld.cnf.j2",
        host=host.name,
        role=role,
        address=host.address,
        server_id=server_id,
        read_only_settings=flavour.read_only_settings,
    )
    hr.service(flavour.service, restart=changed)
    return changed


def primary(run: Run):
    def step(hr: HostRun, host) -> None:
        server_config(hr, run, host, "primary")
        present = sql(
            hr,
            f"SELECT COUNT(*) FROM information_schema.tables WHERE "
            f"table_schema='{DB_NAME}' AND table_name='guestbook';"
            f"SELECT COUNT(*) FROM mysql.user WHERE user IN "
            f"('{REPLICATION_USER}','{READ_USER}','{WRITE_USER}');",
        ).split()
        if present != ["1", "3"] or not logins_work(hr, run, host):
            sql(hr, SCHEMA + accounts_sql(run, run.flavour(host)), secret=True)
            run.accounts_changed = True
            hr.changed("database, table and accounts with this lab's passwords")

    return step


def replica(run: Run):
    source = run.topology.one_with_role("db-primary")

    def step(hr: HostRun, host) -> None:
        flavour = run.flavour(host)
        server_config(hr, run, host, "replica")
        status = replica_status(hr)
        if not status.configured or status.source_host != source.address:
            primary_run = run.hosts[source.name]
            first_log = sql(primary_run, "SHOW BINARY LOGS;").split()[0]
            sql(
                hr,
                "STOP REPLICA;\n"
                + flavour.change_source_sql(
                    source.address,
                    REPLICATION_USER,
                    run.secret("db_replication_password"),
                    first_log,
                    4,
                )
                + ";\nSTART REPLICA;",
                secret=True,
            )
            hr.changed(f"replicating from {source.name} ({first_log})")
        elif run.accounts_changed:  # the replication account got this lab's password
            password = run.secret("db_replication_password")
            sql(
                hr,
                f"STOP REPLICA;\n{flavour.source_password_sql(password)};\nSTART REPLICA;",
                secret=True,
            )
            hr.changed("replication password updated")
        elif not status.running:
            sql(hr, "START REPLICA;")
            hr.changed("started replication")
        wait_until_replicating(hr)

    return step


def wait_until_replicating(hr: HostRun) -> None:
    """Poll until both replication threads run and the replica has caught up."""
    deadline = time.monotonic() + CATCH_UP_SECONDS
    status = dbflavour.ReplicaStatus(configured=False)
    while time.monotonic() < deadline:
        status = replica_status(hr)
        if status.running and status.seconds_behind == 0:
            return
        if status.last_error and "connecting" not in status.last_error.lower():
            break
        time.sleep(0.3)
    raise StepFailed(
        hr.name,
        "database",
        "replication is not running: "
        f"io={status.io_running or '-'} sql={status.sql_running or '-'} "
        f"{status.last_error}".strip(),
    )


def configure(run: Run) -> None:
    run.each("db-primary", primary(run), "database")
    if any(h in run.failures for h in [run.topology.one_with_role("db-primary").name]):
        for host in run.topology.with_role("db-replica"):
            run.failures.setdefault(host.name, "database: not run, the primary failed")
        return
    run.each("db-replica", replica(run), "database")


COMPONENT = Component(
    name="database",
    title="database (MySQL primary and replica)",
    roles=("db-primary", "db-replica"),
    apply=configure,
    packages=lambda run, host: run.flavour(host).packages,
)
