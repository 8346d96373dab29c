"""Where the grader reads a configuration itself, the real program reads it the same way.

Each table runs every configuration in one go on one host of the reference lab: HAProxy
(private copies asked through their runtime API) on lb-01, a private Nginx answering requests
with distinct Host headers on web-01 (../shared/style.md, "Ask the software; don't
re-implement it ... a test runs the real program on the same configurations").
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from lab.facts import haproxy, nginx
from lab.remote.quoting import quote
from tests.unit.test_docs import page_haproxy_config

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("reference")]

CASE = "@@@@ case "  # not a section line of haproxy.private_reading ("@@ ")


def put(path: str, text: str) -> str:
    """A shell line writing text to path."""
    return f"echo {base64.b64encode(text.encode()).decode()} | base64 -d > {quote(path)}"


def haproxy_readings(lab, configs: dict[str, str]) -> dict[str, str]:
    """name → what a private copy of lb-01's HAProxy made of each configuration."""
    steps = []
    for name, text in configs.items():
        path = f"/tmp/lab-reading-{name}.cfg"
        reading = haproxy.private_reading([path], haproxy.parse_config(text).sockets)
        steps.append(f"echo '{CASE}{name}'; {put(path, text)} && {reading}; rm -f {path}")
    out = lab.ssh("lb-01", f"sudo sh -c {quote('; '.join(steps))}")
    return {part.split("\n", 1)[0]: part.split("\n", 1)[1] for part in out.split(CASE)[1:] if part}


def test_the_graders_reading_of_haproxy_cfg_is_haproxys(provisioned_lab):
    """defaults sections and `from`, server-template, balance, check addr/port, backup,
    disabled, track: the parser the grader falls back on agrees with HAProxy on each file."""
    folder = Path(__file__).parents[1] / "unit" / "fixtures" / "haproxy"
    configs = {p.stem: p.read_text() for p in sorted(folder.glob("*.cfg"))}
    assert len(configs) >= 5, configs
    readings = haproxy_readings(provisioned_lab, configs)
    differ = {}
    for name, text in configs.items():
        sections = haproxy.parse_reading(readings.get(name, ""))
        assert sections.get("show stat", "").startswith("# pxname"), (name, sections)
        theirs = haproxy.running_servers(
            haproxy.parse_show_stat(sections["show stat"]),
            haproxy.parse_servers_state(sections["show servers state"]),
        )
        ours = haproxy.configured_servers(haproxy.parse_config(text))
        for mine, its in zip(ours, theirs, strict=False):
            keys = [k for k in its if mine.get(k) != its[k]]
            if keys:
                differ.setdefault(name, []).append(
                    (its["backend"], its["name"], {k: (mine.get(k), its[k]) for k in keys})
                )
        if len(ours) != len(theirs):
            differ.setdefault(name, []).append(("servers", len(ours), len(theirs)))
    assert not differ, differ  # (grader, haproxy) of each value that differs


# Nginx's choice of server block: each case is a set of server blocks on a port of its own
# ({port}, and {other} a second one), each answering its own label, in its case's site file
# unless a third item places it elsewhere (PLACES); requests are (Host, where the connection
# arrives: the host's lab address or loopback, on {port} or {other}), with the label Nginx must
# answer (so a case also shows the rule it is about)
SERVER_CASES = {
    "leading-dot-name-beside-a-default-server": (
        ("a", "listen {port} default_server; server_name _;"),
        ("b", "listen {port}; server_name .foobar.com;"),
    ),
    "exact-then-leading-then-trailing-wildcard-then-regex-then-the-first": (
        ("a", r'listen {port}; server_name "~^api\d+\.";'),
        ("b", "listen {port}; server_name *.com;"),
        ("c", "listen {port}; server_name *.foobar.com;"),
        ("d", "listen {port}; server_name www.*;"),
        ("e", "listen {port}; server_name www.foobar.com;"),
    ),
    "regular-expressions-in-order-with-named-captures": (
        ("a", "listen {port} default_server; server_name default.invalid;"),
        ("b", r'listen {port}; server_name "~^(?<sub>[a-z]+)\.foobar\.com$";'),
        ("c", "listen {port}; server_name ~foobar;"),
    ),
    "names-in-capitals-and-a-trailing-dot": (
        ("a", "listen {port}; server_name default.invalid;"),
        ("b", "listen {port}; server_name WWW.FooBar.COM;"),
    ),
    "an-address-of-its-own-beside-any-address": (
        ("a", "listen {port}; server_name www.foobar.com;"),
        ("b", "listen 127.0.0.1:{port}; server_name other.invalid;"),
    ),
    "a-default-server-per-port": (
        ("a", "listen {port}; listen {other} default_server; server_name a.invalid;"),
        ("b", "listen {port} default_server; listen {other}; server_name b.invalid;"),
    ),
    "a-server-in-nginx-conf-before-the-include": (
        ("a", "listen {port}; server_name a.invalid;", "before"),
        ("b", "listen {port}; server_name b.invalid;"),
    ),
    "servers-in-nginx-conf-between-and-after-includes": (
        ("a", "listen {port}; server_name a.invalid;", "between"),
        ("b", "listen {other}; server_name b.invalid;", "later"),
        ("c", "listen {port}; server_name c.invalid;"),
        ("d", "listen {other}; server_name d.invalid;", "last"),
    ),
    "a-server-included-by-an-included-file": (
        ("a", "listen {port}; server_name a.invalid;", "nested"),
        ("b", "listen {port}; listen {other}; server_name b.invalid;"),
        ("c", "listen {other}; server_name c.invalid;", "nested"),
    ),
}
REQUESTS = {
    "leading-dot-name-beside-a-default-server": (
        ("www.foobar.com", "lab", "port", "b"),
        ("foobar.com", "lab", "port", "b"),
        ("WWW.FOOBAR.COM", "lab", "port", "b"),
        ("x.www.foobar.com", "lab", "port", "b"),
        ("foobar.com.example.org", "lab", "port", "a"),
        ("example.org", "lab", "port", "a"),
    ),
    "exact-then-leading-then-trailing-wildcard-then-regex-then-the-first": (
        ("www.foobar.com", "lab", "port", "e"),
        ("api1.foobar.com", "lab", "port", "c"),
        ("api1.example.com", "lab", "port", "b"),
        ("www.example.org", "lab", "port", "d"),
        ("api1.example.org", "lab", "port", "a"),
        ("nothing.example.org", "lab", "port", "a"),
    ),
    "regular-expressions-in-order-with-named-captures": (
        ("www.foobar.com", "lab", "port", "b"),
        ("WWW.FooBar.Com", "lab", "port", "b"),
        ("foobar.com", "lab", "port", "c"),
        ("example.org", "lab", "port", "a"),
    ),
    "names-in-capitals-and-a-trailing-dot": (
        ("www.foobar.com", "lab", "port", "b"),
        ("Www.Foobar.Com.", "lab", "port", "b"),
        ("foobar.com", "lab", "port", "a"),
    ),
    "an-address-of-its-own-beside-any-address": (
        ("www.foobar.com", "loopback", "port", "b"),
        ("www.foobar.com", "lab", "port", "a"),
    ),
    "a-default-server-per-port": (
        ("example.org", "lab", "port", "b"),
        ("example.org", "lab", "other", "a"),
        ("a.invalid", "lab", "port", "a"),
    ),
    "a-server-in-nginx-conf-before-the-include": (
        ("example.org", "lab", "port", "a"),
        ("b.invalid", "lab", "port", "b"),
    ),
    "servers-in-nginx-conf-between-and-after-includes": (
        ("example.org", "lab", "port", "c"),
        ("example.org", "lab", "other", "b"),
        ("a.invalid", "lab", "port", "a"),
        ("d.invalid", "lab", "other", "d"),
    ),
    "a-server-included-by-an-included-file": (
        ("example.org", "lab", "port", "a"),
        ("example.org", "lab", "other", "b"),
        ("c.invalid", "lab", "other", "c"),
    ),
}
PRIVATE = "/tmp/lab-server-choice"
# where a block may stand besides its case's site file: in nginx.conf (before the include of the
# sites, between it and the include of later/, after both), in later/, or in a file of nested/
# that the site file includes (by a path relative to nginx.conf's directory) where it stands
PLACES = ("before", "between", "last", "later", "nested")


def nginx_conf(before: str, between: str, last: str) -> str:
    """The private Nginx's nginx.conf, with server blocks around its two includes."""
    return f"""worker_processes 1;
pid {PRIVATE}/nginx.pid;
error_log {PRIVATE}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {PRIVATE}/body;
    proxy_temp_path {PRIVATE}/proxy;
    fastcgi_temp_path {PRIVATE}/fastcgi;
    uwsgi_temp_path {PRIVATE}/uwsgi;
    scgi_temp_path {PRIVATE}/scgi;
{before}    include {PRIVATE}/sites/*.conf;
{between}    include {PRIVATE}/later/*.conf;
{last}}}
"""


ASK = """import http.client, json, sys
answers = []
for host, address, port in json.loads(sys.argv[1]):
    connection = http.client.HTTPConnection(address, port, timeout=5)
    connection.putrequest("GET", "/", skip_host=True)
    connection.putheader("Host", host)
    connection.endheaders()
    answers.append(connection.getresponse().read().decode().strip())
print(json.dumps(answers))
"""


def ports(number: int) -> dict[str, int]:
    return {"port": 8101 + number, "other": 8201 + number}


def server_block(number: int, case: str, label: str, settings: str) -> str:
    return (
        "server {\n    "
        + settings.format(**ports(number))
        + f"\n    return 200 {case}/{label};\n}}\n"
    )


def config_files() -> dict[str, str]:
    """The private Nginx's files (path under PRIVATE → text): each case's blocks in the table's
    order, each in its case's site file or where its place says."""
    files: dict[str, str] = {}
    conf = dict.fromkeys(PLACES[:3], "")
    for number, (case, blocks) in enumerate(SERVER_CASES.items()):
        site = files.setdefault(f"sites/{number:02d}-{case}.conf", "")
        for label, settings, *place in blocks:
            text = server_block(number, case, label, settings)
            where = place[0] if place else "site"
            if where in conf:
                conf[where] += text
            elif where == "later":
                later = f"later/{number:02d}-{case}.conf"
                files[later] = files.get(later, "") + text
            elif where == "nested":
                files[f"nested/{number:02d}-{label}.conf"] = text
                site += f"include nested/{number:02d}-{label}.conf;\n"
            else:
                site += text
        files[f"sites/{number:02d}-{case}.conf"] = site
    return {"nginx.conf": nginx_conf(**conf), **files}


def nginx_answers(lab, asked: list) -> tuple[str, list[str]]:
    """The private Nginx's `nginx -T` and its answer (the label of its block) to each request."""
    setup = [f"rm -rf {PRIVATE} && mkdir -p {PRIVATE}/sites {PRIVATE}/later {PRIVATE}/nested"]
    setup += [put(f"{PRIVATE}/{name}", text) for name, text in config_files().items()]
    setup.append(put(f"{PRIVATE}/ask.py", ASK))
    conf = f"-p {PRIVATE} -c {PRIVATE}/nginx.conf"
    run = (
        f"{nginx.NGINX} {conf} -t -q && {nginx.NGINX} {conf} -T 2>/dev/null > {PRIVATE}/dump "
        f"&& {nginx.NGINX} {conf} && python3 {PRIVATE}/ask.py {quote(json.dumps(asked))}; "
        f"kill $(cat {PRIVATE}/nginx.pid 2>/dev/null) 2>/dev/null; "
        f"echo '{CASE}'; cat {PRIVATE}/dump"
    )
    out = lab.ssh("web-01", f"sudo sh -c {quote(' && '.join(setup) + ' && ' + run)}")
    answers, _, dump = out.partition(f"{CASE}\n")
    return dump, json.loads(answers)


def graders_choice(dump: str, host: str, address: str, port: int) -> str:
    """The label of the server block the grader says Nginx chooses."""
    items = nginx.directives(dump)
    server = nginx._server_for(items, host, address, port)
    labels = [
        d.args[1] for d in items if server and d.parent == server.block and d.name == "return"
    ]
    return labels[0] if labels else "none"


def test_the_graders_choice_of_nginx_server_block_is_nginxs(provisioned_lab):
    """Leading-dot, wildcard and regex names, case, the default server of each address and
    port, the first block as default (in the order Nginx reads its files: each include in
    place): the grader picks the block that answers."""
    where = {"lab": provisioned_lab.address("web-01"), "loopback": "127.0.0.1"}
    requests = [
        (host, where[at], ports(number)[on], f"{case}/{label}")
        for number, case in enumerate(SERVER_CASES)
        for host, at, on, label in REQUESTS[case]
    ]
    dump, answers = nginx_answers(provisioned_lab, [r[:3] for r in requests])
    assert len(answers) == len(requests), answers
    table = [(*r, answer) for r, answer in zip(requests, answers, strict=True) if r[3] != answer]
    assert not table, table  # each row of the table says what Nginx does
    grader = [(*r[:3], graders_choice(dump, *r[:3])) for r in requests]
    wrong = [(*g, "nginx", a) for g, a in zip(grader, answers, strict=True) if g[3] != a]
    assert not wrong, wrong


def test_exercise_05s_configuration_passes_haproxy_c(provisioned_lab):
    """HAProxy itself (lb-01's) accepts the whole configuration exercise 05 shows."""
    path = "/tmp/lab-exercise-05.cfg"
    script = f"{put(path, page_haproxy_config('05-load-balancer.md'))} && haproxy -c -f {path}"
    out = provisioned_lab.ssh(
        "lb-01", f"sudo sh -c {quote(script + '; echo exit=$?; rm -f ' + path)}"
    )
    assert out.rstrip().endswith("exit=0"), out


# The paths the grader asks a second Nginx server for (nginx.asked_paths): each location that
# passes requests with a URI of its own, in front of the reference application on web-01
PREFIX_PORT = 8301
PREFIX_SERVER = f"""server {{
    listen 127.0.0.1:{PREFIX_PORT};
    location / {{ return 404; }}
    location /app/ {{ proxy_pass http://127.0.0.1:8000/; }}
    location = /status {{ proxy_pass http://127.0.0.1:8000/api/status; }}
    location ^~ /v1 {{ proxy_pass http://127.0.0.1:8000/api/; }}
    location /as-is/ {{ proxy_pass http://127.0.0.1:8000; }}
}}
"""
ASK_PATHS = """import http.client, json, sys
answers = {}
for path in json.loads(sys.argv[2]):
    connection = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=5)
    connection.request("GET", path)
    reply = connection.getresponse()
    try:
        body = json.loads(reply.read())
    except ValueError:
        body = None
    answers[path] = isinstance(body, dict) and "request_id" in body
print(json.dumps(answers))
"""


def asked_of_private_nginx(lab, servers: str, ask: str, where: str, what: list) -> dict:
    """What the script ask (its arguments: where, then what as JSON) printed on web-01, asking
    a private Nginx that runs the server blocks given, started for it and stopped after."""
    script = " && ".join(
        [
            f"rm -rf {PRIVATE} && mkdir -p {PRIVATE}/sites {PRIVATE}/later",
            put(f"{PRIVATE}/nginx.conf", nginx_conf(servers, "", "")),
            put(f"{PRIVATE}/ask.py", ask),
            f"{nginx.NGINX} -p {PRIVATE} -c {PRIVATE}/nginx.conf",
            f"python3 {PRIVATE}/ask.py {where} {quote(json.dumps(what))}; "
            f"kill $(cat {PRIVATE}/nginx.pid)",
        ]
    )
    return json.loads(lab.ssh("web-01", f"sudo sh -c {quote(script)}"))


def test_the_paths_the_grader_asks_a_second_nginx_for_reach_the_application(provisioned_lab):
    """Each path nginx.asked_paths gives for a server of prefix locations brings the
    application's /api/status through the real Nginx; a location without a URI of its own
    passes the request's own path, which the application does not know."""
    dump = f"# configuration file {PRIVATE}/nginx.conf:\n{PREFIX_SERVER}"
    asked = nginx.asked_paths(dump, PREFIX_PORT)
    assert asked == ["/api/status", "/app/api/status", "/status", "/v1status"], asked
    others = ["/as-is/api/status", "/app/status"]
    answers = asked_of_private_nginx(
        provisioned_lab, PREFIX_SERVER, ASK_PATHS, str(PREFIX_PORT), asked + others
    )
    assert answers == {path: path in asked[1:] for path in asked + others}, answers


# Access rules in front of a server that passes requests on (nginx.passing_servers leaves out
# the blocks that admit no one but the host itself), asked from web-01's lab address: a visitor
ACCESS_SERVERS = """server {{
    listen {address}:8311;
    location / {{ allow 127.0.0.1; allow ::1; deny all; proxy_pass http://127.0.0.1:8000; }}
}}
server {{
    listen {address}:8312; allow 127.0.0.1; deny all;
    location / {{ allow {network}; proxy_pass http://127.0.0.1:8000; }}
}}
server {{ listen {address}:8313; deny all; location / {{ proxy_pass http://127.0.0.1:8000; }} }}
server {{
    listen {address}:8314;
    location / {{ allow 127.0.0.0/8; deny 10.0.0.0/8; allow all; proxy_pass http://127.0.0.1:8000;
    }}
}}
"""
ASK_PORTS = """import http.client, json, sys
answers = {}
for port in json.loads(sys.argv[2]):
    connection = http.client.HTTPConnection(sys.argv[1], port, timeout=5)
    connection.request("GET", "/api/status")
    reply = connection.getresponse()
    try:
        body = json.loads(reply.read())
    except ValueError:
        body = None
    answers[str(port)] = isinstance(body, dict) and "request_id" in body
print(json.dumps(answers))
"""


def test_the_servers_the_grader_finds_passing_to_the_application_are_those_nginx_lets_through(
    provisioned_lab,
):
    """A server block counts as passing requests on unless its access rules, as Nginx applies
    them (the innermost level with rules), admit the host itself alone; the real Nginx lets a
    visitor through exactly those the grader counts."""
    address = provisioned_lab.address("web-01")
    network = address.rsplit(".", 1)[0] + ".0/24"
    servers = ACCESS_SERVERS.format(address=address, network=network)
    passing = {
        p for s in nginx.passing_servers(f"# configuration file x:\n{servers}") for p in s.ports
    }
    assert passing == {8312, 8314}, passing
    ports = [8311, 8312, 8313, 8314]
    answers = asked_of_private_nginx(provisioned_lab, servers, ASK_PORTS, address, ports)
    assert answers == {str(port): port in passing for port in ports}, answers
