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
