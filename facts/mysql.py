"""MySQL/MariaDB: one runner command, replica status, and finding a value wherever it lives."""

from __future__ import annotations

from dataclasses import dataclass

from lab.remote import quote

SYSTEM_SCHEMAS = ("mysql", "information_schema", "performance_schema", "sys")
REPLICA_STATUS = "mysql --vertical -e 'SHOW REPLICA STATUS'"
TEXT_TYPES = ("char", "varchar", "tinytext", "text", "mediumtext", "longtext")
REMOTE_ENGINES = ("FEDERATED", "CONNECT", "SPIDER")  # tables whose rows live on another server


def command(statements: str) -> str:
    """`mysql` running statements as the server's administrator (tab-separated rows, no header)."""
    return f"mysql --batch --skip-column-names -e {quote(statements)}"


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
    assert all(t.replace("-", "").isalnum() for t in tokens)
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
