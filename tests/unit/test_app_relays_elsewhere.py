"""app.server finds the application relayed where the grader did not look before: by a relay
that speaks TLS only, and on another lab host (a balancer's SSH local forward to a web server's
loopback); a balancer that leads only to the web servers' web ports is not asked.

The TLS relay is a real TLS server on this machine's loopback, answering as the application."""

from __future__ import annotations

import datetime
import ipaddress
import json
import socket
import ssl
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lab.core import ca
from lab.core.topology import parse, variant
from lab.facts import haproxy, nginx, proc, ss
from lab.observe import live, probes
from lab.observe.live import THIS_MACHINE, LiveLab

STATUS = {"host": "web-01", "pid": 1092, "request_id": "r1"}
HAPROXY = {70: "/usr/sbin/haproxy", 71: "/usr/sbin/haproxy"}
LB_LISTENING = """\
LISTEN 0 4096 0.0.0.0:80 0.0.0.0:* users:(("haproxy",pid=71,fd=7))
LISTEN 0 128 0.0.0.0:22 0.0.0.0:* users:(("sshd",pid=55,fd=3))
LISTEN 0 128 0.0.0.0:8080 0.0.0.0:* users:(("ssh",pid=900,fd=4))
"""


class Application(BaseHTTPRequestHandler):
    def version_string(self):  # the Server header, as the application server sends it
        return "gunicorn"

    def do_GET(self):
        body = json.dumps(STATUS).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def untrusted_context(tmp_path) -> ssl.SSLContext:
    """A TLS server's context for 127.0.0.1, with a certificate of a CA no one trusts."""
    when = datetime.datetime.now(datetime.UTC)
    authority = ca.make_authority("unit", "foobar.com", ipaddress.ip_network("127.0.0.0/8"), when)
    cert, key = ca.issue(authority, ["127.0.0.1"], when)
    (tmp_path / "cert.pem").write_bytes(cert)
    (tmp_path / "key.pem").write_bytes(key)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    return context


@pytest.fixture
def tls_relay(tmp_path):
    """The application behind a TLS-only listener on loopback, with a certificate no one
    trusts: its port."""
    context = untrusted_context(tmp_path)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Application)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def sniffing_relay(tmp_path):
    """One port, two answers, each 1.5 s late: the application over TLS, a JSON decoy to plain
    HTTP (a relay that looks at the first byte, as some do): its port."""
    context = untrusted_context(tmp_path)

    def serve(conn: socket.socket) -> None:
        conn.settimeout(5)
        with conn:
            body = {"status": "ok"}
            threading.Event().wait(1.5)  # longer than a connection takes: the handshake waits
            if conn.recv(1, socket.MSG_PEEK) == b"\x16":  # a TLS handshake
                conn = context.wrap_socket(conn, server_side=True)
                body = STATUS
            conn.recv(4096)
            text = json.dumps(body).encode()
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
            conn.sendall(b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(text), text))

    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(0.2)
        done = threading.Event()

        def accept() -> None:
            while not done.is_set():
                try:
                    threading.Thread(target=serve, args=(listener.accept()[0],)).start()
                except TimeoutError:
                    continue

        acceptor = threading.Thread(target=accept)
        acceptor.start()
        yield listener.getsockname()[1]
        done.set()
        acceptor.join()


@pytest.fixture
def lab(monkeypatch):
    """A lab whose host lb-01 connects for the grader through a stand-in for its SSH server's
    forward: like it, each forward takes one connection (to the port given as its address)."""
    lab = LiveLab(parse(variant("unit-rel", 89)), fleet={"lb-01": "conn"})
    lab.forwards = []

    @contextmanager
    def forwarded(conn, address, port, via, timeout=5):
        lab.forwards.append(port)
        yield f"http://127.0.0.1:{port}"

    monkeypatch.setattr(live, "forwarded", forwarded)
    return lab


def test_a_relay_that_speaks_tls_only_is_asked_again_over_tls_and_answers(lab, tls_relay):
    answer = lab.from_outside("lb-01", "192.168.89.11", tls_relay, "/api/status")
    assert answer == {"from": "lb-01", "status": 200, "json": STATUS, "server": "gunicorn"}
    assert lab.forwards == [tls_relay, tls_relay]  # plain first, then a new forward for TLS
    assert probes.answered_by_application(answer["json"], {1092}, {}) == 1092


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_a_decoy_for_plain_http_does_not_hide_the_application_behind_tls(lab, sniffing_relay):
    answer = lab.from_outside("lb-01", "192.168.89.11", sniffing_relay, "/api/status")
    assert answer["json"] == STATUS and answer["status"] == 200
    assert lab.forwards == [sniffing_relay, sniffing_relay]


def test_a_relay_that_holds_the_answer_back_a_while_is_waited_for(lab):
    """A relay that answers 3 s late still relays (the grader once gave up after 2 s)."""

    class Late(Application):
        def do_GET(self):
            threading.Event().wait(3)
            super().do_GET()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Late)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        answer = lab.from_outside("lb-01", "192.168.89.11", server.server_address[1], "/x")
    finally:
        server.shutdown()
        server.server_close()
    assert answer["json"] == STATUS


def test_a_port_that_answers_neither_gives_the_plain_answer(lab):
    answer = lab.from_outside("lb-01", "192.168.89.11", 9, "/api/status")
    assert answer == {"from": "lb-01", "status": None, "json": None, "server": ""}
    assert lab.forwards == [9, 9]


def test_a_silent_server_is_not_asked_again_over_tls(lab, monkeypatch):
    """A server that waits for more (a DNS server over TCP reading "GET " as a length) keeps
    plain HTTP waiting; a TLS server refuses it at once, so it is no TLS relay."""
    monkeypatch.setattr(live, "OUTSIDE_READ_TIMEOUT", 0.3)
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        answer = lab.from_outside("lb-01", "192.168.89.11", port, "/api/status")
    assert answer == {"from": "lb-01", "status": None, "json": None, "server": ""}
    assert lab.forwards == [port]


def test_plain_http_that_brings_json_is_not_asked_again(lab, monkeypatch):
    asked = []

    class Reply:
        status_code, headers = 200, {}

        def json(self):
            return STATUS

    monkeypatch.setattr(lab, "http", lambda url, **kw: asked.append(url) or Reply())
    assert lab.from_outside("lb-01", "192.168.89.11", 8001, "/api/status")["json"] == STATUS
    assert asked == ["http://127.0.0.1:8001/api/status"]


# -- another lab host's ports ------------------------------------------------------------------
def test_a_balancers_other_ports_are_asked_but_not_those_leading_to_web_servers_alone():
    sockets = ss.parse(LB_LISTENING)
    paths = {**HAPROXY, 55: "/usr/sbin/sshd", 900: "/usr/bin/ssh"}
    asked = probes.relay_candidates(sockets, paths, "192.168.89.10", "", balancing={70, 71})
    assert asked == {("192.168.89.10", 8080): ["ssh"]}  # no port-forward guess: no application
    unvouched = probes.relay_candidates(sockets, paths, "192.168.89.10", "")
    assert set(unvouched) == {("192.168.89.10", 80), ("192.168.89.10", 8080)}


@pytest.mark.parametrize(
    "servers, led",
    [
        ([("192.168.89.11", 80), ("192.168.89.12", 80)], True),
        ([("192.168.89.11", 443)], True),
        ([("192.168.89.11", None)], True),  # the port the request came to
        # another port of a web server's: a relay there may admit the balancer alone, so the
        # balancer's ports are asked (Nginx's answers through them are told by its header)
        ([("192.168.89.11", 8080), ("192.168.89.12", 80)], False),
        ([("192.168.89.11", 80), ("127.0.0.1", 9000)], False),  # a local relay among them
        ([("192.168.89.99", 80)], False),  # not a web server
        ([], False),
        # a sorry server that takes requests only when every web server is down; a disabled one
        ([("192.168.89.11", 80), ("127.0.0.1", 8081, "backup")], True),
        ([("192.168.89.11", 80), ("127.0.0.1", 9000, "disabled")], True),
        ([("127.0.0.1", 9000, "backup")], False),  # a backup alone takes every request
    ],
)
def test_a_balancer_leads_to_web_servers_alone_only_when_every_server_does(servers, led):
    web = {"web-01": "192.168.89.11", "web-02": "192.168.89.12"}
    rows = [
        {
            "port": port,
            "addresses": [address],
            "backup": "backup" in flag,
            "disabled": "disabled" in flag,
        }
        for address, port, *flag in servers
    ]
    assert probes.leads_to_web_servers(rows, web) is led


def test_only_the_haproxy_whose_configuration_was_read_is_left_unasked():
    ps = (
        "  70     1 /usr/sbin/haproxy -Ws -f /etc/haproxy/haproxy.cfg -p /run/haproxy.pid -S x\n"
        "  71    70 /usr/sbin/haproxy -Ws -f /etc/haproxy/haproxy.cfg -p /run/haproxy.pid -S x\n"
        " 900     1 /usr/sbin/haproxy -Ws -f /etc/haproxy/hx.cfg\n"
    )
    assert haproxy.instance_pids(ps) == {70, 71}
    assert haproxy.instance_pids(" 5 1 haproxy -db\n 6 1 haproxy -f /x.cfg\n") == {6}


def test_an_answer_is_the_applications_only_by_its_pid_or_its_host_and_request_id():
    where = ("192.168.89.10", 8080)
    answers = {
        (where, THIS_MACHINE): {"from": THIS_MACHINE, "status": 200, "json": STATUS},
        (where, "web-02"): {"from": "web-02", "status": 200, "json": STATUS},
        (("192.168.89.10", 9100), THIS_MACHINE): {"status": 404, "json": None},
        (("192.168.89.10", 9200), THIS_MACHINE): None,  # could not connect
    }
    programs = {where: ["ssh"], ("192.168.89.10", 9100): [], ("192.168.89.10", 9200): []}
    found = probes.by_application(answers, programs, {1092}, {})
    assert found == {
        where: {
            "socket": "192.168.89.10:8080",
            "programs": ["ssh"],
            "from": "this machine and web-02",
            "status": 200,
            "pid": 1092,
        }
    }
    assert probes.by_application(answers, programs, {7}, {}) == {}  # another application's
    # web-02's application runs under the same pid (each host counts its own): not web-01's
    assert probes.by_application(answers, programs, {1092}, {"host": "web-02"}) == {}
    assert set(probes.by_application(answers, programs, {1092}, {"host": "web-01"})) == {where}


# -- a second Nginx server that passes on only a path prefix -----------------------------------
PREFIXES = """# configuration file /etc/nginx/conf.d/relay.conf:
server {
    listen 8081;
    location /app/ { proxy_pass http://127.0.0.1:8000/; }
    location = /status { proxy_pass http://127.0.0.1:8000/api/status; }
    location ^~ /v1 { proxy_pass http://backend/api/; }
    location /as-is/ { proxy_pass http://127.0.0.1:8000; }
    location ~ ^/re/ { proxy_pass http://127.0.0.1:8000/; }
    location /var/ { proxy_pass http://$backend/; }
}
server { listen 80; location /site/ { proxy_pass http://127.0.0.1:8000/; } }
"""


@pytest.mark.parametrize(
    "port, paths",
    [
        (8081, ["/api/status", "/app/api/status", "/status", "/v1status"]),
        (80, ["/api/status", "/site/api/status"]),
        (9999, ["/api/status"]),
    ],
)
def test_the_paths_that_lead_to_the_application_through_a_location_of_its_own(port, paths):
    assert nginx.asked_paths(PREFIXES, port) == paths


def test_on_another_host_an_answer_nginx_sent_came_through_a_web_servers_front_door():
    """A balancer with a leftover server elsewhere has its port 80 asked: what comes back
    through a web server's Nginx is no relay; the application's own answer (gunicorn's Server
    header, or none) there is."""
    where = ("192.168.89.10", 80)
    answers = {
        (where, THIS_MACHINE): {"status": 200, "json": STATUS, "server": "nginx/1.22.1"},
        (where, "web-02"): {"status": 200, "json": STATUS, "server": "nginx"},
    }
    programs = {where: ["haproxy"]}
    assert probes.by_application(answers, programs, {1092}, {}, {where}) == {}
    assert set(probes.by_application(answers, programs, {1092}, {})) == {where}  # no front door
    answers[(where, "web-02")]["server"] = "gunicorn"
    found = probes.by_application(answers, programs, {1092}, {}, {where})
    assert found[where]["from"] == "web-02"


LB_NGINX = """# configuration file /etc/nginx/nginx.conf:
http {
    upstream web { server 192.168.89.11:80; server 192.168.89.12; }
    server { listen 80; location / { proxy_pass http://web; } }
    server { listen 9000; location / { proxy_pass http://127.0.0.1:9001; } }
    server { listen 9100; location / { proxy_pass http://192.168.89.11:8080; } }
    server { listen 9200; location / { return 404; } }
}
"""


@pytest.mark.parametrize(
    "holder, port, door",
    [
        ("/usr/sbin/haproxy", 80, True),  # its servers, as HAProxy reads them, were asked before
        ("/usr/sbin/nginx", 80, True),  # Nginx on the balancer in front of the web servers
        ("/usr/sbin/nginx", 9000, False),  # in front of a tunnel: its header proves nothing
        ("/usr/sbin/nginx", 9100, False),  # another port of a web server's
        ("/usr/sbin/nginx", 9200, True),  # passes nothing on
        ("/usr/bin/python3.11", 80, False),  # a program that may write any Server header
        ("", 80, False),  # not vouched for
    ],
)
def test_only_a_real_proxy_to_the_web_servers_front_doors_is_one(monkeypatch, holder, port, door):
    """On another host, `Server: nginx` tells a web server's front door only where the port's
    program is the distribution's HAProxy, or its Nginx passing to web servers' web ports."""
    lab = LiveLab(parse(variant("unit-rel", 89)), fleet={})
    monkeypatch.setattr(probes, "nginx_dump", lambda lab, host: LB_NGINX)
    monkeypatch.setattr(probes, "resolve", lambda lab, host, names: {n: [n] for n in names})
    listening = ss.parse(f'LISTEN 0 511 0.0.0.0:{port} 0.0.0.0:* users:(("x",pid=70,fd=6))\n')
    paths = {70: holder} if holder else {}
    assert probes.web_front_door(lab, "lb-01", listening, paths, port) is door


# -- what Nginx's configuration passes to the application, whatever the request ---------------
SERVERS = """# configuration file /etc/nginx/nginx.conf:
http {
    upstream app { server 127.0.0.1:8000; }
    server { listen 80; server_name foobar.com; location / { proxy_pass http://127.0.0.1:8000; } }
    server { listen 8082 default_server; location / { return 404; } }
    server { listen 8082; server_name secret.lan; location / { proxy_pass http://app; } }
    server {
        listen [::]:8083; listen 8084;
        location /hidden/ { rewrite ^/hidden(/.*)$ $1 break; proxy_pass http://127.0.0.1:8000; }
    }
    server { listen 8090; location / { deny all; proxy_pass http://127.0.0.1:8000; } }
    server {
        listen 8092;
        location / { allow 127.0.0.1; allow ::1; deny all; proxy_pass http://127.0.0.1:8000; }
    }
    server {
        listen 8093; allow 127.0.0.1; deny all;
        location / { allow 10.0.0.0/8; proxy_pass http://127.0.0.1:8000; }
    }
    server { listen 8094; deny all; location / { proxy_pass http://127.0.0.1:8000; } }
    server { listen 8091; location / { uwsgi_pass unix:/run/other.sock; } }
}
stream { server { listen 9000; proxy_pass 127.0.0.1:8000; } }
"""


def test_every_server_block_that_forwards_with_the_ports_it_listens_on():
    found = [(p.ports, p.names, str(p.target), p.how) for p in nginx.passing_servers(SERVERS)]
    assert found == [
        ((80,), ("foobar.com",), "127.0.0.1:8000", "proxy_pass http://127.0.0.1:8000"),
        ((8082,), ("secret.lan",), "127.0.0.1:8000", "proxy_pass http://app"),
        ((8083, 8084), (), "127.0.0.1:8000", "proxy_pass http://127.0.0.1:8000"),
        # the location's own rules replace the server's: 10.0.0.0/8 gets through
        ((8093,), (), "127.0.0.1:8000", "proxy_pass http://127.0.0.1:8000"),
        ((8091,), (), "unix:/run/other.sock", "uwsgi_pass unix:/run/other.sock"),
        ((9000,), (), "127.0.0.1:8000", "proxy_pass 127.0.0.1:8000"),  # stream {}: raw TCP
    ]  # 8090 and 8094 deny everyone, 8092 everyone but the host itself: they pass nothing on


def test_a_port_nginx_passes_to_the_application_is_a_relay_once_a_source_connects():
    where, closed = ("192.168.89.11", 8082), ("192.168.89.11", 8084)
    answers = {
        (where, THIS_MACHINE): {"status": 404, "json": None, "server": "nginx"},
        (where, "lb-01"): {"status": 404, "json": None, "server": "nginx"},
        (closed, THIS_MACHINE): None,  # could not connect: a firewall keeps it
    }
    candidates = {where: ["nginx"], closed: ["nginx"]}
    configured = {8082: "proxy_pass http://app, server secret.lan", 8084: "proxy_pass …"}
    assert probes.configured_relays(answers, candidates, configured) == {
        where: {
            "socket": "192.168.89.11:8082",
            "programs": ["nginx"],
            "from": "this machine and lb-01",
            "status": None,
            "pid": None,
            "configured": "proxy_pass http://app, server secret.lan",
        }
    }
    assert probes.configured_relays(answers, candidates, {}) == {}


def test_a_logins_remote_forward_is_asked_even_at_port_22_the_daemons_socket_is_not(monkeypatch):
    """`ssh -R 192.168.89.77:22:127.0.0.1:8000` makes the login's sshd listen at port 22 of a
    second address: only the daemon systemd started serves SSH itself there."""
    listening = (
        'LISTEN 0 128 0.0.0.0:22 0.0.0.0:* users:(("sshd",pid=55,fd=3))\n'
        'LISTEN 0 128 192.168.89.77:22 0.0.0.0:* users:(("sshd",pid=1111,fd=9))\n'
    )
    ps = {
        55: proc.Process(55, 1, "sshd", "sshd: /usr/sbin/sshd -D [listener] 0 of 10-100"),
        1111: proc.Process(1111, 1100, "sshd", "sshd: root@notty"),
    }
    monkeypatch.setattr(probes, "processes", lambda lab, host, pids: {p: ps[p] for p in pids})
    paths = {55: probes.SSHD, 1111: probes.SSHD}
    assert probes.sessions_of_sshd(None, "web-01", paths) == [1111]
    del paths[1111]
    found = probes.relay_candidates(ss.parse(listening), paths, "192.168.89.11", "")
    assert found == {("192.168.89.77", 22): ["sshd"]}


def test_a_second_nginx_of_its_own_is_read_with_its_own_configuration():
    site = "nginx: master process /usr/sbin/nginx -g daemon on; master_process on;"
    other = "nginx: master process /usr/sbin/nginx -c /etc/nginx-hx/nginx.conf -g daemon off;"
    assert nginx.instance_options(site) is None
    assert nginx.instance_options(site.replace("-g", "-c /etc/nginx/nginx.conf -g")) is None
    assert nginx.instance_options(other) == ["-c", "/etc/nginx-hx/nginx.conf"]
    assert nginx.instance_options(other + " -p /srv/x") == [
        "-c",
        "/etc/nginx-hx/nginx.conf",
        "-p",
        "/srv/x",
    ]
    assert (
        nginx.dump_of(["-c", "/etc/a b.conf"])
        == "/usr/sbin/nginx -T -c '/etc/a b.conf' 2>/dev/null"
    )


def test_every_port_of_another_nginx_instance_is_asked_and_read_with_its_dump(monkeypatch):
    site = "nginx: master process /usr/sbin/nginx -g daemon on; master_process on;"
    other = "nginx: master process /usr/sbin/nginx -c /etc/nginx-hx/nginx.conf -g daemon off;"
    ps = {
        58: proc.Process(58, 1, "nginx", site),
        59: proc.Process(59, 58, "nginx", "nginx: worker process"),
        1197: proc.Process(1197, 1, "nginx", other),
        1198: proc.Process(1198, 1197, "nginx", "nginx: worker process"),
    }
    monkeypatch.setattr(probes, "processes", lambda lab, host, pids: {p: ps[p] for p in pids})
    asked = []

    class Lab:
        def sh(self, host, command, **kwargs):
            asked.append(command)
            return "# configuration file /etc/nginx-hx/nginx.conf:\n..."

    paths = dict.fromkeys((58, 59, 1197, 1198), "/usr/sbin/nginx")
    found = probes.other_nginx_instances(Lab(), "web-01", paths)
    assert found == {"# configuration file /etc/nginx-hx/nginx.conf:\n...": {1197, 1198}}
    assert asked == ["/usr/sbin/nginx -T -c /etc/nginx-hx/nginx.conf 2>/dev/null"]
    # a lone master with a configuration of its own is the site's Nginx itself
    alone = {1197: "/usr/sbin/nginx", 1198: "/usr/sbin/nginx"}
    assert probes.other_nginx_instances(Lab(), "web-01", alone) == {}
    # its port 443 is no longer Nginx's front door: asked like any other
    listening = ss.parse('LISTEN 0 511 0.0.0.0:443 0.0.0.0:* users:(("nginx",pid=1198,fd=6))\n')
    for pid in (1197, 1198):
        del paths[pid]
    assert probes.relay_candidates(listening, paths, "192.168.89.11", "") == {
        ("192.168.89.11", 443): ["nginx"]
    }


def test_a_relay_in_a_network_namespace_of_its_own_is_asked_at_that_namespaces_addresses():
    """`ip netns add hx` with a macvlan of the lab network (192.168.89.78) in it: a socat
    listening there is out of sight of ss in the host's namespace."""
    namespaces = (
        "1 net:[4026532332]\n58 net:[4026532332]\n1408 net:[4026532999]\n1409 net:[4026532999]\n"
    )
    assert ss.other_namespaces(namespaces) == [1408]
    assert ss.other_namespaces("1 net:[1]\n7 net:[1]\n") == []
    said = {
        ss.NAMESPACES: namespaces,
        "inside": (
            'LISTEN 0 5 0.0.0.0:9000 0.0.0.0:* users:(("socat",pid=1408,fd=5))\n'
            'LISTEN 0 5 127.0.0.1:9001 0.0.0.0:* users:(("socat",pid=1409,fd=5))\n'
            f"{probes.NAMESPACE_FENCE}\n"
            "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever\n"
            "2: mv0@if3    inet 192.168.89.78/24 scope global mv0\\       valid_lft forever\n"
            "2: mv0@if3    inet6 fe80::1/64 scope link \\       valid_lft forever\n"
        ),
    }

    class Lab:
        def sh(self, host, command, **kwargs):
            return said["inside" if "nsenter --target 1408" in command else command]

    assert probes.namespace_listeners(Lab(), "web-01") == {("192.168.89.78", 9000): ["socat"]}
