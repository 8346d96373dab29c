"""Observations several checks share, made once per run from facts: Nginx and what it forwards
to, HAProxy and its servers, and a value written through the front door."""

from __future__ import annotations

import posixpath
import re
import secrets
import time

from checks.base import CheckError
from checks.live import SCRATCH_DB, TOKEN_PREFIX, LiveLab, json_object
from facts import dns as dns_facts
from facts import haproxy, mysql, nginx, proc, ss
from facts import http as host_http
from lab.remote import pid as valid_pid
from lab.remote import quote

WAIT = 5.0  # seconds a write may take to reach a replica or a read


def poll(func, seconds: float, interval: float = 0.1):
    """func() until it returns something truthy or seconds pass; returns the last value."""
    deadline, value = time.monotonic() + seconds, None
    while True:
        value = func()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


# -- on any host ------------------------------------------------------------------------------
def listeners(lab: LiveLab, host: str) -> list[ss.Listener]:
    return lab.memo(("ss", host), lambda: ss.parse(lab.sh(host, ss.LISTENING, sudo=True)))


def resolve(lab: LiveLab, host: str, names) -> dict[str, list[str]]:
    """name → addresses as host resolves them (addresses stand for themselves)."""
    names = set(names)
    found = {n: [n] for n in names if dns_facts.is_address(n)}
    found.update({n: ["127.0.0.1", "::1"] for n in names if n == "localhost"})
    rest = sorted(names - set(found))
    if rest:
        found.update(dns_facts.parse_getent(lab.sh(host, dns_facts.getent(rest), check=False)))
    return found


def processes(lab: LiveLab, host: str, pids) -> dict[int, proc.Process]:
    return proc.parse_ps(lab.sh(host, proc.ps(pids), check=False))


# -- Nginx and the application server behind it -------------------------------------------------
def nginx_dump(lab: LiveLab, host: str) -> str:
    return lab.memo(("nginx -T", host), lambda: lab.sh(host, nginx.DUMP, sudo=True, check=False))


def holders(lab: LiveLab, host: str, target: nginx.Target) -> list[ss.Listener]:
    """The listening sockets on host that a forwarding target reaches."""
    sockets = listeners(lab, host)
    if target.path:
        return [s for s in sockets if s.kind == "unix" and s.address == target.path]
    ips = resolve(lab, host, [target.host]).get(target.host, [])
    return [
        s
        for s in sockets
        if s.kind == "tcp" and s.port == target.port and (s.address == "*" or s.address in ips)
    ]


def application(lab: LiveLab, host: str) -> dict:
    """What Nginx on host forwards to, which processes hold it, and what they answer."""
    return lab.memo(("application", host), lambda: _application(lab, host))


def _application(lab: LiveLab, host: str) -> dict:
    targets = nginx.targets(nginx_dump(lab, host))
    held = {str(t): holders(lab, host, t) for t in targets}
    replies = []
    for _ in range(2):
        reply = lab.web(host, "/api/status")
        replies.append({"status": reply.status_code, "json": json_object(reply)})
    answered = {int(p) for r in replies if r["json"] and (p := valid_pid(r["json"].get("pid")))}

    def pids(target) -> set[int]:
        return {pid for sockets in held[str(target)] for pid in sockets.pids}

    # the target that serves /api/status: the one the answering process holds
    target = (
        next((t for t in targets if pids(t) & answered), None)
        or next((t for t in targets if held[str(t)] and t.protocol == "proxy_pass"), None)
        or next((t for t in targets if held[str(t)]), None)
    )
    direct = (
        _ask_directly(lab, host, target) if target and target.protocol == "proxy_pass" else None
    )
    owners = pids(target) - {1} if target else set()  # pid 1: systemd holding an activated socket
    master = proc.eldest(processes(lab, host, owners)) if owners else None
    own = [s for s in listeners(lab, host) if master and master.pid in s.pids]
    nginx_pids = sorted(
        {p for s in ss.on_port(listeners(lab, host), 80) for n, p in s.processes if n == "nginx"}
    )
    return {
        "targets": [str(t) for t in targets],
        "target": str(target) if target else None,
        "holders": {
            t: [[n, p] for s in sockets for n, p in s.processes] for t, sockets in held.items()
        },
        "sockets": [str(s) for s in own],
        "local_only": all(s.local_only for s in own),
        "replies": replies,
        "direct": direct,
        "nginx_pids": nginx_pids,
        "master": {"pid": master.pid, "name": master.name, "args": master.args} if master else None,
    }


def _ask_directly(lab: LiveLab, host: str, target) -> dict:
    """GET /api/status straight from the socket Nginx forwards to, inside host."""
    request = host_http.get(str(target), "/api/status", lab.site)
    raw = lab.sh(host, request + " 2>&1", sudo=True, check=False)
    reply = host_http.parse_reply(raw)
    body = reply.json()
    return {
        "target": str(target),
        "status": reply.status,
        "json": body if isinstance(body, dict) else None,
        "error": "" if reply.status else (raw.strip().splitlines() or ["no answer"])[0],
    }


# -- HAProxy ------------------------------------------------------------------------------------
def balancer(lab: LiveLab, lb: str | None = None) -> dict:
    """HAProxy on a load balancer (the active one by default): running, its configuration (on
    disk, valid?), its servers."""
    if lb is None:
        return lab.memo("haproxy", lambda: _balancer(lab, lab.name("lb")))
    return lab.memo(("haproxy", lb), lambda: _balancer(lab, lb))


def _balancer(lab: LiveLab, lb: str) -> dict:
    ps_out = lab.sh(lb, haproxy.PROCESSES, check=False)
    files = haproxy.config_files(ps_out)
    config = haproxy.parse_config(lab.sh(lb, haproxy.cat_config(files), sudo=True, check=False))
    test = lab.sh(lb, haproxy.check_config(files) + '; echo "exit=$?"', sudo=True, check=False)
    names = {s.host for b in config.backends for s in b.servers}
    addresses = resolve(lab, lb, names)
    servers = []
    for backend in config.backends:
        for server in backend.servers:
            servers.append(
                {
                    "backend": backend.name,
                    "balance": backend.balance,
                    "name": server.name,
                    "host": server.host,
                    "addresses": addresses.get(server.host, []),
                    "port": server.port,
                    "check": server.checked,
                    "backup": server.backup,
                    "disabled": server.disabled,
                    "inter": server.option("inter"),
                    "fall": server.option("fall"),
                }
            )
    stat, algorithms = None, {}
    for socket in config.sockets:
        out = lab.sh(lb, haproxy.runtime_api("show stat", socket), sudo=True, check=False)
        if out.startswith("# pxname"):
            rows = haproxy.parse_show_stat(out)
            found = haproxy.servers_at(rows, lab.web_addresses())
            stat = {h: {k: r.get(k, "") for k in STAT_FIELDS} for h, r in found.items()}
            algorithms = {r["pxname"]: r.get("algo", "") for r in rows if r["svname"] == "BACKEND"}
            break
    return {
        "host": lb,
        "running": bool(ps_out.strip()),
        "files": files,
        "config_ok": test.rstrip().endswith("exit=0"),
        "config_error": haproxy.first_alert(test),
        "sockets": config.sockets,
        "servers": servers,
        "stat": stat,
        "algorithms": algorithms,  # as HAProxy runs them (show stat), by backend
        "web": lab.web_addresses(),
    }


STAT_FIELDS = ("pxname", "svname", "status", "check_status", "check_fall", "bck", "addr", "stot")


def server_rows(lab: LiveLab, lb: str, socket: str) -> dict[str, dict] | None:
    """HAProxy's own view of the web servers (matched by address), or None without an answer."""
    out = lab.sh(lb, haproxy.runtime_api("show stat", socket), sudo=True, check=False)
    if not out.startswith("# pxname"):
        return None
    return haproxy.servers_at(haproxy.parse_show_stat(out), lab.web_addresses())


def web_servers_in_balancer(observation: dict) -> dict[str, dict]:
    """The balancer's server entries that are the web hosts (matched by address, never name)."""
    found = {}
    for host, address in observation["web"].items():
        for server in observation["servers"]:
            if address in server["addresses"]:
                found.setdefault(host, server)
    return found


# -- a value written through the front door -----------------------------------------------------
def roles(lab: LiveLab) -> tuple[str, str]:
    return lab.name("db-primary"), lab.name("db-replica")


def admin_sql(lab: LiveLab, host: str, statements: str, check: bool = True) -> str:
    """SQL as the database's administrator (`sudo mysql`, socket authentication)."""
    try:
        return lab.sh(host, mysql.command(statements), sudo=True, check=check)
    except CheckError as exc:
        if "Access denied for user 'root'" in str(exc):
            raise CheckError(
                f"{host}: the grader cannot log in as the MySQL administrator with `sudo mysql` "
                "(root must keep socket authentication, or /root/.my.cnf must hold its password)"
            ) from None
        raise


def post_entry(lab: LiveLab, host: str) -> dict:
    """Sign the guestbook through host's web server with a random token as the message."""
    token = TOKEN_PREFIX + secrets.token_hex(8)
    reply = lab.web(host, "/api/guestbook", "POST", json={"name": "lab-check", "message": token})
    return {"token": token, "status": reply.status_code, "json": json_object(reply) is not None}


def read_entries(lab: LiveLab, host: str) -> str:
    """The guestbook as host's web server reads it (raw text: tokens are searched in it)."""
    try:
        return lab.web(host, "/api/guestbook").text
    except CheckError:
        return ""


def find_tokens(lab: LiveLab, host: str, tokens: list[str], columns=None) -> dict[str, str]:
    """token → schema.table.column where host's database holds it."""
    if columns is None:
        columns = mysql.parse_columns(admin_sql(lab, host, mysql.text_columns((SCRATCH_DB,))))
    if not columns or not tokens:
        return {}
    return mysql.parse_found(admin_sql(lab, host, mysql.search(columns, tokens)))


def forget_tokens(lab: LiveLab, primary: str, replica: str, on_primary: dict, on_replica: dict):
    """Delete the grader's entries: on the primary (the deletion replicates), and on the replica
    whatever was written there directly (unlogged, so that the replica stays consistent)."""
    stray = {t: w for t, w in on_replica.items() if t not in on_primary}
    for host, found, prefix in (
        (primary, on_primary, ""),
        (replica, stray, "SET SESSION sql_log_bin = 0; "),
    ):
        statements = []
        for token, where in found.items():
            schema, table, column = where.split(".", 2)
            statements.append(
                f"USE {mysql.ident(schema)}; DELETE FROM {mysql.ident(schema)}."
                f"{mysql.ident(table)} WHERE {mysql.ident(column)} LIKE "
                f"{mysql.literal('%' + token + '%')};"
            )
        if statements:
            admin_sql(lab, host, prefix + " ".join(statements), check=False)


def front_door(lab: LiveLab) -> dict:
    """Entries written through each web server: did they reach the primary, the replica, reads?"""
    return lab.memo("front door", lambda: _front_door(lab))


def _front_door(lab: LiveLab) -> dict:
    primary, replica = roles(lab)
    web = lab.web_hosts()
    stale = find_tokens(lab, primary, [TOKEN_PREFIX])  # left by a run that was killed
    forget_tokens(lab, primary, replica, stale, {})
    posts = lab.on_each(web, lambda host: post_entry(lab, host))
    tokens = [p["token"] for p in posts.values() if p["status"] in (200, 201)]
    on_primary = find_tokens(lab, primary, tokens)
    on_replica: dict[str, str] = {}
    lab.on_cleanup(
        "front door", lambda: forget_tokens(lab, primary, replica, on_primary, on_replica)
    )
    started = time.monotonic()
    stray = len(on_primary) < len(tokens)  # written elsewhere: search the replica everywhere
    columns = None if stray else [mysql.Column(*w.split(".", 2)) for w in set(on_primary.values())]

    def replica_has_all() -> bool:
        on_replica.update(find_tokens(lab, replica, tokens, columns))
        return set(on_primary) <= set(on_replica)

    if tokens:
        poll(replica_has_all, WAIT)
    replicated_after = round(time.monotonic() - started, 2)
    engines = {}
    if on_replica:
        rows = mysql.parse_columns(admin_sql(lab, replica, mysql.text_columns((SCRATCH_DB,))))
        engines = {str(c): c.engine for c in rows if str(c) in on_replica.values()}

    def reads(host):
        own = posts[host]["token"]
        text = poll(lambda: (t := read_entries(lab, host)) and own in t and t, WAIT) or ""
        return [token for token in tokens if token in text]

    return {
        "primary": primary,
        "replica": replica,
        "posts": posts,
        "on_primary": on_primary,
        "on_replica": on_replica,
        "replica_engines": engines,
        "replicated_after": replicated_after,
        "reads": lab.on_each(web, reads),
    }


# -- the site's page and its static files -----------------------------------------------------
ASSET = re.compile(r"""(?:href|src)\s*=\s*["']([^"'#?]+)""", re.IGNORECASE)


def page_assets(html: str, limit: int = 2) -> list[str]:
    """Same-site static files a page references (stylesheets, scripts, images), as paths."""
    found = []
    for ref in ASSET.findall(html):
        if re.match(r"^[a-z][a-z0-9+.-]*:|^//", ref, re.IGNORECASE) or "/api/" in ref:
            continue
        path = posixpath.normpath(posixpath.join("/", ref))
        if path != "/" and path not in found:
            found.append(path)
    return found[:limit]


def served_by(reply) -> list[str]:
    """Every X-Served-By header of a reply (a header sent twice shows twice)."""
    values = reply.raw.headers.getlist("X-Served-By") if reply.raw is not None else []
    return [v.strip() for value in values for v in value.split(",")]


def received(lab: LiveLab, host: str, token: str) -> list[int] | None:
    """Which numbered requests `?lab-check=TOKEN-N` host's Nginx logged (None: no access log)."""
    logs = nginx.site_access_logs(nginx_dump(lab, host), lab.site)
    if not logs:
        return None
    out = lab.sh(
        host,
        f"grep -hoa 'lab-check={token}-[0-9]*' {' '.join(quote(f) for f in logs)}; true",
        sudo=True,
    )
    return sorted({int(line.rsplit("-", 1)[1]) for line in out.split()})
