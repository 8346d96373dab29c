"""The grader on builds that differ from the reference: correct ones pass, fakes fail.

Each variant changes the provisioned lab as a student (or a cheat) would, asserts the verdict of
every check, then puts the reference back (../shared/style.md, "How a check earns trust").
"""

from __future__ import annotations

import base64
import io
import secrets
import signal
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from checks import CATALOGUE
from checks.base import BASE_SECTIONS
from tests.accuracy import (
    Case,
    agrees,
    blocked,
    dependents,
    graded,
    off,
    passing,
    recording,
    shown,
    statuses,
)
from tests.e2e.conftest import by_id, check_json, haproxy_servers_down, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("variants")]


SITE = "/etc/nginx/sites-available/webstack"
HAPROXY = "/etc/haproxy/haproxy.cfg"
ZONE = "/etc/nsd/foobar.com.zone"
UNIT = "/etc/systemd/system/webstack-app.service"
DB_CONF = "/etc/mysql/mariadb.conf.d/60-webstack.cnf"
VARIANTS_DIR = Path(__file__).parent / "variants"
RELOAD_NGINX = "sudo systemctl reload nginx"
RESTART_HAPROXY = "sudo systemctl reset-failed haproxy; sudo systemctl restart haproxy"
RESTART_APP = "sudo systemctl daemon-reload && sudo systemctl restart webstack-app"
WEB_DEPENDENTS = ("web.static", "web.reverse-proxy", "web.served-by", "app.server")
APP_DEPENDENTS = ("app.server", "app.database", "files.code-base", "db.replication", "db.app-roles")
LB_DEPENDENTS = ("lb.round-robin", "lb.active-active", "lb.health-checks", "http.www")


@dataclass(frozen=True)
class Variant:
    name: str
    steps: tuple  # (host, shell) run as the lab user; {lb}, {web1}, ... filled in (fill)
    fail: tuple = ()  # checks that must fail; every check not named here or in not_run passes
    not_run: tuple = ()
    evidence: dict = field(default_factory=dict)  # check id → words its evidence must contain
    restore: tuple = ()  # `lab provision` components that bring the reference back
    undo: tuple = ()  # (host, shell) run before restore
    either: tuple = ()  # checks that may pass or fail (they depend on which server answers)
    checks: tuple = ()  # checks it is about besides those named above (graded with what needs them)


def not_run(*checks, but=()):
    return tuple(c for c in dict.fromkeys(checks) if c not in but)


def sed(path: str, expression: str, then: str) -> str:
    return f"sudo sed -i {expression} {path} && {then}"


FAKE_SITE = """server {
    listen 80 default_server;
    add_header X-Served-By $hostname;
    root /srv/webstack/app/static;
    location = /api/status {
        default_type application/json;
        return 200 '{"host": "$hostname", "pid": $pid, "request_id": "$request_id"}';
    }
    location = /api/guestbook { default_type application/json; return 200 '{"entries": []}'; }
    location / { try_files $uri /index.html; }
    location /admin/ { proxy_pass http://127.0.0.1:8000; }
}
"""
ODD_JSON_SITE = """server {
    listen 80 default_server;
    add_header X-Served-By $hostname always;
    root /srv/webstack/app/static;
    location = / { try_files /index.html =404; }
    location /static/ { alias /srv/webstack/app/static/; }
    location = /api/status { default_type application/json; return 200 '[1]'; }
    location / { proxy_pass http://127.0.0.1:8000; }
}
"""


SERVE_LOCAL = (  # a plain file server on the host, for the fakes below
    "sudo systemd-run --unit {name} python3 -m http.server {port} --bind 127.0.0.1 "
    "--directory {root} && sleep 1"
)
PROXIED_STATIC_SITE = """server {
    listen 80 default_server;
    add_header X-Served-By $hostname always;
    root /srv/webstack/app/static;
    location = / { proxy_pass http://127.0.0.1:9000/index.html; }
    location /static/ { proxy_pass http://127.0.0.1:9000/; }
    location / { proxy_pass http://127.0.0.1:8000; }
}
"""
RELOAD_LB = "sudo systemctl reload haproxy"
UWSGI_INI = """[uwsgi]
plugins = python3
base = /srv/webstack
chdir = %(base)/app
wsgi-file = app.py
callable = app
master = true
processes = 2
http-socket = 127.0.0.1:8000
"""
RELAY_SITE = """server {
    listen 8080;
    location / { proxy_pass http://127.0.0.1:8000; }
}
"""
NAMED_RELAY_SITE = """server {
    listen 8082 default_server;
    location / { return 404; }
}
server {
    listen 8082;
    server_name secret.lan;
    location / { proxy_pass http://127.0.0.1:8000; }
}
"""
REWRITING_RELAY_SITE = """server {
    listen 8083;
    location / { return 404; }
    location /hidden/ { rewrite ^/hidden(/.*)$ $1 break; proxy_pass http://127.0.0.1:8000; }
}
"""
TLS_DECOY_SITE = """server {
    listen 8444 ssl;
    ssl_certificate /etc/nginx/relay.pem;
    ssl_certificate_key /etc/nginx/relay-key.pem;
    error_page 497 =200 /decoy.json;
    location = /decoy.json { default_type application/json; return 200 '{"ok": true}'; }
    location / { proxy_pass http://127.0.0.1:8000; }
}
"""
SELF_SIGNED = (
    "sudo openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=relay "
    "-keyout /etc/nginx/relay-key.pem -out /etc/nginx/relay.pem 2>/dev/null"
)
PREFIX_RELAY_SITE = """server {
    listen 8081;
    location / { return 404; }
    location /app/ { proxy_pass http://127.0.0.1:8000/; }
}
"""
WEB = ("web-01", "web-02")
NEW_DEFAULTS = (  # a defaults section as a sed replacement (mode and timeouts, and a balance)
    "defaults{name}\\n    mode http\\n    balance {balance}\\n    timeout connect 3s\\n"
    "    timeout client 30s\\n    timeout server 30s"
)
FAKE_ROUND_ROBIN = """    stick-table type integer size 1 store gpc0
    http-request track-sc0 int(1)
    http-request sc-inc-gpc0(0)
    http-request set-var(txn.n) sc_get_gpc0(0)
    use-server web-01 if TRUE
    http-response set-header X-Served-By web-02 if { var(txn.n),mod(2) -m int 0 }
"""

# Fakes that tell the grader from a visitor (../shared/style.md, "Probes look like visitors"):
# HAProxy gives requests that look like a script (a library's User-Agent, a marker in the query)
# round robin and everyone else `balance source`, so a browser always lands on one server ...
GRADER_GETS_ROUND_ROBIN = (
    "sudo sed -i 's/^    default_backend web$/"
    "    acl grader hdr_sub(User-Agent) -i python-requests curl wget\\n"
    "    acl grader query -m sub lab-check\\n"
    "    use_backend web if grader\\n"
    "    default_backend sticky/' " + HAPROXY + " && "
    "printf 'backend sticky\\n    balance source\\n    server web-01 {web1}:80 check\\n"
    "    server web-02 {web2}:80 check\\n' | sudo tee -a " + HAPROXY + " >/dev/null && "
    "sudo systemctl reload haproxy"
)
# ... or by what a browser that comes back sends and a script does not: a cookie. Visitors with
# one go to a second backend (`balance source`), or HAProxy picks the server itself for them.
COOKIE_LESS_GET_ROUND_ROBIN = (
    "sudo sed -i 's/^    default_backend web$/"
    "    acl has_cookie req.hdr_cnt(cookie) gt 0\\n"
    "    use_backend web if !has_cookie\\n"
    "    default_backend sticky/' " + HAPROXY + " && "
    "printf 'backend sticky\\n    balance source\\n    server s1 {web1}:80 check\\n"
    "    server s2 {web2}:80 check\\n' | sudo tee -a " + HAPROXY + " >/dev/null && " + RELOAD_LB
)
COOKIES_GO_TO_WEB_01 = (
    "sudo sed -i '/^    server web-01 /i\\    use-server web-01 if { req.hdr_cnt(cookie) gt 0 }' "
    + HAPROXY
    + " && "
    + RELOAD_LB
)
# Nginx serves returning visitors (a cookie) from the application, with a header that lies
RETURNING_GET_THE_APPLICATION = (
    "sudo sed -i"
    ' -e \'1i map $http_cookie $served_by { "" $hostname; default "web-01"; }\''
    " -e 's/add_header X-Served-By $hostname always;/add_header X-Served-By $served_by always;/'"
    " -e 's|try_files /index.html =404;|"
    "if ($http_cookie) { proxy_pass http://127.0.0.1:8000; } try_files /index.html =404;|'"
    " -e 's|expires 5m;|expires 5m; if ($http_cookie) { proxy_pass http://127.0.0.1:8000; }|' "
    + SITE
    + " && "
    + RELOAD_NGINX
)
# a browser over plain http sends no Sec-Fetch-* (secure contexts only): requests that do (the
# grader's, once) get round robin, the others `balance source` over IPv4-mapped addresses
FETCH_METADATA_GETS_ROUND_ROBIN = (
    "sudo sed -i 's/^    default_backend web$/"
    "    acl fetch_metadata req.hdr(sec-fetch-mode) -m found\\n"
    "    use_backend web if fetch_metadata\\n"
    "    default_backend visitors/' " + HAPROXY + " && "
    "printf 'backend visitors\\n    balance source\\n    server v1 ::ffff:{web1}:80 check\\n"
    "    server v2 ::ffff:{web2}:80 check\\n' | sudo tee -a "
    + HAPROXY
    + " >/dev/null && "
    + RELOAD_LB
)
# a SOCKS4 server on the balancer that answers every health check itself (HTTP 200)
SOCKS_ANSWERS_CHECKS = """use IO::Socket::INET;
my $l = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 1080, Listen => 16,
                              ReuseAddr => 1) or die "$!";
while (my $c = $l->accept) {
    sysread($c, my $request, 512);
    syswrite($c, "\\0\\x5a" . ("\\0" x 6));
    sysread($c, my $http, 4096);
    syswrite($c, "HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\nConnection: close\\r\\n\\r\\nok");
    close $c;
}
"""
CHECKS_THROUGH_A_SOCKS_SERVER = (  # run once SOCKS_ANSWERS_CHECKS is in /tmp/lab-socks.pl
    "sudo systemd-run --collect --unit lab-socks /usr/bin/perl /tmp/lab-socks.pl && "
    "sudo sed -i 's/^\\(    server web-0[12] .*\\) check$/\\1 check socks4 127.0.0.1:1080 "
    "check-via-socks4/' " + HAPROXY + " && " + RELOAD_LB + " && sleep 3"
)
# a configuration loaded, then the reference put back on disk with an old mtime
LOADED_THEN_PUT_BACK = (  # put back once the reload's new worker runs (late on a busy machine)
    f"sudo cp -p {HAPROXY} /tmp/lab-reference.cfg && sudo sed -i '/^    balance roundrobin/a\\"
    "    use-server web-01 if { req.hdr(x-nobody-sends) -m found }' "
    + HAPROXY
    + ' && before="$(pgrep -d, -x haproxy)" && '
    + RELOAD_LB
    + ' && for i in $(seq 100); do [ "$(pgrep -d, -x haproxy)" != "$before" ] && break; '
    + f"sleep 0.2; done; sleep 2 && sudo cp /tmp/lab-reference.cfg {HAPROXY} && "
    + f"sudo touch -d '2 hours ago' {HAPROXY}"
)
# Nginx serves visitors who come through the balancer (X-Forwarded-For) from the application
THROUGH_THE_BALANCER_GET_THE_APPLICATION = (
    "sudo sed -i"
    " -e 's|try_files /index.html =404;|if ($http_x_forwarded_for) "
    "{ proxy_pass http://127.0.0.1:8000; } try_files /index.html =404;|'"
    " -e 's|expires 5m;|expires 5m; if ($http_x_forwarded_for) "
    "{ proxy_pass http://127.0.0.1:8000; }|' " + SITE + " && " + RELOAD_NGINX
)
# ... or with no `if` around a proxy_pass: a root that the balancer's requests miss, so that
# try_files hands them to a named location that passes them on
ANOTHER_ROOT_THROUGH_THE_BALANCER = (
    "sudo sed -i"
    " -e 's|try_files /index.html =404;|set $r /srv/webstack/app/static; "
    "if ($http_x_forwarded_for) { set $r /nonexistent; } root $r; try_files /index.html @app;|'"
    " -e 's|^    location /static/ {|    location @app { proxy_pass http://127.0.0.1:8000; }\\n"
    "    location /static/ {|' " + SITE + " && " + RELOAD_NGINX
)
# health checks that reach the server, but not its web server: sshd answers them
CHECKS_THAT_CONNECT_TO_SSH = (
    "sudo sed -i -e 's/^    option httpchk .*/    option tcp-check/' "
    "-e 's/^    http-check expect .*/    tcp-check connect port 22/' "
    + HAPROXY
    + " && "
    + RELOAD_LB
)
# ... and Nginx serves the page from disk to a script, from the application to browsers.
GRADER_GETS_THE_FILE_SITE = """server {
    listen 80 default_server;
    add_header X-Served-By $hostname always;
    root /srv/webstack/app/static;
    location = / {
        if ($http_user_agent !~* "python-requests|curl|wget") {
            rewrite ^ /static/index.html break;
            proxy_pass http://127.0.0.1:8000;
        }
        try_files /index.html =404;
    }
    location /static/ { alias /srv/webstack/app/static/; }
    location / { proxy_pass http://127.0.0.1:8000; }
}
"""

# Wrappers in /usr/local, which comes first in root's PATH (and in a login shell's): the grader
# must run the distribution's programs ("Trust no program the student controls").
FAKE_NGINX = """#!/bin/sh
case " $* " in
*" -t "*) echo "nginx: the configuration file /etc/nginx/nginx.conf syntax is ok" >&2
          echo "nginx: configuration file /etc/nginx/nginx.conf test is successful" >&2; exit 0 ;;
*" -T "*) cat /var/tmp/nginx-T; exit 0 ;;
esac
exec /usr/sbin/nginx "$@"
"""
FAKE_MYSQL = """#!/bin/sh
case "$*" in
*"INSERT INTO"*) echo "ERROR 1290 (HY000) at line 1: The MariaDB server is running with the" \\
  "--read-only option so it cannot execute this statement" >&2; exit 1 ;;
esac
exec /usr/bin/mysql "$@"
"""
FAKE_NGINX_SERVER = """#!/usr/bin/python3
import http.server
class Handler(http.server.SimpleHTTPRequestHandler):
    server_version, sys_version = "nginx/1.22.1", ""
http.server.HTTPServer(("", 80), Handler).serve_forever()
"""
FAKE_HOSTNAME = """#!/bin/sh
echo web-02
"""


def wrapper(path: str, text: str, then: str = "true") -> str:
    return put(path, text, f"sudo chmod 755 {path} && {then}")


def needing(*check_ids) -> tuple:
    """Every check that needs one of check_ids, directly or not (not check_ids themselves)."""
    found = dependents(check_ids) - set(check_ids)
    return tuple(c for c in CATALOGUE if c in found)


def put(path: str, text: str, then: str) -> str:
    """Shell writing text to path (base64: nothing in it is read by the shell), then then."""
    encoded = base64.b64encode(text.encode()).decode()
    return f"echo {encoded} | base64 -d | sudo tee {path} >/dev/null && {then}"


def ssh_key_pair() -> tuple[str, str]:
    """A new OpenSSH key pair (private, public), for a tunnel one lab host opens to another."""
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return private, f"{public.decode()} lab-tunnel\n"


def ssh_forward(unit: str, key: str, forward: str, port: int, at: str = "") -> str:
    """Shell starting an SSH client to web-01 as root (systemd unit `unit`, key, `forward`:
    its -R or -L; started again until web-01's sshd, reloaded a moment ago, lets it in), then
    waiting until port listens (at address `at`, when given): the forward is up (else the
    client's last words)."""
    wait = f"ss -Htln {f'src {at} ' if at else ''}sport = :{port} | grep -q ."
    return (
        f"sudo systemd-run --collect --unit {unit} -p Restart=on-failure -p RestartSec=1 "
        f"/usr/bin/ssh -i {key} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
        f"-o ExitOnForwardFailure=yes -N {forward} root@{{web1}} && "
        f"for i in $(seq 100); do {wait} && break; sleep 0.2; done; "
        f"{wait} || {{ sudo journalctl -u {unit} --no-pager | tail -5; false; }}"
    )


# A relay that a visitor must wait 3 s for, and that gives plain HTTP a JSON decoy: only
# a TLS visitor (the first byte of a handshake) is passed on to the application.
SLOW_TLS_RELAY = """import socket, ssl, threading, time
tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
tls.load_cert_chain("/root/relay.pem", "/root/relay-key.pem")
DECOY = b'{"status": "ok"}'


def pipe(source, sink):
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    for end in (source, sink):
        try:
            end.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def serve(visitor):
    time.sleep(3)
    if visitor.recv(1, socket.MSG_PEEK) != b"\\x16":
        visitor.recv(65536)
        head = b"HTTP/1.1 200 OK\\r\\nContent-Type: application/json\\r\\nConnection: close\\r\\n"
        visitor.sendall(head + b"Content-Length: %d\\r\\n\\r\\n%s" % (len(DECOY), DECOY))
        visitor.close()
        return
    visitor = tls.wrap_socket(visitor, server_side=True)
    app = socket.create_connection(("127.0.0.1", 8000))
    threading.Thread(target=pipe, args=(app, visitor)).start()
    pipe(visitor, app)


server = socket.create_server(("0.0.0.0", 8444))
while True:
    threading.Thread(target=serve, args=(server.accept()[0],)).start()
"""
# A second Nginx of its own (its own -c), passing one path on to the application
SECOND_NGINX = """pid /run/nginx-second.pid;
events {}
http {
    server { listen 8445; location /s3cret/ { proxy_pass http://127.0.0.1:8000/; } }
}
"""
TUNNEL_KEY = ssh_key_pair()
TUNNEL = "/root/.ssh/lab-tunnel"

LOCAL_FAKES = (
    "sudo sed -i -e 's/server web-01 [^ ]*/server web-01 127.0.0.1:9001/' "
    "-e 's/server web-02 [^ ]*/server web-02 127.0.0.1:9002/' " + HAPROXY + " && "
    "printf 'listen f1\\n  bind 127.0.0.1:9001\\n  http-request return status 200 content-type "
    'text/html string "<html>fake</html>" hdr X-Served-By web-01\\n'
    "listen f2\\n  bind 127.0.0.1:9002\\n  http-request return status 200 content-type "
    'text/html string "<html>fake</html>" hdr X-Served-By web-02\\n\' | sudo tee -a '
    + HAPROXY
    + " >/dev/null && sudo systemctl reload haproxy"
)
REPOINT = (  # the replica follows the primary under another name, from where it stands
    "sudo mysql -e 'STOP REPLICA'; "
    "f=$(sudo mysql -e 'SHOW REPLICA STATUS\\G' | awk '/Relay_Master_Log_File/{{print $2}}'); "
    "p=$(sudo mysql -e 'SHOW REPLICA STATUS\\G' | awk '/Exec_Master_Log_Pos/{{print $2}}'); "
    "sudo mysql -e \"CHANGE MASTER TO MASTER_HOST='{target}', MASTER_LOG_FILE='$f', "
    'MASTER_LOG_POS=$p; START REPLICA"'
)
BY_NAME = "db-primary.foobar.com"
MIRROR = (  # on the primary: each new entry is copied to the replica's table over FederatedX
    "sudo mysql -e \"SET sql_log_bin = 0; INSTALL SONAME 'ha_federatedx'; CREATE DATABASE mirror; "
    "CREATE TABLE mirror.guestbook (id INT NOT NULL, name VARCHAR(64) NOT NULL, "
    "message VARCHAR(280) NOT NULL, written_via VARCHAR(64) NOT NULL, created_at TIMESTAMP NOT "
    "NULL DEFAULT CURRENT_TIMESTAMP, PRIMARY KEY (id)) ENGINE=FEDERATED "
    "CONNECTION='mysql://mirror:mirror-pw@{web2}:3306/webstack/guestbook'; "
    "CREATE TRIGGER webstack.copy AFTER INSERT ON webstack.guestbook FOR EACH ROW INSERT INTO "
    'mirror.guestbook VALUES (NEW.id, NEW.name, NEW.message, NEW.written_via, NEW.created_at)"'
)
MIRROR_ACCOUNT = (  # on the replica: the account the trigger writes with, past read_only
    "sudo mysql -e \"SET sql_log_bin = 0; CREATE USER 'mirror'@'{web1}' IDENTIFIED BY "
    "'mirror-pw'; GRANT SELECT, INSERT, UPDATE, DELETE ON webstack.* TO 'mirror'@'{web1}'; "
    "GRANT READ_ONLY ADMIN ON *.* TO 'mirror'@'{web1}'\""
)

VARIANTS = [
    # correct builds that differ from the reference: everything passes
    Variant(
        "header-without-always",
        (
            ("web-01", sed(SITE, "'s/ always;/;/'", RELOAD_NGINX)),
            ("web-02", sed(SITE, "'s/ always;/;/'", RELOAD_NGINX)),
        ),
        evidence={"web.served-by": "error pages carry none"},
        restore=("web",),
    ),
    Variant(
        "servers-named-otherwise-no-stats-socket",
        (
            (
                "lb-01",
                sed(
                    HAPROXY,
                    "-e 's/server web-01 /server 1234-web-01 /' -e "
                    "'s/server web-02 /server s2 /' -e '/stats socket/d'",
                    RESTART_HAPROXY,
                ),
            ),
        ),
        evidence={"lb.health-checks": "no stats socket, so tried", "lb.round-robin": "alternated"},
        restore=("lb",),
    ),
    Variant(
        "www-as-an-a-record",
        (("lb-01", sed(ZONE, "'s/^www .*/www IN A {lb}/'", "sudo systemctl restart nsd")),),
        evidence={"dns.www": "www.foobar.com. A {lb}"},
        restore=("dns",),
    ),
    Variant(
        "binlog-do-db-for-the-application-only",
        (
            (
                "web-01",
                f"echo 'binlog_do_db = webstack' | sudo tee -a {DB_CONF} >/dev/null && "
                "sudo systemctl restart mariadb",
            ),
            ("web-02", "sleep 3"),
        ),
        evidence={"db.replication": "webstack.guestbook"},
        restore=("database",),
    ),
    Variant(
        "primary-named-by-a-resolvable-name",
        (
            ("web-01", f"echo '{{web1}} {BY_NAME}' | sudo tee -a /etc/hosts"),
            ("web-02", f"echo '{{web1}} {BY_NAME}' | sudo tee -a /etc/hosts"),
            ("web-02", REPOINT.format(target=BY_NAME)),
            (
                "web-01",
                sed(
                    "/etc/webstack/app.env",
                    f"'s/^WEBSTACK_DB_PRIMARY_HOST=.*/WEBSTACK_DB_PRIMARY_HOST={BY_NAME}/'",
                    RESTART_APP,
                ),
            ),
            (
                "web-02",
                sed(
                    "/etc/webstack/app.env",
                    f"'s/^WEBSTACK_DB_PRIMARY_HOST=.*/WEBSTACK_DB_PRIMARY_HOST={BY_NAME}/'",
                    RESTART_APP,
                ),
            ),
        ),
        evidence={"db.replication": f"source {BY_NAME}"},
        undo=(
            ("web-02", REPOINT.format(target="{web1}")),
            ("web-01", f"sudo sed -i '/{BY_NAME}/d' /etc/hosts"),
            ("web-02", f"sudo sed -i '/{BY_NAME}/d' /etc/hosts"),
        ),
        restore=("app",),
    ),
    Variant(  # a filter that keeps the application's database: its rows still replicate
        "replica-filters-to-the-application-database",
        (
            (
                "web-02",
                f"echo 'replicate_wild_do_table = webstack.%' | sudo tee -a {DB_CONF} "
                ">/dev/null && sudo systemctl restart mariadb",
            ),
        ),
        evidence={"db.replication": "filters Replicate_Wild_Do_Table=webstack.%"},
        restore=("database",),
    ),
    # fakes and broken builds: exactly these checks fail
    Variant(  # the old grader passed it: the replica held every entry
        "replication-faked-by-a-trigger-over-federatedx",
        (
            (
                "web-02",
                f"echo 'replicate_wild_ignore_table = webstack.%' | sudo tee -a {DB_CONF} "
                f">/dev/null && echo 'replicate_wild_ignore_table = mirror.%' | sudo tee -a "
                f"{DB_CONF} >/dev/null && sudo systemctl restart mariadb",
            ),
            ("web-02", MIRROR_ACCOUNT),
            ("web-01", MIRROR),
        ),
        fail=("db.replication",),
        not_run=("db.app-roles",),
        evidence={
            "db.replication": "web-02's replication filters leave out the application's table "
            "webstack.guestbook (Replicate_Wild_Ignore_Table=webstack.%)"
        },
        undo=(
            (
                "web-01",
                'sudo mysql -e "SET sql_log_bin = 0; DROP TRIGGER IF EXISTS webstack.copy; '
                "DROP DATABASE IF EXISTS mirror; UNINSTALL SONAME 'ha_federatedx'\"",
            ),
            (  # the grader's entries, deleted on the primary, were filtered out here
                "web-02",
                "sudo mysql -e \"SET sql_log_bin = 0; DROP USER IF EXISTS 'mirror'@'{web1}'; "
                "DELETE FROM webstack.guestbook WHERE message LIKE 'lab-check-%'\"",
            ),
        ),
        restore=("database",),
    ),
    Variant(  # the replica applies the application's changes to another database
        "replica-rewrites-the-application-database-elsewhere",
        (
            (
                "web-02",
                'sudo mysql -e "SET sql_log_bin = 0; CREATE DATABASE webstack_shadow; '
                "CREATE TABLE webstack_shadow.guestbook LIKE webstack.guestbook; "
                "STOP REPLICA SQL_THREAD; SET GLOBAL replicate_rewrite_db = "
                "'webstack->webstack_shadow'; START REPLICA SQL_THREAD\"",
            ),
        ),
        fail=("db.replication",),
        not_run=("db.app-roles",),
        either=("app.database",),
        evidence={
            "db.replication": "(Replicate_Rewrite_DB=webstack->webstack_shadow)",
        },
        undo=(
            (
                "web-02",
                "sudo mysql -e \"STOP REPLICA SQL_THREAD; SET GLOBAL replicate_rewrite_db = ''; "
                'START REPLICA SQL_THREAD; SET sql_log_bin = 0; DROP DATABASE webstack_shadow"',
            ),
        ),
        restore=("database",),
    ),
    Variant(  # the old grader passed it with a copy loop on the replica (it read no primary filter)
        "primary-binlog-ignores-the-application-database",
        (
            (
                "web-01",
                f"echo 'binlog_ignore_db = webstack' | sudo tee -a {DB_CONF} >/dev/null && "
                "sudo systemctl restart mariadb",
            ),
        ),
        fail=("db.replication",),
        not_run=("db.app-roles",),
        evidence={
            "db.replication": "web-01's binary log leaves out the application's database "
            "webstack (Binlog_Ignore_DB=webstack)"
        },
        restore=("database",),
    ),
    Variant(
        "nginx-alone-fakes-the-application",
        (("web-01", put(SITE, FAKE_SITE, RELOAD_NGINX)),),
        fail=("web.reverse-proxy",),
        not_run=not_run(*APP_DEPENDENTS),
        evidence={"web.reverse-proxy": "answered by Nginx itself"},
        restore=("web",),
    ),
    Variant(
        "an-odd-json-reply",
        (("web-02", put(SITE, ODD_JSON_SITE, RELOAD_NGINX)),),
        fail=("web.reverse-proxy",),
        not_run=not_run(*APP_DEPENDENTS),
        evidence={"web.reverse-proxy": "without the application's JSON object"},
        restore=("web",),
    ),
    Variant(
        "an-nginx-configuration-that-never-loaded",
        (
            (
                "web-02",
                f"echo 'bogus_directive on;' | sudo tee -a {SITE} >/dev/null; "
                f"{RELOAD_NGINX} || true",
            ),
        ),
        fail=("web.nginx",),
        not_run=not_run(*WEB_DEPENDENTS, *APP_DEPENDENTS, "lb.round-robin", "lb.active-active"),
        evidence={
            "web.nginx": "nginx -t fails on the configuration on disk ([emerg] unknown "
            'directive "bogus_directive"'
        },
        restore=("web",),
    ),
    Variant(
        "a-haproxy-configuration-that-never-loaded",
        (
            (
                "lb-01",
                sed(
                    HAPROXY,
                    "'/^defaults/a\\    bogus_keyword'",
                    "sudo systemctl reload haproxy || true",
                ),
            ),
        ),
        fail=("lb.haproxy",),
        not_run=LB_DEPENDENTS,
        evidence={"lb.haproxy": "haproxy -c fails"},
        restore=("lb",),
    ),
    Variant(
        "a-write-account-for-localhost-only",
        (
            (
                "web-01",
                "sudo mysql -e \"RENAME USER 'webstack_write'@'{net}' TO "
                "'webstack_write'@'localhost'\"",
            ),
        ),
        fail=("app.database",),
        not_run=("db.replication", "db.app-roles"),
        evidence={"app.database": "POST /api/guestbook answered HTTP 500"},
        undo=(("web-01", "sudo mysql -e \"DROP USER 'webstack_write'@'localhost'\""),),
        restore=("database",),
    ),
    Variant(
        "haproxy-pointing-at-local-fakes",
        (("lb-01", LOCAL_FAKES),),
        fail=("lb.round-robin", "lb.active-active", "lb.health-checks", "http.www"),
        evidence={
            "lb.round-robin": "do not include web-01",
            "http.www": "Nginx did not log it",
        },
        restore=("lb",),
    ),
    Variant(
        "a-different-entry-point-on-one-server",
        (
            (
                "web-02",
                "sudo cp /srv/webstack/app/app.py /srv/webstack/app/evil.py && "
                + sed(UNIT, "'s/ app:app/ evil:app/'", RESTART_APP),
            ),
        ),
        fail=("files.code-base",),
        evidence={"files.code-base": "runs evil.py"},
        undo=(("web-02", "sudo rm -f /srv/webstack/app/evil.py"),),
        restore=("app",),
    ),
    Variant(
        "balance-leastconn",
        (
            (
                "lb-01",
                sed(
                    HAPROXY,
                    "'s/balance roundrobin/balance leastconn/'",
                    "sudo systemctl reload haproxy",
                ),
            ),
        ),
        fail=("lb.round-robin",),
        evidence={"lb.round-robin": "balance leastconn"},
        restore=("lb",),
    ),
    Variant(
        "a-server-in-maintenance",
        (
            (
                "lb-01",
                sed(
                    HAPROXY, "'s/\\(server web-02 .*\\) check/\\1 check disabled/'", RESTART_HAPROXY
                ),
            ),
        ),
        fail=("lb.round-robin", "lb.active-active", "lb.health-checks"),
        evidence={"lb.health-checks": "web-02 is in maintenance"},
        restore=("lb",),
    ),
    Variant(
        "a-second-proxy-pass-to-another-local-service",
        (
            ("web-01", f"{SERVE_LOCAL.format(name='lab-extra', port=9100, root='/tmp')}"),
            (
                "web-01",
                sed(
                    SITE,
                    "'/server_name/a location /metrics/ { proxy_pass http://127.0.0.1:9100/; }'",
                    RELOAD_NGINX,
                ),
            ),
        ),
        evidence={"web.reverse-proxy": "web-01: Nginx → 127.0.0.1:8000"},
        undo=(("web-01", "sudo systemctl stop lab-extra"),),
        restore=("web",),
    ),
    Variant(
        "gunicorn-with-pythonpath-and-working-directory-root",
        tuple(
            (
                host,
                sed(
                    UNIT,
                    "-e 's#^ExecStart=.*#ExecStart=/usr/bin/gunicorn --workers 2 --bind "
                    "127.0.0.1:8000 --pythonpath /srv/webstack/app app:app#' "
                    "-e 's#^WorkingDirectory=.*#WorkingDirectory=/#'",
                    RESTART_APP,
                ),
            )
            for host in ("web-01", "web-02")
        ),
        evidence={"files.code-base": "entry point app.py"},
        restore=("app",),
    ),
    Variant(
        "gunicorn-configured-in-a-file",
        tuple(
            (
                host,
                put(
                    "/etc/webstack/gunicorn.conf.py",
                    'wsgi_app = "app:app"\nchdir = "/srv/webstack/app"\n'
                    'bind = "127.0.0.1:8000"\nworkers = 2\n',
                    sed(
                        UNIT,
                        "-e 's#^ExecStart=.*#ExecStart=/usr/bin/gunicorn -c "
                        "/etc/webstack/gunicorn.conf.py#' -e 's#^WorkingDirectory=.*#"
                        "WorkingDirectory=/#'",
                        RESTART_APP,
                    ),
                ),
            )
            for host in ("web-01", "web-02")
        ),
        evidence={"files.code-base": "entry point app.py"},
        undo=(
            ("web-01", "sudo rm -f /etc/webstack/gunicorn.conf.py"),
            ("web-02", "sudo rm -f /etc/webstack/gunicorn.conf.py"),
        ),
        restore=("app",),
    ),
    Variant(  # the usual tutorial setup: the code is named in an INI file only
        "uwsgi-with-an-ini-file",
        tuple(
            (
                host,
                "sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q uwsgi "
                "uwsgi-plugin-python3 >/dev/null && "
                + put(
                    "/etc/webstack/uwsgi.ini",
                    UWSGI_INI,
                    sed(
                        UNIT,
                        "-e 's#^ExecStart=.*#ExecStart=/usr/bin/uwsgi --ini uwsgi.ini#' "
                        "-e 's#^WorkingDirectory=.*#WorkingDirectory=/etc/webstack#'",
                        RESTART_APP,
                    ),
                ),
            )
            for host in WEB
        ),
        evidence={"files.code-base": "entry point app.py", "app.server": "web-01: uwsgi on"},
        undo=tuple((host, "sudo rm -f /etc/webstack/uwsgi.ini") for host in WEB),
        restore=("app",),
    ),
    Variant(  # gunicorn reads -c from where it started (the unit's WorkingDirectory)
        "gunicorn-with-a-relative-configuration-file",
        tuple(
            (
                host,
                put(
                    "/etc/webstack/gunicorn.conf.py",
                    'wsgi_app = "app:app"\nchdir = "/srv/webstack/app"\n'
                    'bind = "127.0.0.1:8000"\nworkers = 2\n',
                    sed(
                        UNIT,
                        "-e 's#^ExecStart=.*#ExecStart=/usr/bin/gunicorn -c gunicorn.conf.py#' "
                        "-e 's#^WorkingDirectory=.*#WorkingDirectory=/etc/webstack#'",
                        RESTART_APP,
                    ),
                ),
            )
            for host in WEB
        ),
        evidence={"files.code-base": "entry point app.py"},
        undo=tuple((host, "sudo rm -f /etc/webstack/gunicorn.conf.py") for host in WEB),
        restore=("app",),
    ),
    Variant(  # gunicorn on loopback, but a relay opens it to the network
        "the-application-relayed-to-the-network-by-socat",
        (
            (
                "web-01",
                "sudo systemd-run --collect --unit lab-relay /usr/bin/socat "
                "TCP-LISTEN:8001,fork,reuseaddr TCP:127.0.0.1:8000 && sleep 1",
            ),
        ),
        fail=("app.server",),
        not_run=needing("app.server"),
        evidence={
            "app.server": "web-01: {web1}:8001 (socat) relays the application to the network"
        },
        undo=(("web-01", "sudo systemctl stop lab-relay"),),
    ),
    Variant(  # the same through a port forward: nothing listens on 8080, ss shows nothing
        "the-application-forwarded-to-the-network-by-a-dnat-rule",
        (
            (
                "web-01",
                "sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q iptables >/dev/null "
                "&& sudo sysctl -qw net.ipv4.conf.all.route_localnet=1 && sudo /usr/sbin/iptables "
                "-t nat -I PREROUTING -p tcp --dport 8080 -j DNAT --to-destination 127.0.0.1:8000",
            ),
        ),
        fail=("app.server",),
        not_run=needing("app.server"),
        evidence={
            "app.server": "web-01: {web1}:8080 (a NAT port forward) relays the application to "
            "the network"
        },
        undo=(
            (
                "web-01",
                "sudo /usr/sbin/iptables -t nat -F PREROUTING && "
                "sudo sysctl -qw net.ipv4.conf.all.route_localnet=0",
            ),
        ),
    ),
    Variant(  # the same over IPv6 only: the lab host's link-local address, [::]:8002
        "the-application-relayed-to-the-network-over-ipv6-only-by-socat",
        (
            (
                "web-01",
                "sudo systemd-run --collect --unit lab-relay6 /usr/bin/socat "
                "TCP6-LISTEN:8002,ipv6only=1,fork,reuseaddr TCP:127.0.0.1:8000 && sleep 1",
            ),
        ),
        fail=("app.server",),
        not_run=needing("app.server"),
        evidence={
            "app.server": "]:8002 (socat) relays the application to the network: GET "
            "/api/status there from lb-01 and web-02 was answered by the application"
        },
        undo=(("web-01", "sudo systemctl stop lab-relay6"),),
    ),
    Variant(  # the same by sshd itself: a remote forward open to the network (GatewayPorts)
        "the-application-relayed-to-the-network-by-an-ssh-remote-forward",
        (
            (
                "web-01",
                "sudo install -d -m 700 /root/.ssh && sudo ssh-keygen -q -t ed25519 -N '' "
                "-C lab-relay -f /root/.ssh/lab-relay && sudo sh -c 'cat /root/.ssh/lab-relay.pub "
                ">> /root/.ssh/authorized_keys' && printf 'GatewayPorts yes\\nPermitRootLogin "
                "prohibit-password\\n' | sudo tee /etc/ssh/sshd_config.d/10-relay.conf "
                ">/dev/null && sudo systemctl reload ssh "
                "&& "
                + ssh_forward(
                    "lab-relay-ssh", "/root/.ssh/lab-relay", "-R 0.0.0.0:8003:127.0.0.1:8000", 8003
                ),
            ),
        ),
        fail=("app.server",),
        not_run=needing("app.server"),
        evidence={"app.server": "web-01: {web1}:8003 (sshd) relays the application to the network"},
        undo=(
            (
                "web-01",
                "sudo systemctl stop lab-relay-ssh; sudo rm -f "
                "/etc/ssh/sshd_config.d/10-relay.conf /root/.ssh/lab-relay "
                "/root/.ssh/lab-relay.pub; sudo sed -i /lab-relay/d "
                "/root/.ssh/authorized_keys; sudo systemctl reload ssh",
            ),
        ),
    ),
    Variant(  # the same at port 22 of a second address: the daemon listens at the lab address
        "the-application-relayed-by-an-ssh-remote-forward-at-port-22",
        (
            (
                "web-01",
                "sudo ip addr add {relay}/24 dev eth0 && printf 'ListenAddress {web1}\\n"
                "GatewayPorts clientspecified\\nPermitRootLogin prohibit-password\\n' "
                "| sudo tee /etc/ssh/sshd_config.d/00-relay22.conf >/dev/null && "
                "sudo systemctl restart ssh && sudo install -d -m 700 /root/.ssh && "
                "sudo ssh-keygen -q -t ed25519 -N '' -C lab-relay22 -f /root/.ssh/lab-relay22 && "
                "sudo sh -c 'cat /root/.ssh/lab-relay22.pub >> /root/.ssh/authorized_keys' && "
                + ssh_forward(
                    "lab-relay-22",
                    "/root/.ssh/lab-relay22",
                    "-R {relay}:22:127.0.0.1:8000",
                    22,
                    at="{relay}",
                ),
            ),
        ),
        fail=("app.server",),
        not_run=needing("app.server"),
        evidence={"app.server": "web-01: {relay}:22 (sshd) relays the application to the network"},
        undo=(
            (
                "web-01",
                "sudo systemctl stop lab-relay-22; sudo ip addr del {relay}/24 dev eth0; "
                "sudo rm -f /etc/ssh/sshd_config.d/00-relay22.conf /root/.ssh/lab-relay22 "
                "/root/.ssh/lab-relay22.pub; sudo sed -i /lab-relay22/d "
                "/root/.ssh/authorized_keys; sudo systemctl restart ssh",
            ),
        ),
    ),
    Variant(  # a port forward written as an nftables map from port to address and port
        "the-application-forwarded-by-an-nftables-map",
        (
            (
                "web-02",
                "sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q nftables >/dev/null "
                "&& sudo sysctl -qw net.ipv4.conf.all.route_localnet=1 && "
                "sudo /usr/sbin/nft add table ip labfwd && sudo /usr/sbin/nft add chain ip labfwd "
                "pre '{ type nat hook prerouting priority -100; }' && sudo /usr/sbin/nft add "
                "rule ip labfwd pre iifname eth0 dnat ip to tcp dport map "
                "'{ 9010 : 127.0.0.1 . 8000 }'",
            ),
        ),
        fail=("app.server",),
        not_run=needing("app.server"),
        evidence={"app.server": "web-02: {web2}:9010 (a NAT port forward) relays the application"},
        undo=(
            (
                "web-02",
                "sudo /usr/sbin/nft delete table ip labfwd; "
                "sudo sysctl -qw net.ipv4.conf.all.route_localnet=0",
            ),
        ),
    ),
    Variant(  # the same by a second instance of Nginx, with a configuration of its own
        "the-application-relayed-by-a-second-nginx-instance",
        (
            (
                "web-01",
                "sudo mkdir -p /etc/nginx-second && "
                + put(
                    "/etc/nginx-second/nginx.conf",
                    SECOND_NGINX,
                    "sudo systemd-run --collect --unit lab-nginx-second /usr/sbin/nginx "
                    "-c /etc/nginx-second/nginx.conf -g 'daemon off;' && sleep 1",
                ),
            ),
        ),
        fail=("app.server",),
        not_run=needing("app.server"),
        evidence={"app.server": "web-01: {web1}:8445 (nginx) relays the application"},
        undo=(
            (
                "web-01",
                "sudo systemctl stop lab-nginx-second; sudo rm -rf /etc/nginx-second",
            ),
        ),
    ),
    Variant(  # the same in a network namespace of its own, on a macvlan of the lab network
        "the-application-relayed-from-a-network-namespace-of-its-own",
        (
            (
                "web-01",
                "sudo systemd-run --collect --unit lab-relay-unix /usr/bin/socat "
                "UNIX-LISTEN:/run/lab-relay.sock,fork,mode=600 TCP:127.0.0.1:8000 && "
                "sudo ip netns add labns && sudo ip link add labmv link eth0 type macvlan mode "
                "bridge && sudo ip link set labmv netns labns && sudo ip -n labns addr add "
                "{relay2}/24 dev labmv && sudo ip -n labns link set labmv up && "
                "sudo systemd-run --collect --unit lab-relay-ns "
                "-p NetworkNamespacePath=/run/netns/labns /usr/bin/socat "
                "TCP-LISTEN:9000,fork,reuseaddr UNIX-CONNECT:/run/lab-relay.sock && sleep 1",
            ),
        ),
        fail=("app.server",),
        not_run=needing("app.server"),
        evidence={"app.server": "web-01: {relay2}:9000 (socat) relays the application"},
        undo=(
            (
                "web-01",
                "sudo systemctl stop lab-relay-ns lab-relay-unix; sudo ip netns del labns; "
                "sudo rm -f /run/lab-relay.sock",
            ),
        ),
    ),
    Variant(  # a server left over in the backend, elsewhere than a web server (it stays DOWN):
        # the balancer's port 80 is asked, and what answers there comes through Nginx
        "a-balancer-with-a-leftover-server-elsewhere",
        (
            (
                "lb-01",
                sed(
                    HAPROXY,
                    "'/server web-02 /a\\    server old-03 127.0.0.2:8088 check'",
                    RELOAD_LB,
                ),
            ),
        ),
        checks=("app.server",),
        restore=("lb",),
    ),
    Variant(  # a sorry server for when every web server is down, and no Server header on what
        # the balancer answers: nothing tells its answers from the application's but HAProxy's
        # own reading, where the backup takes no request while a web server is up
        "a-balancer-with-a-sorry-server-that-hides-the-server-header",
        (
            (
                "lb-01",
                sed(
                    HAPROXY,
                    "'/server web-02 /a\\    server sorry 127.0.0.1:8081 backup\\n"
                    "    http-response del-header Server'",
                    RELOAD_LB,
                ),
            ),
        ),
        checks=("app.server",),
        restore=("lb",),
    ),
    Variant(  # the same over TLS only: plain HTTP there gets no answer, as to a browser warned
        "the-application-relayed-to-the-network-over-tls-by-socat",
        (
            (
                "web-01",
                "sudo openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=relay "
                "-keyout /root/relay-key.pem -out /root/relay.pem 2>/dev/null && "
                "sudo systemd-run --collect --unit lab-relay-tls /usr/bin/socat "
                "OPENSSL-LISTEN:8443,cert=/root/relay.pem,key=/root/relay-key.pem,verify=0,"
                "fork,reuseaddr TCP:127.0.0.1:8000 && sleep 1",
            ),
        ),
        fail=("app.server",),
        not_run=needing("app.server"),
        evidence={
            "app.server": "web-01: {web1}:8443 (socat) relays the application to the network"
        },
        undo=(
            (
                "web-01",
                "sudo systemctl stop lab-relay-tls; sudo rm -f /root/relay.pem /root/relay-key.pem",
            ),
        ),
    ),
    Variant(  # the same over UDP: each datagram to a connection of its own, the answer back
        "the-application-relayed-to-the-network-over-udp-by-socat",
        (
            (
                "web-02",
                "sudo systemd-run --collect --unit lab-relay-udp /usr/bin/socat "
                "UDP4-RECVFROM:9001,fork TCP:127.0.0.1:8000 && sleep 1",
            ),
        ),
        fail=("app.server",),
        not_run=needing("app.server"),
        evidence={
            "app.server": "web-02: {web2}:9001/udp (socat) relays the application to the network"
        },
        undo=(("web-02", "sudo systemctl stop lab-relay-udp"),),
    ),
    Variant(  # a relay that answers 3 s late, and plain HTTP with a JSON decoy: TLS only leads on
        "the-application-relayed-late-over-tls-behind-a-decoy",
        (
            (
                "web-01",
                "sudo openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=relay "
                "-keyout /root/relay-key.pem -out /root/relay.pem 2>/dev/null && "
                + put(
                    "/root/relay.py",
                    SLOW_TLS_RELAY,
                    "sudo systemd-run --collect --unit lab-relay-slow /usr/bin/python3 "
                    "/root/relay.py && sleep 1",
                ),
            ),
        ),
        fail=("app.server",),
        not_run=needing("app.server"),
        evidence={"app.server": "web-01: {web1}:8444 (python3"},
        undo=(
            (
                "web-01",
                "sudo systemctl stop lab-relay-slow; "
                "sudo rm -f /root/relay.py /root/relay.pem /root/relay-key.pem",
            ),
        ),
    ),
    Variant(  # an SSH tunnel on the balancer, open to the network, to web-01's loopback port
        "the-application-relayed-to-the-network-by-an-ssh-tunnel-on-the-balancer",
        (
            (
                "web-01",
                put("/tmp/lab-tunnel.pub", TUNNEL_KEY[1], "true")
                + " && sudo install -d -m 700 /root/.ssh && sudo sh -c 'cat /tmp/lab-tunnel.pub "
                ">> /root/.ssh/authorized_keys' && printf 'PermitRootLogin prohibit-password\\n' "
                "| sudo tee /etc/ssh/sshd_config.d/10-tunnel.conf >/dev/null && "
                "sudo systemctl reload ssh",
            ),
            (
                "lb-01",
                "sudo install -d -m 700 /root/.ssh && "
                + put(TUNNEL, TUNNEL_KEY[0], f"sudo chmod 600 {TUNNEL}")
                + " && "
                + ssh_forward("lab-tunnel", TUNNEL, "-g -L 8080:127.0.0.1:8000", 8080),
            ),
        ),
        fail=("app.server",),
        not_run=needing("app.server"),
        evidence={
            "app.server": "web-01: lb-01's {lb}:8080 (ssh) relays the application to the "
            "network: GET /api/status there from this machine"
        },
        undo=(
            ("lb-01", "sudo systemctl stop lab-tunnel; sudo rm -f /root/.ssh/lab-tunnel"),
            (
                "web-01",
                "sudo rm -f /etc/ssh/sshd_config.d/10-tunnel.conf /tmp/lab-tunnel.pub; "
                "sudo sed -i /lab-tunnel/d /root/.ssh/authorized_keys; sudo systemctl reload ssh",
            ),
        ),
    ),
    Variant(  # the same behind a real Nginx on the balancer, whose Server header says nginx
        "the-application-relayed-by-nginx-on-the-balancer-through-an-ssh-tunnel",
        (
            (
                "web-01",
                put("/tmp/lab-tunnel.pub", TUNNEL_KEY[1], "true")
                + " && sudo install -d -m 700 /root/.ssh && sudo sh -c 'cat /tmp/lab-tunnel.pub "
                ">> /root/.ssh/authorized_keys' && printf 'PermitRootLogin prohibit-password\\n' "
                "| sudo tee /etc/ssh/sshd_config.d/10-tunnel.conf >/dev/null && "
                "sudo systemctl reload ssh",
            ),
            (
                "lb-01",
                "sudo install -d -m 700 /root/.ssh && "
                + put(TUNNEL, TUNNEL_KEY[0], f"sudo chmod 600 {TUNNEL}")
                + " && "
                + ssh_forward("lab-tunnel", TUNNEL, "-L 127.0.0.1:9001:127.0.0.1:8000", 9001)
                + " && printf '#!/bin/sh\\nexit 101\\n' | sudo tee /usr/sbin/policy-rc.d "
                ">/dev/null && sudo chmod +x /usr/sbin/policy-rc.d && "  # port 80 is HAProxy's
                "sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx-light >/dev/null; "
                "sudo rm -f /usr/sbin/policy-rc.d /etc/nginx/sites-enabled/default && "
                + put(
                    "/etc/nginx/conf.d/tunnel.conf",
                    "server { listen 9000; location / { proxy_pass http://127.0.0.1:9001; } }\n",
                    "sudo systemctl restart nginx",
                ),
            ),
        ),
        fail=("app.server",),
        not_run=needing("app.server"),
        evidence={"app.server": "web-01: lb-01's {lb}:9000 (nginx) relays the application"},
        undo=(
            (
                "lb-01",
                "sudo systemctl stop lab-tunnel; sudo rm -f /root/.ssh/lab-tunnel; "
                "sudo DEBIAN_FRONTEND=noninteractive apt-get purge -y -q nginx-light nginx-common "
                ">/dev/null; sudo rm -rf /etc/nginx",
            ),
            (
                "web-01",
                "sudo rm -f /etc/ssh/sshd_config.d/10-tunnel.conf /tmp/lab-tunnel.pub; "
                "sudo sed -i /lab-tunnel/d /root/.ssh/authorized_keys; sudo systemctl reload ssh",
            ),
        ),
    ),
    Variant(  # gunicorn on every address, but a firewall keeps port 8000 from everyone outside
        "the-application-on-every-address-behind-a-firewall",
        (
            (
                "web-01",
                "sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q iptables >/dev/null "
                "&& sudo /usr/sbin/iptables -I INPUT -p tcp --dport 8000 ! -i lo -j DROP "
                "&& sudo /usr/sbin/ip6tables -I INPUT -p tcp --dport 8000 ! -i lo -j DROP && "
                + sed(UNIT, "'s/--bind 127.0.0.1:8000/--bind 0.0.0.0:8000/'", RESTART_APP),
            ),
        ),
        evidence={
            "app.server": "web-01: gunicorn on 0.0.0.0:8000, where nothing outside the host "
            "reaches it (asked from this machine, lb-01, web-02)"
        },
        undo=(
            (
                "web-01",
                "sudo /usr/sbin/iptables -D INPUT -p tcp --dport 8000 ! -i lo -j DROP; "
                "sudo /usr/sbin/ip6tables -D INPUT -p tcp --dport 8000 ! -i lo -j DROP",
            ),
        ),
        restore=("app",),
    ),
    Variant(  # the same through a second server of Nginx's own
        "the-application-relayed-to-the-network-by-a-second-nginx-server",
        (("web-02", put("/etc/nginx/conf.d/relay.conf", RELAY_SITE, RELOAD_NGINX)),),
        fail=("app.server",),
        not_run=needing("app.server"),
        evidence={"app.server": "web-02: {web2}:8080 (nginx) relays the application"},
        undo=(("web-02", f"sudo rm -f /etc/nginx/conf.d/relay.conf && {RELOAD_NGINX}"),),
    ),
    Variant(  # the same for one server name only, as Nginx's configuration says
        "the-application-relayed-to-the-network-for-one-server-name-by-a-second-nginx-server",
        (("web-01", put("/etc/nginx/conf.d/relay.conf", NAMED_RELAY_SITE, RELOAD_NGINX)),),
        fail=("app.server",),
        not_run=needing("app.server"),
        evidence={
            "app.server": "web-01: {web1}:8082 (nginx) relays the application to the network: "
            "Nginx passes requests there to it (proxy_pass http://127.0.0.1:8000, server "
            "secret.lan)"
        },
        undo=(("web-01", f"sudo rm -f /etc/nginx/conf.d/relay.conf && {RELOAD_NGINX}"),),
    ),
    Variant(  # the same under a path a rewrite takes away: no request the grader makes
        "the-application-relayed-to-the-network-behind-a-rewrite-by-a-second-nginx-server",
        (("web-01", put("/etc/nginx/conf.d/relay.conf", REWRITING_RELAY_SITE, RELOAD_NGINX)),),
        fail=("app.server",),
        not_run=needing("app.server"),
        evidence={"app.server": "web-01: {web1}:8083 (nginx) relays the application"},
        undo=(("web-01", f"sudo rm -f /etc/nginx/conf.d/relay.conf && {RELOAD_NGINX}"),),
    ),
    Variant(  # the same over TLS, with a JSON decoy for plain HTTP (error 497)
        "the-application-relayed-to-the-network-over-tls-behind-a-decoy-by-a-second-nginx-server",
        (
            (
                "web-01",
                SELF_SIGNED
                + " && "
                + put("/etc/nginx/conf.d/relay.conf", TLS_DECOY_SITE, RELOAD_NGINX),
            ),
        ),
        fail=("app.server",),
        not_run=needing("app.server"),
        evidence={"app.server": "web-01: {web1}:8444 (nginx) relays the application"},
        undo=(
            (
                "web-01",
                "sudo rm -f /etc/nginx/conf.d/relay.conf /etc/nginx/relay.pem "
                f"/etc/nginx/relay-key.pem && {RELOAD_NGINX}",
            ),
        ),
    ),
    Variant(  # the same for one path prefix only: /app/api/status is /api/status there
        "the-application-relayed-to-the-network-under-a-path-by-a-second-nginx-server",
        (("web-02", put("/etc/nginx/conf.d/relay.conf", PREFIX_RELAY_SITE, RELOAD_NGINX)),),
        fail=("app.server",),
        not_run=needing("app.server"),
        evidence={"app.server": "web-02: {web2}:8081 (nginx) relays the application"},
        undo=(("web-02", f"sudo rm -f /etc/nginx/conf.d/relay.conf && {RELOAD_NGINX}"),),
    ),
    Variant(  # the checks that confirm requests in the access logs, from what is left
        "access-log-off-on-one-web-server",
        (("web-02", sed(SITE, "'/server_name/a access_log off;'", RELOAD_NGINX)),),
        checks=("lb.round-robin", "http.www"),
        restore=("web",),
    ),
    Variant(
        "haproxy-fakes-round-robin-with-headers",
        (
            (
                "lb-01",
                put(
                    "/tmp/fake-rr.cfg",
                    FAKE_ROUND_ROBIN,
                    f"sudo sed -i '/^backend web/r /tmp/fake-rr.cfg' {HAPROXY} && {RELOAD_LB}",
                ),
            ),
            ("web-02", sed(SITE, "'/server_name/a access_log off;'", RELOAD_NGINX)),
        ),
        fail=("lb.round-robin", "lb.active-active"),
        either=("http.www",),
        evidence={  # the old grader saw it in the logs (8 logged by web-01, 4 answers named it)
            "lb.round-robin": "picks the server itself for some requests (`use-server web-01 if "
        },
        restore=("lb", "web"),
    ),
    Variant(
        "haproxy-round-robin-only-for-requests-that-look-like-a-script",
        (("lb-01", GRADER_GETS_ROUND_ROBIN),),
        fail=("lb.round-robin", "lb.active-active"),
        evidence={"lb.active-active": "simultaneous requests were all served by"},
        restore=("lb",),
    ),
    Variant(  # the old grader judged the first backend of each server only
        "haproxy-round-robin-only-for-requests-without-a-cookie",
        (("lb-01", COOKIE_LESS_GET_ROUND_ROBIN),),
        fail=("lb.round-robin",),
        evidence={"lb.round-robin": "HAProxy's backend sticky balances with `balance source`"},
        restore=("lb",),
    ),
    Variant(
        "haproxy-picks-web-01-for-requests-with-a-cookie",
        (("lb-01", COOKIES_GO_TO_WEB_01),),
        fail=("lb.round-robin",),
        evidence={"lb.round-robin": "picks the server itself for some requests (`use-server"},
        restore=("lb",),
    ),
    Variant(  # the old grader sent Sec-Fetch-* over http, which no browser does
        "haproxy-round-robin-only-for-requests-with-fetch-metadata",
        (("lb-01", FETCH_METADATA_GETS_ROUND_ROBIN),),
        fail=("lb.round-robin", "lb.active-active"),
        either=("http.www",),
        evidence={"lb.round-robin": "HAProxy's backend visitors balances with `balance source`"},
        restore=("lb",),
    ),
    Variant(  # a SOCKS4 server answers the checks: web-02's Nginx may stop, it stays UP
        "health-checks-answered-by-a-socks-server",
        (("lb-01", put("/tmp/lab-socks.pl", SOCKS_ANSWERS_CHECKS, CHECKS_THROUGH_A_SOCKS_SERVER)),),
        fail=("lb.health-checks",),
        evidence={
            "lb.health-checks": "web-02: its health checks go through 127.0.0.1:1080 "
            "(`check-via-socks4`)"
        },
        undo=(("lb-01", "sudo systemctl stop lab-socks"),),
        restore=("lb",),
    ),
    Variant(  # what runs is not what the file says (its mtime set back)
        "haproxy-runs-a-configuration-the-file-no-longer-holds",
        (("lb-01", LOADED_THEN_PUT_BACK),),
        fail=("lb.haproxy",),
        not_run=needing("lb.haproxy"),
        evidence={"lb.haproxy": "HAProxy has been running since"},
        restore=("lb",),
    ),
    Variant(  # a wrapper could answer for the client the grader runs: it is not the distribution's
        "the-database-client-diverted-by-hand",
        (
            (
                "web-02",
                "sudo dpkg-divert --local --rename --divert /usr/bin/mariadb.real --add "
                "/usr/bin/mariadb && sudo ln -s mariadb.real /usr/bin/mariadb",
            ),
        ),
        fail=("servers.reachable",),
        evidence={
            "servers.reachable": "web-02: the grader cannot trust the programs it runs there: "
            "/usr/bin/mariadb is diverted (local diversion of /usr/bin/mariadb to "
            "/usr/bin/mariadb.real)"
        },
        undo=(
            (
                "web-02",
                "sudo rm -f /usr/bin/mariadb && sudo dpkg-divert --rename --remove "
                "/usr/bin/mariadb",
            ),
        ),
    ),
    Variant(  # web-02's Nginx may stop: sshd still answers the checks
        "health-checks-that-connect-to-ssh",
        (("lb-01", CHECKS_THAT_CONNECT_TO_SSH),),
        fail=("lb.health-checks",),
        evidence={"lb.health-checks": "web-02: its health checks connect to {web2}:22"},
        restore=("lb",),
    ),
    Variant(  # the old grader asked the web servers directly only
        "nginx-serves-visitors-through-the-balancer-from-the-application",
        tuple((host, THROUGH_THE_BALANCER_GET_THE_APPLICATION) for host in WEB),
        fail=("web.static",),
        either=("http.www",),
        evidence={
            "web.static": "Nginx hands / to another server (location = /: proxy_pass "
            "http://127.0.0.1:8000 (in if ($http_x_forwarded_for)))"
        },
        restore=("web",),
    ),
    Variant(  # no proxy_pass where the page is: a root the balancer's requests do not find
        "nginx-serves-visitors-through-the-balancer-from-another-root",
        (("web-01", ANOTHER_ROOT_THROUGH_THE_BALANCER),),
        fail=("web.static",),
        either=("http.www", "lb.round-robin", "lb.active-active"),
        evidence={"web.static": "web-01: / through the load balancer is not what Nginx sends"},
        restore=("web",),
    ),
    Variant(  # the old grader never sent a cookie
        "nginx-serves-returning-visitors-from-the-application",
        tuple((host, RETURNING_GET_THE_APPLICATION) for host in WEB),
        fail=("web.static", "web.served-by"),
        not_run=needing("web.served-by"),
        either=("http.www",),
        evidence={
            "web.static": "Nginx hands /static/style.css to another server (location /static/: "
            "proxy_pass http://127.0.0.1:8000 (in if ($http_cookie)))",
            "web.served-by": "web-02 (hostname web-02): / as a returning visitor sent "
            "X-Served-By: web-01",
        },
        restore=("web",),
    ),
    Variant(
        "nginx-serves-the-page-from-disk-only-to-a-script",
        tuple((host, put(SITE, GRADER_GETS_THE_FILE_SITE, RELOAD_NGINX)) for host in WEB),
        fail=("web.static",),
        evidence={"web.static": "Nginx hands / to another server (location = /: proxy_pass "},
        restore=("web",),
    ),
    Variant(
        "a-wrapper-nginx-hides-a-broken-configuration",
        (
            (
                "web-01",
                "sudo /usr/sbin/nginx -T 2>/dev/null | sudo tee /var/tmp/nginx-T >/dev/null && "
                + wrapper("/usr/local/sbin/nginx", FAKE_NGINX)
                + f" && echo 'this is not nginx;' | sudo tee -a {SITE} >/dev/null",
            ),
        ),
        fail=("web.nginx",),
        not_run=needing("web.nginx"),
        evidence={"web.nginx": "web-01: nginx -t fails on the configuration on disk"},
        undo=(("web-01", "sudo rm -f /usr/local/sbin/nginx /var/tmp/nginx-T"),),
        restore=("web",),
    ),
    Variant(  # ss names a process by its file: a script called nginx is "nginx" there
        "a-python-server-named-nginx",
        (
            (
                "web-02",
                wrapper(
                    "/usr/local/sbin/nginx",
                    FAKE_NGINX_SERVER,
                    "sudo systemctl stop nginx && "
                    "sudo systemd-run --unit lab-fake-nginx /usr/local/sbin/nginx && sleep 1",
                ),
            ),
        ),
        fail=("web.nginx", "lb.health-checks"),  # it has no /healthz: HAProxy sees it DOWN
        not_run=needing("web.nginx"),
        evidence={"web.nginx": "web-02: port 80 belongs to python3"},
        undo=(
            (
                "web-02",
                "sudo systemctl stop lab-fake-nginx; sudo rm -f /usr/local/sbin/nginx; "
                "sudo systemctl start nginx",
            ),
        ),
    ),
    Variant(  # the packaged interpreter's own bytes under another name: no script to see
        "an-interpreter-copied-as-nginx",
        (
            (
                "web-02",
                'sudo mkdir -p /opt/fake && sudo cp "$(readlink -f /usr/bin/python3)" '
                "/opt/fake/nginx",
            ),
            (
                "web-02",
                put(
                    "/opt/fake/fake.py",
                    "import functools, http.server\n"
                    "class Handler(http.server.SimpleHTTPRequestHandler):\n"
                    '    server_version, sys_version = "nginx/1.22.1", ""\n'
                    "    def end_headers(self):\n"
                    '        self.send_header("X-Served-By", "web-02")\n'
                    "        super().end_headers()\n"
                    'static = "/srv/webstack/app/static"\n'
                    "http.server.ThreadingHTTPServer(\n"
                    '    ("", 80), functools.partial(Handler, directory=static)\n'
                    ").serve_forever()\n",
                    "sudo systemctl stop nginx && sudo systemd-run --unit lab-copied-nginx "
                    "/opt/fake/nginx /opt/fake/fake.py && sleep 1",
                ),
            ),
        ),
        fail=("web.nginx", "lb.health-checks"),  # it has no /healthz: HAProxy sees it DOWN
        not_run=needing("web.nginx"),
        evidence={
            "web.nginx": "web-02: port 80 belongs to nginx (/opt/fake/nginx: from no package, "
            "and not a build of nginx"
        },
        undo=(
            (
                "web-02",
                "sudo systemctl stop lab-copied-nginx; sudo rm -rf /opt/fake; "
                "sudo systemctl start nginx",
            ),
        ),
    ),
    Variant(
        "a-wrapper-mysql-fakes-a-read-only-replica",
        (
            ("web-02", "sudo mysql -e 'SET GLOBAL read_only = OFF'"),
            ("web-02", wrapper("/usr/local/bin/mysql", FAKE_MYSQL)),
        ),
        fail=("db.replica-read-only",),
        evidence={"db.replica-read-only": "web-02 accepted a write from an ordinary account"},
        undo=(
            ("web-02", "sudo rm -f /usr/local/bin/mysql"),
            ("web-02", "sudo /usr/bin/mysql -e 'SET GLOBAL read_only = ON'"),
        ),
    ),
    Variant(
        "a-wrapper-hostname-hides-the-real-one",
        (
            (
                "web-02",
                wrapper(
                    "/usr/local/bin/hostname", FAKE_HOSTNAME, "sudo /usr/bin/hostname imposter"
                ),
            ),
        ),
        # nginx started as web-02 and still sends that name: no host of the lab is called so;
        # http.www fails only when its request lands on web-02 (as with the sabotage)
        fail=("servers.reachable", "web.served-by"),
        not_run=needing("web.served-by"),
        either=("http.www",),
        evidence={
            "servers.reachable": "web-02 calls itself 'imposter'",
            "web.served-by": "web-02 (hostname imposter)",
        },
        undo=(("web-02", "sudo /usr/bin/hostname web-02 && sudo rm -f /usr/local/bin/hostname"),),
    ),
    Variant(
        "static-files-handed-to-another-server",
        (
            (
                "web-01",
                SERVE_LOCAL.format(name="lab-static", port=9000, root="/srv/webstack/app/static"),
            ),
            ("web-01", put(SITE, PROXIED_STATIC_SITE, RELOAD_NGINX)),
        ),
        fail=("web.static",),
        evidence={"web.static": "hands / to another server"},
        undo=(("web-01", "sudo systemctl stop lab-static"),),
        restore=("web",),
    ),
    Variant(
        "health-checks-that-never-take-a-server-out",
        (
            (
                "lb-01",
                sed(
                    HAPROXY,
                    "'s/default-server inter 1s fall 2 rise 2/"
                    "default-server inter 1s fall 100000 rise 1/'",
                    RESTART_HAPROXY,
                ),
            ),
        ),
        fail=("lb.health-checks",),
        evidence={"lb.health-checks": "before a dead server leaves the rotation"},
        restore=("lb",),
    ),
    Variant(
        "leastconn-running-roundrobin-on-disk",
        (
            (
                "lb-01",
                sed(
                    HAPROXY,
                    "'s/balance roundrobin/balance leastconn/'",
                    "sudo systemctl reload haproxy && sleep 1 && sudo sed -i "
                    "'s/balance leastconn/balance roundrobin/' " + HAPROXY,
                ),
            ),
        ),
        fail=("lb.haproxy",),  # what runs is older than the file: the file cannot be vouched for
        not_run=needing("lb.haproxy"),
        evidence={"lb.haproxy": "before haproxy.cfg changed at"},
        undo=(("lb-01", RELOAD_LB),),  # the file on disk is the reference already
        restore=("lb",),
    ),
    # HAProxy's reading of its configuration, not the grader's: defaults sections, `from`,
    # server-template, health checks aimed elsewhere, a huge file, warnings
    Variant(
        "a-second-defaults-section-resets-balance-source-no-stats-socket",
        (
            (
                "lb-01",
                sed(
                    HAPROXY,
                    "-e '/stats socket/d' -e '/balance roundrobin/d' -e 's/^defaults$/"
                    + NEW_DEFAULTS.format(name="", balance="source")
                    + "\\n\\ndefaults/'",
                    RESTART_HAPROXY,
                ),
            ),
        ),
        evidence={"lb.round-robin": "alternated", "lb.health-checks": "no stats socket, so tried"},
        restore=("lb",),
    ),
    Variant(
        "named-defaults-from-and-server-template-no-stats-socket",
        (
            (
                "lb-01",
                sed(
                    HAPROXY,
                    "-e '/stats socket/d' -e '/balance roundrobin/d' "
                    "-e 's/^defaults$/defaults rr\\n    balance roundrobin/' "
                    "-e 's/^frontend www$/defaults other from rr\\n    balance source\\n\\n"
                    "frontend www/' -e 's/^backend web$/backend web from rr/' "
                    "-e 's/server \\(web-0[12]\\) \\([^ ]*\\) check/"
                    "server-template \\1- 1 \\2 check/'",
                    RESTART_HAPROXY,
                ),
            ),
        ),
        evidence={"lb.round-robin": "alternated", "lb.health-checks": "no stats socket, so tried"},
        restore=("lb",),
    ),
    Variant(
        "leastconn-through-named-defaults-and-from-no-stats-socket",
        (
            (
                "lb-01",
                sed(
                    HAPROXY,
                    "-e '/stats socket/d' -e '/balance roundrobin/d' "
                    "-e 's/^defaults$/defaults base\\n    balance leastconn/' "
                    "-e 's/^frontend www$/defaults other from base\\n    balance roundrobin"
                    "\\n\\nfrontend www/' -e 's/^backend web$/backend web from base/'",
                    RESTART_HAPROXY,
                ),
            ),
        ),
        fail=("lb.round-robin",),
        evidence={"lb.round-robin": "balance leastconn"},
        restore=("lb",),
    ),
    Variant(
        "web-02-health-checked-at-web-01",
        (
            (
                "lb-01",
                sed(
                    HAPROXY,
                    "'s/\\(server web-02 [^ ]*\\) check/\\1 check addr {web1} port 80/'",
                    RELOAD_LB,
                ),
            ),
        ),
        fail=("lb.health-checks",),
        evidence={"lb.health-checks": "web-02: its health checks go to {web1}:80"},
        restore=("lb",),
    ),
    Variant(
        "a-10-mb-haproxy-cfg",
        (
            (
                "lb-01",
                "yes '# a comment line, one of many, that makes the file ten megabytes long; "
                f"HAProxy skips it quickly' | head -n 100000 | sudo tee -a {HAPROXY} "
                f">/dev/null && {RELOAD_LB}",
            ),
        ),
        checks=("lb.haproxy",),
        restore=("lb",),
    ),
    Variant(
        "haproxy-c-warns",
        (
            (
                "lb-01",
                f"printf '\\nfrontend tcpfront\\n    mode tcp\\n    bind 127.0.0.1:8999\\n"
                f"    redirect prefix http://www.foobar.com code 301\\n"
                f"    default_backend web\\n' | sudo tee -a {HAPROXY} >/dev/null && {RELOAD_LB}",
            ),
        ),
        evidence={"lb.haproxy": "'redirect' rules ignored for frontend 'tcpfront'"},
        restore=("lb",),
    ),
    Variant(  # X-Served-By then says web-02.foobar.com: the same host, for every check
        "a-web-server-named-by-its-fqdn",
        (("web-02", "sudo hostname web-02.foobar.com && sudo systemctl restart nginx"),),
        evidence={"web.served-by": "X-Served-By web-02.foobar.com", "lb.round-robin": "alternated"},
        undo=(("web-02", "sudo hostname web-02 && sudo systemctl restart nginx"),),
    ),
    Variant(
        "a-stray-zone-file-holds-www",  # a fake: the zone NSD serves has a wildcard only
        (
            (
                "lb-01",
                f"sudo cp {ZONE} {ZONE}.bak && "
                + sed(ZONE, "'s/^www .*/* IN A {lb}/'", "sudo systemctl restart nsd"),
            ),
        ),
        fail=("dns.www",),
        not_run=("http.www",),
        evidence={"dns.www": "wildcard"},
        undo=(("lb-01", f"sudo rm -f {ZONE}.bak"),),
        restore=("dns",),
    ),
    Variant(
        "www-in-capitals-beside-a-wildcard-in-a-zone-outside-etc-nsd",
        (
            (
                "lb-01",
                sed(
                    ZONE,
                    "'s/^www .*/WWW IN A {lb}\\n* IN A {lb}/'",
                    f"sudo mkdir -p /srv/dns && sudo mv {ZONE} /srv/dns/foobar.com.zone && "
                    "sudo sed -i 's|zonefile: .*|zonefile: \"/srv/dns/foobar.com.zone\"|' "
                    "/etc/nsd/nsd.conf && sudo systemctl restart nsd",
                ),
            ),
        ),
        evidence={"dns.www": "www.foobar.com. A {lb}"},
        undo=(("lb-01", "sudo rm -rf /srv/dns"),),
        restore=("dns",),
    ),
    Variant(
        "a-wildcard-instead-of-www",
        (("lb-01", sed(ZONE, "'s/^www .*/* IN A {lb}/'", "sudo systemctl restart nsd")),),
        fail=("dns.www",),
        not_run=("http.www",),
        evidence={"dns.www": "wildcard"},
        restore=("dns",),
    ),
    Variant(  # Debian's default site takes every other name; HAProxy's check names the site
        "a-site-named-with-a-leading-dot-and-its-own-log-beside-the-default-site",
        (
            *(
                (
                    host,
                    sed(
                        SITE,
                        "-e 's/listen 80 default_server;/listen 80;/' -e 's#server_name .*;#"
                        "server_name .foobar.com;\\n    access_log /var/log/nginx/foobar.log;#'",
                        "sudo ln -sf /etc/nginx/sites-available/default "
                        f"/etc/nginx/sites-enabled/default && {RELOAD_NGINX}",
                    ),
                )
                for host in WEB
            ),
            (
                "lb-01",
                sed(
                    HAPROXY,
                    "'s#^    option httpchk GET /healthz#    option httpchk\\n    http-check send "
                    "meth GET uri /healthz ver HTTP/1.1 hdr Host www.foobar.com#'",
                    RELOAD_LB,
                ),
            ),
        ),
        evidence={"lb.round-robin": "the web servers' own Nginx logs agree"},
        restore=("web", "lb"),
    ),
    Variant(  # each request written to two files on one server, to syslog only on the other
        "two-access-logs-on-one-web-server-and-syslog-on-the-other",
        (
            (
                "web-01",
                sed(
                    SITE,
                    "'/server_name/a access_log /var/log/nginx/site.log;\\n"
                    "access_log /var/log/nginx/copy.log combined;'",
                    RELOAD_NGINX,
                ),
            ),
            (
                "web-02",
                sed(SITE, "'/server_name/a access_log syslog:server=unix:/dev/log;'", RELOAD_NGINX),
            ),
        ),
        evidence={"lb.round-robin": "not confirmed by web-02's Nginx"},
        restore=("web",),
    ),
]


def expected(variant: Variant) -> dict[str, str]:
    base = [c for c, cls in CATALOGUE.items() if cls.section in BASE_SECTIONS]
    want = dict.fromkeys(base, "pass")  # a plain `lab check` grades the base design
    want.update(dict.fromkeys(variant.not_run, "not-run"))
    want.update(dict.fromkeys(variant.fail, "fail"))
    return want


def case_of(variant: Variant) -> Case:
    """The variant as a case: `lab check` on the checks it names and every check that needs
    them, each with the status expected(variant) gives it (either: pass or fail)."""
    run = graded({*variant.fail, *variant.either, *variant.evidence, *variant.checks})
    want = {
        c: frozenset({"pass", "fail"} if c in variant.either else {expected(variant)[c]})
        for c in shown(run)
    }
    want.update({c: blocked(c, set(variant.fail)) for c in variant.not_run if c in want})
    return Case(variant.name, "fake" if variant.fail else "correct build", run, want)


def fill(lab, text: str) -> str:
    """text with {lb}, {web1}, {web2}, {net} (the lab network as MySQL writes it), {relay} and
    {relay2} (free addresses of the lab network, .77 and .78: one per variant that uses one, as
    the lab's neighbours keep the link address they learnt for each) filled in."""
    prefix = lab.address("web-01").rsplit(".", 1)[0]
    values = {
        "{lb}": lab.address("lb-01"),
        "{web1}": lab.address("web-01"),
        "{web2}": lab.address("web-02"),
        "{net}": f"{prefix}.0/255.255.255.0",
        "{relay}": f"{prefix}.77",
        "{relay2}": f"{prefix}.78",
    }
    for key, value in values.items():
        text = text.replace(key, value)
    return text


def settle(lab, case: Case, phase: str = "graded", timeout: float = 20.0) -> dict:
    """`lab check` on the case's checks until the report agrees with the case in this phase
    (services take a moment), or the last report."""
    deadline = time.monotonic() + timeout
    while True:
        report = check_json(lab, *case.targets)
        if agrees(case, statuses(report), phase) or time.monotonic() > deadline:
            return report
        time.sleep(1)


@pytest.mark.long
@pytest.mark.parametrize("variant", VARIANTS, ids=[v.name for v in VARIANTS])
def test_the_grader_on_a_variant(variants_lab, variant):
    """The checks the variant is about, and what needs them, give the verdicts expected; once
    the reference is back, every one of them passes again."""
    lab = variants_lab
    case = case_of(variant)
    with recording(case) as given:
        try:
            for host, shell in variant.steps:
                lab.ssh(host, fill(lab, shell))
            given["graded"] = report = settle(lab, case)
            assert agrees(case, statuses(report)), off(case, report)
            evidence = {c["id"]: c["evidence"] for c in report["checks"]}
            for check_id, words in variant.evidence.items():
                assert fill(lab, words) in evidence[check_id], evidence[check_id]
        finally:
            for host, shell in variant.undo:
                lab.ssh(host, fill(lab, shell), check=False)
            if variant.restore:
                lab("provision", *variant.restore)
        given["repaired"] = report = settle(lab, case, "repaired")
    assert agrees(case, statuses(report), "repaired"), off(case, report, "repaired")


FORBIDDING_SITE = """server {
    listen 80 default_server;
    add_header X-Served-By $hostname always;
    location / { return 403; }
    location /api/ { return 404; }
}
"""


def test_served_by_is_judged_on_a_site_that_answers_403_and_404(variants_lab):
    """A student's site that answers / with 403 and /api/status with 404, each with the header
    (`always`): the header names the server; without `always` no response names it."""
    lab = variants_lab
    checks = ("web.nginx", "web.served-by")
    try:
        for host in ("web-01", "web-02"):
            lab.ssh(host, put(SITE, FORBIDDING_SITE, RELOAD_NGINX))
        named = by_id(check_json(lab, *checks))["web.served-by"]
        for host in ("web-01", "web-02"):
            lab.ssh(host, sed(SITE, "'s/ always;/;/'", RELOAD_NGINX))
        unnamed = by_id(check_json(lab, *checks))["web.served-by"]
    finally:
        lab("provision", "web")
    assert named["status"] == "pass", named["evidence"]
    assert (
        "web-01: X-Served-By web-01 on / (HTTP 403), /api/status (HTTP 404)" in (named["evidence"])
    )
    assert unnamed["status"] == "fail", unnamed["evidence"]
    assert "web-02: no page answered and no response carried X-Served-By" in unnamed["evidence"]
    back = passing("web.nginx")
    assert agrees(back, statuses(settle(lab, back)))


def _tarball(folder: Path) -> str:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:gz") as tar:
        tar.add(folder, arcname=folder.name)
    return base64.b64encode(data.getvalue()).decode()


def test_another_code_base_behind_a_unix_socket_and_a_named_virtual_host(variants_lab):
    """docs/app-contract.md met by other code: plain WSGI, own database, unix socket, settings
    in a file, `server_name` site beside Debian's default site, no `always` on the header."""
    lab = variants_lab
    read, write = secrets.token_hex(12), secrets.token_hex(12)
    env = (
        f"GUEST_READ_PASSWORD={read} GUEST_WRITE_PASSWORD={write} "
        f"GUEST_PRIMARY={lab.address('web-01')}"
    )
    unpack = f"echo {_tarball(VARIANTS_DIR / 'altapp')} | base64 -d | tar -xz -C /tmp"
    scripts = {
        name: (VARIANTS_DIR / name).read_text()
        for name in ("altapp-db.sh", "altapp-deploy.sh", "altapp-lb.sh")
    }

    def run_script(host, name, args=""):
        encoded = base64.b64encode(scripts[name].encode()).decode()
        lab.ssh(
            host, f"echo {encoded} | base64 -d > /tmp/{name} && sudo {env} sh /tmp/{name} {args}"
        )

    try:
        run_script("web-01", "altapp-db.sh")
        for host in ("web-01", "web-02"):
            lab.ssh(host, unpack)
            lab.ssh(
                host,
                "sudo ln -sf /etc/nginx/sites-available/default /etc/nginx/sites-enabled/default",
            )
            run_script(host, "altapp-deploy.sh", "/tmp/altapp")
        run_script("lb-01", "altapp-lb.sh")
        whole = passing()  # another code base, site and database: a plain `lab check`
        report = settle(lab, whole)
        evidence = {c["id"]: c["evidence"] for c in report["checks"]}
        assert agrees(whole, statuses(report)), off(whole, report)
        assert "unix:/run/guest/guest.sock" in evidence["web.reverse-proxy"]
        assert "gb.posts" in evidence["db.replication"]
        assert "guest.py" in evidence["files.code-base"]
    finally:
        for host in ("web-01", "web-02"):
            lab.ssh(
                host,
                "sudo systemctl disable --now guest; sudo rm -f /etc/nginx/conf.d/guest.conf",
                check=False,
            )
        lab("provision", "app", "web", "lb")
    back = passing("web.nginx", "lb.haproxy")
    assert agrees(back, statuses(settle(lab, back)))


def test_one_host_down_fails_only_what_needs_it(variants_lab):
    lab = variants_lab
    lab.ssh("web-02", "sudo systemctl stop ssh.socket ssh 2>/dev/null; true", check=False)
    try:
        found = statuses(check_json(lab))
        assert found["servers.reachable"] == "fail"
        for check_id in ("lb.haproxy", "lb.health-checks", "dns.www", "http.www"):
            assert found[check_id] == "pass", (check_id, found)
        assert found["web.nginx"] == "fail" and found["web.static"] == "not-run"
    finally:
        subprocess.run(
            ["lxc-attach", "-P", "/var/lib/webstack-lab/containers", "-n", f"{lab.name}-web-02",
             "--", "systemctl", "start", "ssh"], check=True)  # fmt: skip
    assert lab.ssh("web-02", "hostname").strip() == "web-02"


IN_TWO_SECONDS = "--on-active=2 --timer-property=AccuracySec=100ms"  # timers are lax by default


def test_no_web_server_up_fails_lb_haproxy_and_servers_back_a_moment_ago_pass(variants_lab):
    lab = variants_lab
    for host in ("web-01", "web-02"):
        lab.ssh(host, "sudo systemctl stop nginx")
    try:
        wait_until(lambda: haproxy_servers_down(lab) == 2, 30)
        report = by_id(check_json(lab, "lb.haproxy"))["lb.haproxy"]
        assert report["status"] == "fail" and "no server could answer" in report["evidence"]
        # started again 2 s from now: the check's first request still finds no server, and
        # HAProxy sees them back about 2 s later (rise 2, inter 1s): the grader waits for that
        for host in ("web-01", "web-02"):
            lab.ssh(host, f"sudo systemd-run --quiet {IN_TWO_SECONDS} systemctl start nginx")
        again = by_id(check_json(lab, "lb.haproxy"))["lb.haproxy"]
        assert again["status"] == "pass", again["evidence"]
    finally:
        for host in ("web-01", "web-02"):
            lab.ssh(host, "sudo systemctl start nginx")


def test_a_stopped_database_is_not_a_load_balancer_failure(variants_lab):
    lab = variants_lab
    lab.ssh("web-02", "sudo systemctl stop mariadb")
    balancer = ("lb.haproxy", "lb.round-robin", "lb.active-active", "lb.health-checks")
    try:
        found = statuses(check_json(lab, "db.servers", *balancer))
        assert found["db.servers"] == "fail"
        for check_id in balancer:
            assert found[check_id] == "pass", (check_id, found)
    finally:
        lab.ssh("web-02", "sudo systemctl start mariadb")


def test_a_replica_that_does_not_start_is_judged_on_its_journal(variants_lab):
    """A misspelt option in the replica's my.cnf: the evidence is MariaDB's own reason, not the
    client's socket error (the old grader showed only that)."""
    lab = variants_lab
    misspelt = f"echo 'log_eror = /var/log/mysql/error.log' | sudo tee -a {DB_CONF} >/dev/null"
    lab.ssh("web-02", f"{misspelt} && sudo systemctl restart mariadb", check=False)
    try:
        result = by_id(check_json(lab, "db.servers"))["db.servers"]
        assert result["status"] == "fail"
        assert (
            "web-02: the database server does not run (mariadb.service failed): "
            "/usr/sbin/mariadbd: unknown variable 'log_eror=/var/log/mysql/error.log'"
        ) in result["evidence"], result["evidence"]
        assert "Can't connect" not in result["evidence"] and "journalctl" in result["hint"]
    finally:
        lab("provision", "database")
    back = passing("db.servers")
    assert agrees(back, statuses(settle(lab, back)))


GRADER_USERS = (
    "sudo mysql -N -e \"SELECT COUNT(*) FROM mysql.user WHERE user LIKE 'lab\\_check\\_%'\""
)


def test_stale_grader_accounts_are_removed_and_an_interrupt_leaves_none(variants_lab):
    lab = variants_lab
    for host in ("web-01", "web-02"):
        lab.ssh(
            host, "sudo mysql -e \"SET sql_log_bin=0; CREATE USER 'lab_check_stale'@'localhost'\""
        )
    check_json(lab, "db.servers")
    for host in ("web-01", "web-02"):
        assert lab.ssh(host, GRADER_USERS).strip() == "0"
    for delay in (0.6, 0.9, 1.2, 1.5):
        process = subprocess.Popen(
            [sys.executable, "-m", "lab", "check", "database"], env=lab.env(),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
        time.sleep(delay)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
        assert "Traceback" not in err, err
        for host in ("web-01", "web-02"):
            assert lab.ssh(host, GRADER_USERS).strip() == "0", (delay, out, err)
        assert "Slave_SQL_Running: Yes" in lab.ssh(
            "web-02", "sudo mysql -e 'SHOW REPLICA STATUS\\G'"
        )
