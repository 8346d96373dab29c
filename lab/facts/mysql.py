"""MySQL/MariaDB: one runner command, replica status, and finding a value wherever it lives."""

from __future__ import annotations

import re
from dataclasses import dataclass

from lab.remote.quoting import quote

SYSTEM_SCHEMAS = ("mysql", "information_schema", "performance_schema", "sys")
CLIENT = "/usr/bin/mysql"  # the distribution's client (MariaDB's and MySQL's packages both have it)
REPLICA_STATUS = f"{CLIENT} --vertical -e 'SHOW REPLICA STATUS'"
TEXT_TYPES = ("char", "varchar", "tinytext", "text", "mediumtext", "longtext")
REMOTE_ENGINES = ("FEDERATED", "CONNECT", "SPIDER")  # tables whose rows live on another server
# the replication filters of SHOW REPLICA STATUS (and as @@replicate_* variables, in lower case)
FILTERS = (
    "Replicate_Do_DB",
    "Replicate_Ignore_DB",
    "Replicate_Do_Table",
    "Replicate_Ignore_Table",
    "Replicate_Wild_Do_Table",
    "Replicate_Wild_Ignore_Table",
    "Replicate_Rewrite_DB",  # MariaDB: a database's changes applied to another one
    "Replicate_Ignore_Server_Ids",  # kept only when it holds the source's own id
)


# Every account in the grant tables, and every account the running server has loaded:
# information_schema.USER_PRIVILEGES is made from the server's memory, not from the tables.
ACCOUNTS = (
    "SELECT 'table', CONCAT(QUOTE(User), '@', QUOTE(Host)) FROM mysql.user "
    "UNION ALL SELECT DISTINCT 'loaded', GRANTEE FROM information_schema.USER_PRIVILEGES"
)
_DENIED = re.compile(r"Access denied for user '([^']*)'@'[^']*'")


def command(statements: str) -> str:
    """`mysql` running statements as the server's administrator (tab-separated rows, no header)."""
    return f"{CLIENT} --batch --skip-column-names -e {quote(statements)}"


# The replica's replication filters as the running server holds them (@@replicate_*).
FILTER_VARIABLES = command("SHOW GLOBAL VARIABLES LIKE 'replicate%'")


def ident(name: str) -> str:
    """An identifier in backquotes (backquotes inside doubled)."""
    return "`" + name.replace("`", "``") + "`"


def literal(value: str) -> str:
    """A string literal for SQL (quotes and backslashes escaped)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def text_columns(excluded: tuple[str, ...] = ()) -> str:
    """SQL listing every text column of every non-system table: where application data lives."""
    skip = ", ".join(literal(s) for s in (*SYSTEM_SCHEMAS, *excluded))
    types = ", ".join(literal(t) for t in TEXT_TYPES)
    return (
        "SELECT c.table_schema, c.table_name, c.column_name, t.engine "
        "FROM information_schema.columns c JOIN information_schema.tables t "
        "ON t.table_schema = c.table_schema AND t.table_name = c.table_name "
        f"WHERE c.table_schema NOT IN ({skip}) AND c.data_type IN ({types}) "
        "AND t.table_type = 'BASE TABLE'"
    )


@dataclass(frozen=True)
class Column:
    schema: str
    table: str
    column: str
    engine: str = ""

    def __str__(self) -> str:
        return f"{self.schema}.{self.table}.{self.column}"


def parse_columns(text: str) -> list[Column]:
    """Rows of text_columns()."""
    rows = [line.split("\t") for line in text.splitlines() if line.strip()]
    return [Column(*row[:4]) for row in rows if len(row) >= 3]


def search(columns: list[Column], tokens: list[str]) -> str:
    """SQL returning (column, token) for each token found in any of columns (tokens: hex only)."""
    if not all(t.replace("-", "").isalnum() for t in tokens):
        raise ValueError("search tokens are letters, digits and '-' only")
    selects = []
    for col in columns:
        table = f"{ident(col.schema)}.{ident(col.table)}"
        for token in tokens:
            selects.append(
                f"SELECT {literal(str(col))}, {literal(token)} FROM {table} "
                f"WHERE {ident(col.column)} LIKE {literal('%' + token + '%')}"
            )
    return " UNION ALL ".join(selects) or "SELECT 1 FROM DUAL WHERE FALSE"


def parse_found(text: str) -> dict[str, str]:
    """token → column (schema.table.column) from the rows of search()."""
    found = {}
    for line in text.splitlines():
        where, _, token = line.partition("\t")
        if token:
            found.setdefault(token.strip(), where.strip())
    return found


def denied_user(error: str) -> str | None:
    """The user an "Access denied for user 'U'@'HOST'" error names, or None."""
    found = _DENIED.search(error)
    return found.group(1) if found else None


def unloaded_accounts(accounts_output: str, user: str) -> list[str]:
    """Accounts of user that are in the grant tables but not loaded by the running server
    (rows of ACCOUNTS): written into the tables without FLUSH PRIVILEGES, e.g. by a dump."""
    rows = [line.split("\t", 1) for line in accounts_output.splitlines() if "\t" in line]
    loaded = {account.strip() for kind, account in rows if kind == "loaded"}
    prefix = "'" + user.replace("\\", "\\\\").replace("'", "\\'") + "'@"  # as QUOTE() writes it
    return sorted(
        account.strip()
        for kind, account in rows
        if kind == "table" and account.startswith(prefix) and account.strip() not in loaded
    )


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
    filters: tuple[tuple[str, str], ...] = ()  # (Replicate_* name, its non-empty value)

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
        filters=tuple((name, row[name]) for name in FILTERS if row.get(name) and name != IGNORED)
        + _ignoring_source(row),
    )


IGNORED = "Replicate_Ignore_Server_Ids"


def _ignoring_source(row: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """(IGNORED, its value) when the ids a replica ignores events of hold its source's own
    (every change the source makes is then skipped), else nothing."""
    source = _pick(row, "Source_Server_Id", "Master_Server_Id").strip()
    ignored = [i.strip() for i in row.get(IGNORED, "").split(",")]
    return ((IGNORED, row[IGNORED]),) if source and source in ignored else ()


def parse_filter_variables(text: str) -> dict[str, str]:
    """The non-empty replication filters among `SHOW GLOBAL VARIABLES LIKE 'replicate%'`'s rows,
    by their SHOW REPLICA STATUS names."""
    names = {name.lower(): name for name in FILTERS}
    found = {}
    for line in text.splitlines():
        variable, _, value = line.partition("\t")
        name = names.get(variable.strip().lower())
        if name and value.strip():
            found[name] = value.strip()
    return found


def _like(pattern: str, text: str) -> bool:
    """Whether text matches a wild filter's LIKE pattern (% any run, _ one character, a
    backslash escapes the next)."""
    regex, chars = "", iter(pattern)
    for char in chars:
        if char == "\\":
            regex += re.escape(next(chars, "\\"))
        elif char == "%":
            regex += ".*"
        elif char == "_":
            regex += "."
        else:
            regex += re.escape(char)
    return re.fullmatch(regex, text, re.DOTALL) is not None


def _items(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def filtered_out(filters: dict[str, str], schema: str, table: str) -> str | None:
    """The filter rule by which a replica does not apply changes to schema.table (as MySQL's
    documented order evaluates database, then table options, for row-based events), or None."""
    if filters.get(IGNORED):
        return f"{IGNORED}={filters[IGNORED]}, the source's own"
    rewrites = [r.split("->", 1) for r in _items(filters.get("Replicate_Rewrite_DB", ""))]
    if any(len(r) == 2 and r[0].strip() == schema for r in rewrites):
        return f"Replicate_Rewrite_DB={filters['Replicate_Rewrite_DB']}"
    do_db, ignore_db = (
        _items(filters.get("Replicate_Do_DB", "")),
        _items(filters.get("Replicate_Ignore_DB", "")),
    )
    if do_db and schema not in do_db:
        return f"Replicate_Do_DB={','.join(do_db)}"
    if not do_db and schema in ignore_db:
        return f"Replicate_Ignore_DB={filters['Replicate_Ignore_DB']}"
    name = f"{schema}.{table}"
    do_table = _items(filters.get("Replicate_Do_Table", ""))
    wild_do = _items(filters.get("Replicate_Wild_Do_Table", ""))
    if name in do_table:
        return None
    if name in _items(filters.get("Replicate_Ignore_Table", "")):
        return f"Replicate_Ignore_Table={filters['Replicate_Ignore_Table']}"
    if any(_like(p, name) for p in wild_do):
        return None
    ignored = [p for p in _items(filters.get("Replicate_Wild_Ignore_Table", "")) if _like(p, name)]
    if ignored:
        return f"Replicate_Wild_Ignore_Table={','.join(ignored)}"
    if do_table or wild_do:
        listed = ("Replicate_Do_Table", "Replicate_Wild_Do_Table")
        return " ".join(f"{k}={filters[k]}" for k in listed if filters.get(k))
    return None


# The primary's own binary log (MariaDB: SHOW MASTER STATUS, also SHOW BINLOG STATUS; MySQL 8.4
# has only SHOW BINARY LOG STATUS): its file, position and binlog-do-db/binlog-ignore-db filters.
BINLOG_STATUS = (
    f"{CLIENT} --vertical -e 'SHOW MASTER STATUS' 2>/dev/null || "
    f"{CLIENT} --vertical -e 'SHOW BINARY LOG STATUS'"
)
BINLOG_FILTERS = ("Binlog_Do_DB", "Binlog_Ignore_DB")


def binlog_filters(vertical_output: str) -> dict[str, str]:
    """The non-empty Binlog_Do_DB / Binlog_Ignore_DB of BINLOG_STATUS's output (none: no binary
    log, or it leaves out no database)."""
    rows = parse_vertical(vertical_output)
    row = rows[0] if rows else {}
    return {name: row[name] for name in BINLOG_FILTERS if row.get(name)}


def unlogged(filters: dict[str, str], schema: str) -> str | None:
    """The rule by which the primary's binary log leaves out changes to schema (as MySQL and
    MariaDB evaluate binlog-do-db, then binlog-ignore-db: a do-list, when there is one, alone
    decides), or None. With statement-based logging the filters apply to the statement's default
    database: a filter naming schema, or a do-list without it, is taken to leave it out."""
    do_db = _items(filters.get("Binlog_Do_DB", ""))
    if do_db:
        return None if schema in do_db else f"Binlog_Do_DB={filters['Binlog_Do_DB']}"
    if schema in _items(filters.get("Binlog_Ignore_DB", "")):
        return f"Binlog_Ignore_DB={filters['Binlog_Ignore_DB']}"
    return None


# The server's programs and units in both flavours (Debian's mysql.service is an alias of
# mariadb.service, and journalctl -u does not follow aliases: every name is asked).
SERVER_PROGRAMS = ("/usr/sbin/mariadbd", "/usr/sbin/mysqld")
SERVER_UNITS = ("mariadb.service", "mysql.service", "mysqld.service")
_STATE = "=== state"
SERVER_STATE = (
    f"for p in {' '.join(SERVER_PROGRAMS)}; do if [ -x $p ]; then echo installed $p; fi; done; "
    f"echo '{_STATE}'; systemctl show -p Id -p LoadState -p ActiveState -p Result "
    f"{' '.join(SERVER_UNITS)}; "
    f"echo '{_STATE}'; journalctl {' '.join(f'-u {u}' for u in SERVER_UNITS)} -n 60 "
    "--no-pager -o cat; true"
)
_MARKER = re.compile(r"\[(ERROR|Warning|Note|System)\]\s*(?:\[[^\]]*\]\s*)*")


@dataclass(frozen=True)
class ServerState:
    """Whether a server program is installed, its unit's state, and its last start's error."""

    installed: tuple[str, ...]
    unit: str = ""  # the unit that runs it (its Id), "" when none is loaded
    active: str = ""  # ActiveState: active, inactive, failed, activating ...
    result: str = ""  # Result: success, exit-code, start-limit-hit ...
    error: str = ""  # the server's own reason in the journal's last start attempt


def server_state(output: str) -> ServerState:
    """Parse SERVER_STATE's output."""
    head, _, rest = output.partition(_STATE)
    show, _, journal = rest.partition(_STATE)
    installed = tuple(line.split(" ", 1)[1] for line in head.splitlines() if " " in line)
    units = [
        dict(line.split("=", 1) for line in block.strip().splitlines() if "=" in line)
        for block in show.strip().split("\n\n")
    ]
    loaded = [u for u in units if u.get("LoadState") == "loaded"]  # an alias shows its unit
    unit = next((u for u in loaded if u.get("ActiveState") != "inactive"), None)
    loaded = unit or (loaded[0] if loaded else {})
    return ServerState(
        installed=installed,
        unit=loaded.get("Id", ""),
        active=loaded.get("ActiveState", ""),
        result=loaded.get("Result", ""),
        error=start_error(journal),
    )


def start_error(journal_text: str) -> str:
    """The server's own error in its last start attempt (after systemd's last "Starting"
    line): its last [ERROR] line that is not the closing "Aborting", without the time stamp."""
    lines = journal_text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("Starting ")]
    attempt = lines[starts[-1] + 1 :] if starts else lines
    errors = [
        _MARKER.split(line, 1)[-1].strip()
        for line in attempt
        if "[ERROR]" in line and not line.rstrip().endswith("Aborting")
    ]
    return errors[-1] if errors else ""
