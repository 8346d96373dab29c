"""A guestbook as a plain WSGI application: a code base that meets docs/app-contract.md
without being the reference (no Flask, other names, settings from an INI file).

Reads go to the database server on this host, writes to the primary.
"""

import configparser
import json
import os
import secrets
import socket
from http import HTTPStatus
from urllib.parse import parse_qs

import pymysql

CONFIG = "/etc/guest/guest.ini"
NAME_MAX, MESSAGE_MAX, NEWEST = 64, 280, 50

settings = configparser.ConfigParser()
settings.read(CONFIG)
db = settings["database"] if settings.has_section("database") else {}
HOSTNAME = socket.gethostname()


def local_db():
    return pymysql.connect(
        unix_socket=db.get("socket", "/run/mysqld/mysqld.sock"),
        user=db.get("reader", ""),
        password=db.get("reader_password", ""),
        database=db.get("schema", "gb"),
        charset="utf8mb4",
        connect_timeout=2,
    )


def primary_db():
    return pymysql.connect(
        host=db.get("primary", ""),
        port=int(db.get("primary_port", "3306")),
        user=db.get("writer", ""),
        password=db.get("writer_password", ""),
        database=db.get("schema", "gb"),
        charset="utf8mb4",
        connect_timeout=2,
        autocommit=True,
    )


def reply(start_response, status, body, extra=()):
    data = json.dumps(body).encode()
    start_response(
        f"{status.value} {status.phrase}",
        [("Content-Type", "application/json"), ("Content-Length", str(len(data))), *extra],
    )
    return [data]


def status(environ):
    body = {"host": HOSTNAME, "pid": os.getpid(), "request_id": secrets.token_urlsafe(12)}
    try:
        with local_db() as conn, conn.cursor() as cur:
            cur.execute("SELECT @@read_only, (SELECT COUNT(*) FROM posts)")
            read_only, posts = cur.fetchone()
    except pymysql.MySQLError as exc:
        body["database"] = {"reachable": False, "problem": str(exc)}
        return HTTPStatus.SERVICE_UNAVAILABLE, body
    body["database"] = {"reachable": True, "read_only": bool(read_only), "posts": posts}
    return HTTPStatus.OK, body


def list_posts(environ):
    try:
        with local_db() as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT id, author, body, posted_at FROM posts ORDER BY id DESC LIMIT %s",
                (NEWEST,),
            )
            rows = cur.fetchall()
    except pymysql.MySQLError as exc:
        return HTTPStatus.SERVICE_UNAVAILABLE, {"problem": str(exc)}
    entries = [
        {"id": i, "name": a, "message": b, "posted_at": t.isoformat()} for i, a, b, t in rows
    ]
    return HTTPStatus.OK, {"entries": entries}


def posted_fields(environ) -> dict:
    """The request body (JSON or an HTML form) as a dict; ValueError when it is neither."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    raw = environ["wsgi.input"].read(length) if length > 0 else b""
    kind = environ.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
    if kind == "application/x-www-form-urlencoded":
        return {k: v[0] for k, v in parse_qs(raw.decode("utf-8"), keep_blank_values=True).items()}
    fields = json.loads(raw.decode("utf-8"))
    if not isinstance(fields, dict):
        raise ValueError("expected a JSON object")
    return fields


def add_post(environ):
    try:
        fields = posted_fields(environ)
    except (ValueError, UnicodeDecodeError):
        return HTTPStatus.BAD_REQUEST, {"problem": "send a JSON object with name and message"}
    author, text = fields.get("name"), fields.get("message")
    if not isinstance(author, str) or not isinstance(text, str) or not author or not text:
        return HTTPStatus.BAD_REQUEST, {"problem": "name and message are required"}
    if len(author) > NAME_MAX or len(text) > MESSAGE_MAX:
        return HTTPStatus.BAD_REQUEST, {"problem": f"at most {NAME_MAX}/{MESSAGE_MAX} characters"}
    try:
        with primary_db() as conn, conn.cursor() as cur:
            cur.execute(
                "INSERT INTO posts (author, body, origin) VALUES (%s, %s, %s)",
                (author, text, HOSTNAME),
            )
            new_id = cur.lastrowid
    except pymysql.MySQLError as exc:
        return HTTPStatus.SERVICE_UNAVAILABLE, {"problem": str(exc)}
    return HTTPStatus.CREATED, {"id": new_id}


ROUTES = {
    "/api/status": {"GET": status},
    "/api/guestbook": {"GET": list_posts, "POST": add_post},
}


def application(environ, start_response):
    methods = ROUTES.get(environ.get("PATH_INFO", ""))
    if methods is None:
        return reply(start_response, HTTPStatus.NOT_FOUND, {"problem": "no such page"})
    handler = methods.get(environ["REQUEST_METHOD"])
    if handler is None:
        allow = [("Allow", ", ".join(methods))]
        return reply(start_response, HTTPStatus.METHOD_NOT_ALLOWED, {"problem": "method"}, allow)
    code, body = handler(environ)
    return reply(start_response, code, body, [("Cache-Control", "no-store")])
