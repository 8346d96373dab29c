# Test case grace (whole design): the student's own copy of the guestbook application.
"""The application files: a small guestbook that shows what primary and replica mean.

Reads come from the database on this host (the replica on web-02); writes always go to the
primary. Settings come from the environment (set by the application server's unit).
"""

import os
import socket
import time
import uuid

import pymysql
from flask import Flask, jsonify, request

app = Flask(__name__)
HOST = socket.gethostname()
STARTED = time.time()


def settings(name: str, default: str = "") -> str:
    return os.environ.get(f"WEBSTACK_{name}", default)


def read_db():
    """The database on this host, over its local socket, as the read-only application user."""
    return pymysql.connect(
        unix_socket=settings("DB_SOCKET", "/run/mysqld/mysqld.sock"),
        user=settings("DB_READ_USER"),
        password=settings("DB_READ_PASSWORD"),
        database=settings("DB_NAME"),
        connect_timeout=3,
        cursorclass=pymysql.cursors.DictCursor,
    )


def write_db():
    """The primary, over the lab network: the only place writes may go."""
    return pymysql.connect(
        host=settings("DB_PRIMARY_HOST"),
        user=settings("DB_WRITE_USER"),
        password=settings("DB_WRITE_PASSWORD"),
        database=settings("DB_NAME"),
        connect_timeout=3,
        autocommit=True,
        cursorclass=pymysql.cursors.DictCursor,
    )


def replication_state(cursor) -> dict:
    """This server's role and, on a replica, whether it is replicating."""
    cursor.execute("SELECT @@read_only AS read_only, @@server_id AS server_id")
    row = cursor.fetchone()
    state = {"read_only": bool(row["read_only"]), "server_id": row["server_id"]}
    cursor.execute("SHOW REPLICA STATUS")
    status = cursor.fetchone()
    if status:
        get = lambda *keys: next((status[k] for k in keys if k in status), None)  # noqa: E731
        state["role"] = "replica"
        state["io_running"] = get("Replica_IO_Running", "Slave_IO_Running")
        state["sql_running"] = get("Replica_SQL_Running", "Slave_SQL_Running")
        state["seconds_behind"] = get("Seconds_Behind_Source", "Seconds_Behind_Master")
        state["source_host"] = get("Source_Host", "Master_Host")
    else:
        state["role"] = "replica" if state["read_only"] else "primary"
    return state


@app.get("/healthz")
def healthz():
    return "ok\n", 200, {"Content-Type": "text/plain"}


@app.get("/api/status")
def status():
    """Which host answered, which process, and the database's role: different on every request."""
    body = {
        "host": HOST,
        "pid": os.getpid(),
        "request_id": uuid.uuid4().hex,
        "time": time.time(),
        "uptime": round(time.time() - STARTED, 1),
    }
    try:
        with read_db() as conn, conn.cursor() as cursor:
            body["database"] = replication_state(cursor)
            cursor.execute("SELECT COUNT(*) AS entries FROM guestbook")
            body["database"]["entries"] = cursor.fetchone()["entries"]
    except pymysql.MySQLError as exc:
        body["database"] = {"error": str(exc)}
        return jsonify(body), 503
    return jsonify(body)


@app.get("/api/guestbook")
def read_guestbook():
    """The latest entries, read from this host's own database."""
    with read_db() as conn, conn.cursor() as cursor:
        cursor.execute(
            "SELECT id, name, message, written_via, created_at FROM guestbook "
            "ORDER BY id DESC LIMIT 20"
        )
        entries = [{**row, "created_at": row["created_at"].isoformat()} for row in cursor]
    return jsonify({"read_from": HOST, "entries": entries})


@app.post("/api/guestbook")
def write_guestbook():
    """Sign the guestbook: the write goes to the primary, whichever host took the request."""
    data = request.get_json(silent=True) or request.form
    name = str(data.get("name", "")).strip()[:64]
    message = str(data.get("message", "")).strip()[:280]
    if not name or not message:
        return jsonify({"error": "name and message are required"}), 400
    with write_db() as conn, conn.cursor() as cursor:
        cursor.execute(
            "INSERT INTO guestbook (name, message, written_via) VALUES (%s, %s, %s)",
            (name, message, HOST),
        )
        entry_id = cursor.lastrowid
    primary = settings("DB_PRIMARY_NAME", settings("DB_PRIMARY_HOST"))
    return jsonify({"id": entry_id, "written_to": primary, "written_via": HOST}), 201
