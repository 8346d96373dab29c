"""MariaDB and MySQL 8 differences, in one place: packages, statements, status field names."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Flavour:
    """What differs between Debian's MariaDB and MySQL 8 on Ubuntu servers."""

    name: str
    packages: tuple[str, ...]
    service: str
    conf_file: str
    monitor_privilege: str
    change_source: str  # format string: host, user, password, log_file, log_pos
    read_only_settings: tuple[str, ...]
    change_password: str  # format string: password (keeps the replica's position)

    def source_password_sql(self, password: str) -> str:
        return self.change_password.format(password=password)

    def change_source_sql(
        self, host: str, user: str, password: str, log_file: str, log_pos: int
    ) -> str:
        return self.change_source.format(
            host=host, user=user, password=password, log_file=log_file, log_pos=int(log_pos)
        )


MARIADB = Flavour(
    name="mariadb",
    packages=("mariadb-server", "mariadb-client"),
    service="mariadb",
    conf_file="/etc/mysql/mariadb.conf.d/60-webstack.cnf",
    monitor_privilege="REPLICA MONITOR",
    change_source=(
        "CHANGE MASTER TO MASTER_HOST='{host}', MASTER_PORT=3306, MASTER_USER='{user}', "
        "MASTER_PASSWORD='{password}', MASTER_LOG_FILE='{log_file}', MASTER_LOG_POS={log_pos}, "
        "MASTER_CONNECT_RETRY=2"
    ),
    read_only_settings=("read_only = ON",),
    change_password="CHANGE MASTER TO MASTER_PASSWORD='{password}'",
)

MYSQL = Flavour(
    name="mysql",
    packages=("mysql-server", "mysql-client"),
    service="mysql",
    conf_file="/etc/mysql/mysql.conf.d/60-webstack.cnf",
    monitor_privilege="REPLICATION CLIENT",
    change_source=(
        "CHANGE REPLICATION SOURCE TO SOURCE_HOST='{host}', SOURCE_PORT=3306, "
        "SOURCE_USER='{user}', SOURCE_PASSWORD='{password}', SOURCE_LOG_FILE='{log_file}', "
        "SOURCE_LOG_POS={log_pos}, SOURCE_CONNECT_RETRY=2, GET_SOURCE_PUBLIC_KEY=1"
    ),
    read_only_settings=("read_only = ON", "super_read_only = ON"),
    change_password="CHANGE REPLICATION SOURCE TO SOURCE_PASSWORD='{password}'",
)

FLAVOURS = {f.name: f for f in (MARIADB, MYSQL)}


def for_os(os_release: str) -> Flavour:
    """The flavour a server's distribution ships (/etc/os-release text): Ubuntu → MySQL 8."""
    fields = dict(line.split("=", 1) for line in os_release.splitlines() if "=" in line)
    return MYSQL if fields.get("ID", "").strip('"') == "ubuntu" else MARIADB


def for_version(version: str) -> Flavour:
    """The flavour from `SELECT VERSION()` (e.g. '10.11.6-MariaDB-0+deb12u1' or '8.0.36')."""
    return MARIADB if "mariadb" in version.lower() else MYSQL


def parse_vertical(text: str) -> list[dict[str, str]]:
    """Rows of `mysql ... \\G` output (the vertical format) as dicts of strings."""
    rows: list[dict[str, str]] = []
    for line in text.splitlines():
        if line.startswith("*****"):
            rows.append({})
            continue
        key, sep, value = line.partition(":")
        if sep and rows is not None and key.strip():
            if not rows:
                rows.append({})
            rows[-1][key.strip()] = value.strip()
    return rows


@dataclass(frozen=True)
class ReplicaStatus:
    """A replica's state in flavour-neutral names."""

    configured: bool
    io_running: str = ""
    sql_running: str = ""
    source_host: str = ""
    seconds_behind: int | None = None
    last_error: str = ""

    @property
    def running(self) -> bool:
        return self.io_running == "Yes" and self.sql_running == "Yes"


def _pick(row: dict[str, str], *names: str) -> str:
    return next((row[name] for name in names if name in row), "")


def replica_status(vertical_output: str) -> ReplicaStatus:
    """Parse `SHOW REPLICA STATUS\\G` from either flavour (MariaDB keeps the Slave_ names)."""
    rows = parse_vertical(vertical_output)
    if not rows:
        return ReplicaStatus(configured=False)
    row = rows[0]
    behind = _pick(row, "Seconds_Behind_Source", "Seconds_Behind_Master")
    errors = [
        _pick(row, "Last_IO_Error"),
        _pick(row, "Last_SQL_Error"),
        _pick(row, "Last_Error"),
    ]
    return ReplicaStatus(
        configured=True,
        io_running=_pick(row, "Replica_IO_Running", "Slave_IO_Running"),
        sql_running=_pick(row, "Replica_SQL_Running", "Slave_SQL_Running"),
        source_host=_pick(row, "Source_Host", "Master_Host"),
        seconds_behind=int(behind) if behind.isdigit() else None,
        last_error=next((e for e in errors if e), ""),
    )
