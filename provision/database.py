"""MySQL (MariaDB on Debian): primary on web-01 with a binary log, a read-only replica on web-02."""

from __future__ import annotations

import re
import shlex

from lab.core.wait import Deadline
from lab.facts import mysql as mysql_facts
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


CREATED_TABLE = re.compile(
    r"CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(?:`?\w+`?\.)?`?(\w+)", re.IGNORECASE
)


def schema(run: Run) -> str:
    """The application database's schema: the code base's schema.sql, else the built-in one."""
    own = run.topology.app.schema
    if not own.is_file():
        return SCHEMA
    return f"CREATE DATABASE IF NOT EXISTS {DB_NAME};\nUSE {DB_NAME};\n{own.read_text()}\n"


def own_schema(run: Run) -> bool:
    """Whether the code base brings its own schema.sql (the reference app does not)."""
    return run.topology.app.schema.is_file()


def schema_tables(text: str) -> list[str]:
    """The tables a schema creates: present on the primary means the schema was applied."""
    return sorted(set(CREATED_TABLE.findall(text)))


def sql(hr: HostRun, statements: str, secret: bool = False) -> str:
    """Run SQL as the database's root (socket authentication); tab-separated rows back.

    Statements carrying passwords go through stdin, never the command line.
    """
    if secret:
        return hr.sh("mysql --batch --skip-column-names", stdin=statements).stdout
    return hr.sh(f"mysql --batch --skip-column-names -e {shlex.quote(statements)}").stdout


def replica_status(hr: HostRun) -> mysql_facts.ReplicaStatus:
    return mysql_facts.replica_status(hr.sh(mysql_facts.REPLICA_STATUS).stdout)


def network_pattern(run: Run) -> str:
    """The lab network as a MySQL account host ('192.168.56.0/255.255.255.0')."""
    return f"{run.topology.subnet.network_address}/{run.topology.subnet.netmask}"


def accounts(run: Run, flavour: dbflavour.Flavour) -> list[tuple[str, str, str, list[str]]]:
    """(user, account host, secret name, grants): replication and least-privilege app accounts.

    The reference app only reads and inserts guestbook rows; a code base with its own schema
    may read and change data (not the schema) anywhere in the application database.
    """
    lab_net = network_pattern(run)
    if own_schema(run):
        writes = f"SELECT, INSERT, UPDATE, DELETE ON {DB_NAME}.*"
    else:
        writes = f"SELECT, INSERT ON {DB_NAME}.guestbook"
    return [
        (REPLICATION_USER, lab_net, "db_replication_password", ["REPLICATION SLAVE ON *.*"]),
        (
            READ_USER,
            "localhost",
            "db_read_password",
            [f"SELECT ON {DB_NAME}.*", f"{flavour.monitor_privilege} ON *.*"],
        ),
        (WRITE_USER, lab_net, "db_write_password", [writes]),
    ]


def accounts_sql(run: Run, flavour: dbflavour.Flavour) -> str:
    """CREATE/ALTER USER and GRANT statements for every account, with this lab's passwords."""
    lines = []
    for user, host, secret, grants in accounts(run, flavour):
        account = f"'{user}'@'{host}'"
        password = run.secret(secret)
        lines.append(f"CREATE USER IF NOT EXISTS {account} IDENTIFIED BY '{password}';")
        lines.append(f"ALTER USER {account} IDENTIFIED BY '{password}';")
        lines.append(f"REVOKE ALL PRIVILEGES, GRANT OPTION FROM {account};")  # exactly these:
        lines += [f"GRANT {grant} TO {account};" for grant in grants]
    return "\n".join(lines) + "\n"


GRANTS_QUERY = (
    "SELECT GRANTEE, CONCAT(TABLE_SCHEMA, '.*'), PRIVILEGE_TYPE "
    f"FROM information_schema.SCHEMA_PRIVILEGES WHERE TABLE_SCHEMA = '{DB_NAME}' UNION ALL "
    "SELECT GRANTEE, CONCAT(TABLE_SCHEMA, '.', TABLE_NAME), PRIVILEGE_TYPE "
    f"FROM information_schema.TABLE_PRIVILEGES WHERE TABLE_SCHEMA = '{DB_NAME}';"
)


def wanted_grants(run: Run, flavour: dbflavour.Flavour) -> set[tuple[str, str, str]]:
    """(grantee, scope, privilege) the accounts should hold in the application database."""
    wanted = set()
    for user, host, _, grants in accounts(run, flavour):
        for grant in grants:
            privileges, _, scope = grant.partition(" ON ")
            if scope.split(".")[0] == DB_NAME:
                wanted |= {(f"'{user}'@'{host}'", scope, p.strip()) for p in privileges.split(",")}
    return wanted


def held_grants(output: str, grantees: set[str]) -> set[tuple[str, str, str]]:
    """The grants of GRANTS_QUERY's tab-separated rows that belong to the given accounts."""
    rows = (tuple(line.split("\t")) for line in output.splitlines())
    return {row for row in rows if len(row) == 3 and row[0] in grantees}


def grants_match(hr: HostRun, run: Run, host) -> bool:
    """Whether the accounts hold exactly their grants in the application database."""
    wanted = wanted_grants(run, run.flavour(host))  # another code base may have needed others
    grantees = {f"'{user}'@'{where}'" for user, where, _, _ in accounts(run, run.flavour(host))}
    return held_grants(sql(hr, GRANTS_QUERY), grantees) == wanted


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
    statements = schema(run)
    tables = schema_tables(statements)
    quoted_tables = ", ".join(f"'{table}'" for table in tables) or "''"

    def step(hr: HostRun, host) -> None:
        server_config(hr, run, host, "primary")
        if run.taken_over:  # another lab's logs, with its passwords: gone, the replica follows
            sql(hr, "RESET MASTER;")
            hr.changed("binary logs of the lab this state was built for removed")
        present = sql(
            hr,
            f"SELECT COUNT(*) FROM information_schema.tables WHERE "
            f"table_schema='{DB_NAME}' AND table_name IN ({quoted_tables});"
            f"SELECT COUNT(*) FROM mysql.user WHERE user IN "
            f"('{REPLICATION_USER}','{READ_USER}','{WRITE_USER}');",
        ).split()
        if (
            present != [str(len(tables)), "3"]
            or not logins_work(hr, run, host)
            or not grants_match(hr, run, host)
        ):
            drops = stale_accounts_sql(hr, run, run.flavour(host))
            sql(hr, drops + statements + accounts_sql(run, run.flavour(host)), secret=True)
            run.accounts_changed = True
            hr.changed("database schema and accounts with this lab's passwords")

    return step


ACCOUNT_HOST = re.compile(r"^[0-9A-Za-z.%_/:-]{1,255}$")


def stale_accounts_sql(hr: HostRun, run: Run, flavour: dbflavour.Flavour) -> str:
    """DROP USER for the lab's accounts made for another network (a state built for another
    lab and taken over, provisioned again for this lab's addresses)."""
    wanted = {(user, where) for user, where, _, _ in accounts(run, flavour)}
    rows = sql(
        hr,
        "SELECT User, Host FROM mysql.user WHERE User IN "
        f"('{REPLICATION_USER}','{READ_USER}','{WRITE_USER}');",
    )
    stale = [tuple(line.split("\t")) for line in rows.splitlines()]
    return "".join(
        f"DROP USER '{user}'@'{where}';\n"
        for user, where in (row for row in stale if len(row) == 2)
        if (user, where) not in wanted and ACCOUNT_HOST.match(where)
    )


def replica(run: Run):
    source = run.topology.one_with_role("db-primary")

    def step(hr: HostRun, host) -> None:
        flavour = run.flavour(host)
        server_config(hr, run, host, "replica")
        status = replica_status(hr)
        if run.taken_over or not status.configured or status.source_host != source.address:
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
    status = mysql_facts.ReplicaStatus(configured=False)
    for _ in Deadline(CATCH_UP_SECONDS).ticks(0.3):
        status = replica_status(hr)
        if status.running and status.seconds_behind == 0:
            return
        if status.last_error and "connecting" not in status.last_error.lower():
            break
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
