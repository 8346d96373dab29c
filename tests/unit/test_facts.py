"""The fact parsers on outputs recorded from real hosts (tests/unit/fixtures/raw)."""

import shlex
import subprocess
from pathlib import Path

import pytest

from lab.facts import dns, haproxy, mysql, nginx, proc, prometheus, ss, systemd
from tests.record import RAW, raw_fixture, read_raw


def test_every_raw_fixture_names_its_command_and_origin():
    for path in RAW.glob("*.txt"):
        text = path.read_text()
        assert text.startswith("# recorded on ") or text.startswith("# not recorded"), path
        command, output = raw_fixture(text)
        assert command and output.strip(), path


def test_ss_tcp_listeners_with_their_processes():
    listeners = ss.parse(read_raw("ss-web-01"))
    app = [item for item in listeners if item.port == 8000]
    assert len(app) == 1 and app[0].kind == "tcp" and app[0].address == "127.0.0.1"
    assert app[0].names == ["gunicorn"] and len(app[0].pids) == 3 and app[0].local_only
    web = ss.on_port(listeners, 80)
    assert web and all(item.names == ["nginx"] for item in web)
    assert not any(item.local_only for item in web)  # 0.0.0.0 and [::]


def test_ss_unix_sockets_are_parsed_by_field():
    listeners = ss.parse(read_raw("ss-unix-gunicorn-web-01"))
    sock = next(item for item in listeners if item.address == "/tmp/lab-unix.sock")
    assert sock.kind == "unix" and sock.port is None and sock.local_only
    assert sock.names == ["gunicorn"] and len(sock.pids) == 3
    assert str(sock) == "unix:/tmp/lab-unix.sock"


def test_nginx_dump_gives_the_upstream_logs_and_roots():
    dump = read_raw("nginx-T-web-01")
    assert [str(t) for t in nginx.targets(dump)] == ["127.0.0.1:8000"]
    assert nginx.site_access_logs(dump, "www.foobar.com") == ["/var/log/nginx/access.log"]
    off = dump.replace("server_name foobar.com", "access_log off;\n    server_name foobar.com")
    assert nginx.site_access_logs(off, "www.foobar.com") is None  # the site's server wins
    assert "/srv/webstack/app/static" in nginx.document_roots(dump)


INCLUDES = """# configuration file /etc/nginx/nginx.conf:
http {
    server { listen 80; server_name before.invalid; }
    include sites-enabled/*;
    server { listen 80; server_name after.invalid; }
    include /etc/nginx/conf.d/*.conf;
}

# configuration file /etc/nginx/sites-enabled/a:
include /etc/nginx/nested/*.conf;
server { listen 80; server_name a.invalid; include snippets/api.conf; }

# configuration file /etc/nginx/nested/inner.conf:
server { listen 80; server_name inner.invalid; }

# configuration file /etc/nginx/snippets/api.conf:
location /api/ { proxy_pass http://127.0.0.1:8000; }

# configuration file /etc/nginx/sites-enabled/b:
server { listen 80; server_name b.invalid; include snippets/api.conf; }

# configuration file /etc/nginx/conf.d/z.conf:
server { listen 80; server_name z.invalid; }
"""


def test_nginx_reads_each_include_in_place():
    """`nginx -T` prints a file after the one that first included it, and once: the grader reads
    it where the include stands, as Nginx does (so the first server of a port is Nginx's)."""
    items = nginx.directives(INCLUDES)
    names = [d.args[0] for d in items if d.name == "server_name"]
    assert names == [f"{n}.invalid" for n in ("before", "inner", "a", "b", "after", "z")]
    servers = [d for d in items if d.name == "server"]
    assert {d.context for d in servers} == {("http",)}
    assert nginx.location_for(INCLUDES, "b.invalid", "/api/x") == (
        "/api/",
        ["proxy_pass http://127.0.0.1:8000"],
    )  # a snippet printed once, read in each server that includes it

    def default(dump: str) -> str:
        items = nginx.directives(dump)
        server = nginx._server_for(items, "example.org")
        return next(
            d.args[0] for d in items if d.parent == server.block and d.name == "server_name"
        )

    assert default(INCLUDES) == "before.invalid"
    elsewhere = INCLUDES.replace("listen 80; server_name before", "listen 81; server_name before")
    assert default(elsewhere) == "inner.invalid"  # nested in the first site, before a
    plain = nginx.in_read_order("server { include x; }  # no file headers\n")
    assert plain == ["server", "{", "include", "x", ";", "}"]
    looped = "# configuration file /n.conf:\ninclude /*.conf; a 1;\n# configuration file /s.conf:\n"
    looped += "include /*.conf; b 2;\n"  # not what a running Nginx read: no endless reading
    assert [d.name for d in nginx.directives(looped)] == ["include", "include", "b", "a"]


def test_nginx_targets_through_upstream_blocks_and_sockets():
    dump = """
    upstream app { server unix:/run/app.sock fail_timeout=0; server 127.0.0.1:9000; }
    server { location / { proxy_pass http://app/; }
             location /x { proxy_pass http://unix:/run/x.sock:/; }
             location /y { proxy_pass http://localhost:8080; } # comment { ; }
             location /v { proxy_pass http://$backend; } access_log off; }
    """
    found = [str(t) for t in nginx.targets(dump)]
    assert found == ["unix:/run/app.sock", "127.0.0.1:9000", "unix:/run/x.sock", "localhost:8080"]
    assert nginx.site_access_logs(dump, "www.foobar.com") is None


def test_nginx_first_error():
    out = (
        'nginx: [emerg] unknown directive "bogus" in /etc/nginx/sites-enabled/x:3\n'
        "nginx: configuration file /etc/nginx/nginx.conf test failed\n"
    )
    assert nginx.first_error(out).startswith('[emerg] unknown directive "bogus"')


def test_haproxy_config_servers_balance_and_socket():
    config = haproxy.parse_config(read_raw("haproxy-cfg-lb-01"))
    assert config.sockets == ["/run/haproxy/admin.sock"]
    (backend,) = [b for b in config.backends if b.servers]
    assert backend.balance == "roundrobin"
    assert [(s.host, s.port, s.checked, s.backup) for s in backend.servers] == [
        ("192.168.211.11", 80, True, False),
        ("192.168.211.12", 80, True, False),
    ]
    assert backend.servers[0].option("inter") == "1s"  # from default-server


def test_haproxy_config_of_a_student():
    config = haproxy.parse_config(
        "global\n  log /dev/log local0\ndefaults\n  mode http\n  balance leastconn\n"
        "  default-server check inter 1h\n"
        "frontend f\n  bind *:80\n  default_backend b\n"
        "backend b\n  server 1234-web-01 web-01:80\n  server 1234-web-02 10.0.0.2:80 backup\n"
    )
    assert config.sockets == []
    servers = config.backends[0].servers
    assert config.backends[0].balance == "leastconn"
    assert servers[0].host == "web-01" and servers[0].checked and servers[0].option("inter") == "1h"
    assert servers[1].backup


def test_haproxy_running_config_files():
    assert haproxy.config_files(read_raw("ps-haproxy-lb-01")) == ["/etc/haproxy/haproxy.cfg"]
    assert haproxy.config_files("12 1 /usr/sbin/haproxy -Ws -f /a.cfg -f /conf.d -p /x") == [
        "/a.cfg",
        "/conf.d",
    ]


def test_show_stat_rows_are_matched_by_address():
    rows = haproxy.parse_show_stat(read_raw("show-stat-lb-01"))
    found = haproxy.servers_at(rows, {"one": "192.168.211.11", "two": "192.168.211.12"})
    assert set(found) == {"one", "two"}
    assert all(haproxy.server_up(r) for r in found.values())
    assert haproxy.servers_at(rows, {"x": "192.168.211.99"}) == {}
    assert not haproxy.server_up({"status": "UP 1/2", "check_status": "INI"})


def test_getent_resolution():
    found = dns.parse_getent(read_raw("getent-web-01"))
    assert found["localhost"] == ["127.0.0.1"]
    assert found["web-01"] and found["nowhere.invalid"] == []


def test_ps_and_wsgi_entry_points():
    processes = proc.parse_ps(read_raw("ps-gunicorn-web-01"))
    master = proc.eldest({p: v for p, v in processes.items() if "8000" in v.args})
    assert master.ppid == 1 and master.name == "gunicorn"
    assert proc.entry_candidates(master.args, "/srv/webstack/app")[0] == (
        "/srv/webstack/app/app.py"
    )
    assert proc.entry_candidates("gunicorn --chdir /opt/g evil:app", "/")[0] == "/opt/g/evil.py"
    assert proc.entry_candidates("gunicorn app:app -b 127.0.0.1:8000", "/s")[0] == "/s/app.py"
    assert proc.entry_candidates("uwsgi --ini /etc/u.ini", "/x") == []


def test_pids_from_the_network_are_validated():
    assert proc.ps(["12", "1; rm -rf /", "$(id)", 7]) == "ps -o pid=,ppid=,comm=,args= -p 12,7"


def test_replica_status_and_columns():
    status = mysql.replica_status(read_raw("replica-status-web-02"))
    assert status.running and status.source_host == "192.168.211.11"
    columns = mysql.parse_columns(read_raw("text-columns-web-01"))
    assert {str(c) for c in columns} >= {"webstack.guestbook.message", "webstack.guestbook.name"}
    sql = mysql.search(columns[:1], ["lab-check-00ff"])
    assert "LIKE '%lab-check-00ff%'" in sql and "`webstack`.`guestbook`" in sql
    assert mysql.parse_found("webstack.guestbook.message\tlab-check-00ff\n") == {
        "lab-check-00ff": "webstack.guestbook.message"
    }
    assert mysql.ident("a`b") == "`a``b`" and mysql.literal("it's") == "'it''s'"


def test_replication_filters_as_the_replica_shows_them():
    assert mysql.replica_status(read_raw("replica-status-web-02")).filters == ()
    status = mysql.replica_status(read_raw("replica-status-filtered"))
    assert status.running
    assert status.filters == (("Replicate_Wild_Ignore_Table", "webstack.%,mirror.%"),)
    variables = mysql.parse_filter_variables(read_raw("replicate-variables-filtered"))
    assert variables == {"Replicate_Wild_Ignore_Table": "webstack.%,mirror.%"}
    assert mysql.filtered_out(variables, "webstack", "guestbook") == (
        "Replicate_Wild_Ignore_Table=webstack.%"
    )


@pytest.mark.parametrize(
    ("filters", "rule"),
    [
        ({}, None),
        ({"Replicate_Do_DB": "webstack"}, None),
        ({"Replicate_Do_DB": "other,webstack"}, None),
        ({"Replicate_Do_DB": "other"}, "Replicate_Do_DB=other"),
        ({"Replicate_Ignore_DB": "webstack"}, "Replicate_Ignore_DB=webstack"),
        ({"Replicate_Ignore_DB": "other"}, None),
        ({"Replicate_Do_Table": "webstack.guestbook"}, None),
        ({"Replicate_Do_Table": "webstack.other"}, "Replicate_Do_Table=webstack.other"),
        ({"Replicate_Ignore_Table": "webstack.guestbook"}, "Replicate_Ignore_Table="),
        ({"Replicate_Wild_Do_Table": "web%.%"}, None),
        ({"Replicate_Wild_Do_Table": "webs_ack.guest%"}, None),
        ({"Replicate_Wild_Do_Table": "other.%"}, "Replicate_Wild_Do_Table=other.%"),
        ({"Replicate_Wild_Ignore_Table": "%.guest%"}, "Replicate_Wild_Ignore_Table=%.guest%"),
        ({"Replicate_Wild_Ignore_Table": "webstack\\_x.%"}, None),  # \_ is a literal _
        ({"Replicate_Wild_Ignore_Table": "mysql.%"}, None),
        # a table named to be done wins over a wild ignore (the documented order)
        (
            {"Replicate_Do_Table": "webstack.guestbook", "Replicate_Wild_Ignore_Table": "%.%"},
            None,
        ),
        # MariaDB applies the database's changes to another one (as SHOW REPLICA STATUS says)
        ({"Replicate_Rewrite_DB": "webstack->webstack_shadow,other->x"}, "Replicate_Rewrite_DB="),
        ({"Replicate_Rewrite_DB": "other->webstack"}, None),
        ({"Replicate_Ignore_Server_Ids": "1"}, "Replicate_Ignore_Server_Ids=1, the source's own"),
    ],
)
def test_which_filter_leaves_a_table_out(filters, rule):
    found = mysql.filtered_out(filters, "webstack", "guestbook")
    assert found == rule if rule is None else found.startswith(rule)


def test_a_server_that_did_not_start_says_why_in_its_journal():
    state = mysql.server_state(read_raw("mariadb-state-bad-option"))
    assert state.installed == ("/usr/sbin/mariadbd", "/usr/sbin/mysqld")
    assert (state.unit, state.active, state.result) == ("mariadb.service", "failed", "exit-code")
    # the misspelt option, not "Aborting" nor the notes of an earlier, successful start
    assert state.error == "/usr/sbin/mariadbd: unknown variable 'log_eror=/var/log/mysql/error.log'"


def test_a_host_without_the_server_package():
    state = mysql.server_state(read_raw("mariadb-state-not-installed"))
    assert state.installed == () and state.unit == "" and state.error == ""


def test_haproxy_first_alert_keeps_file_and_line():
    out = (
        "[NOTICE]   (916) : haproxy version is 2.6.12-1+deb12u4\n"
        "[ALERT]    (916) : config : parsing [/etc/haproxy/haproxy.cfg:21] : 'bind *:80' in "
        "section 'frontend': unknown keyword 'check'\n"
        "[ALERT]    (916) : config : Fatal errors found in configuration.\n"
    )  # as haproxy 2.6 prints it (recorded on lb-01)
    assert haproxy.first_alert(out).startswith("parsing [/etc/haproxy/haproxy.cfg:21] : 'bind")


def test_nginx_first_error_without_date_and_pid():
    out = (  # `nginx -t` on Debian 12 (nginx 1.22), recorded on web-02 with a bad site
        '2026/11/28 14:51:26 [emerg] 2447#2447: unknown directive "bogus_directive" in '
        "/etc/nginx/sites-enabled/webstack:28\n"
        "nginx: configuration file /etc/nginx/nginx.conf test failed\n"
    )
    assert nginx.first_error(out) == (
        '[emerg] unknown directive "bogus_directive" in /etc/nginx/sites-enabled/webstack:28'
    )


def test_mysql8_replica_status_uses_source_and_replica_names():
    status = mysql.replica_status(read_raw("replica-status-mysql-8.0"))
    assert status.configured and not status.running
    assert status.sql_running == "No" and status.source_host == "192.168.56.11"
    assert status.seconds_behind is None
    assert "Coordinator stopped" in status.last_error


def test_no_replica_status_means_not_configured():
    assert mysql.replica_status("") == mysql.ReplicaStatus(configured=False)
    recorded = mysql.replica_status(read_raw("replica-status-web-02"))
    assert recorded.seconds_behind == 0 and recorded.last_error == ""


def test_the_application_unit_and_its_own_error_line():
    """Recorded on a replica loaded with a dump but never told to read its grant tables."""
    command, output = raw_fixture((RAW / "ps-unit-gunicorn-web-02.txt").read_text())
    assert command == systemd.unit_of(168)
    assert systemd.parse_unit(output) == "webstack-app.service"
    assert systemd.parse_unit("session-3.scope\n") == systemd.parse_unit("-\n") == ""
    assert systemd.unit_of("1; reboot") == "ps -o unit= -p 1"  # a pid reaches no shell raw
    command, journal = raw_fixture((RAW / "journal-app-denied-web-02.txt").read_text())
    assert command == systemd.journal("webstack-app.service", 200, "-60s")
    assert systemd.app_error(journal) == (
        "pymysql.err.OperationalError: (1045, \"Access denied for user 'webstack_read'@"
        "'localhost' (using password: YES)\")"
    )
    # the last line is an access log line (a request answered 500), never the reason
    assert journal.rstrip().splitlines()[-1].endswith('"GET /healthz HTTP/1.0" 200 3 "-" "-"')


def test_the_error_line_without_a_python_traceback():
    access = (
        '127.0.0.1 - - [06/Dec/2026:11:50:31 +0000] "GET /api/guestbook HTTP/1.0" 500 265 "-" "-"'
    )
    assert systemd.app_error(f"{access}\n") == ""
    said = "[ERROR] could not connect to the database: connection refused"
    assert systemd.app_error(f"started\n{said}\n{access}\n") == said
    assert len(systemd.app_error("KeyError: " + "x" * 1000)) == systemd.LONGEST


def test_accounts_in_the_grant_tables_that_the_server_has_not_loaded():
    command, output = raw_fixture((RAW / "accounts-unloaded-web-02.txt").read_text())
    assert shlex.split(command) == shlex.split(mysql.command(mysql.ACCOUNTS))  # the same argv
    assert mysql.unloaded_accounts(output, "webstack_read") == ["'webstack_read'@'localhost'"]
    assert mysql.unloaded_accounts(output, "webstack_write") == []  # in the tables and loaded
    assert mysql.unloaded_accounts(output, "nobody") == []
    error = "(1045, \"Access denied for user 'webstack_read'@'localhost' (using password: YES)\")"
    assert mysql.denied_user(error) == "webstack_read"
    assert mysql.denied_user("(2003, \"Can't connect to MySQL server on '192.168.56.11'\")") is None


HAPROXY_CONFIGS = sorted((Path(__file__).parent / "fixtures" / "haproxy").glob("*.cfg"))


def _as_haproxy_reads(name: str) -> list[dict]:
    """Servers as HAProxy 2.6 read fixtures/haproxy/NAME.cfg (a private copy's `show stat` and
    `show servers state`, recorded on a lab's load balancer: tests.record --haproxy-readings)."""
    sections = haproxy.parse_reading(read_raw(f"haproxy-reading-{name}"))
    return haproxy.running_servers(
        haproxy.parse_show_stat(sections["show stat"]),
        haproxy.parse_servers_state(sections["show servers state"]),
    )


@pytest.mark.parametrize("path", HAPROXY_CONFIGS, ids=[p.stem for p in HAPROXY_CONFIGS])
def test_the_grader_reads_haproxy_cfg_as_haproxy_does(path):
    """Where the grader must parse haproxy.cfg itself (HAProxy could not be asked), its reading
    of each configuration is the one HAProxy itself made of it: defaults sections, `from`,
    server-template, check addr/port, track, backup, disabled."""
    ours = haproxy.configured_servers(haproxy.parse_config(path.read_text()))
    theirs = [{**s, "fall": s["fall"] or None} for s in _as_haproxy_reads(path.stem)]
    assert ours == theirs


def test_haproxy_readings_that_the_old_parser_got_wrong():
    reads = {(s["backend"], s["name"]): s for s in _as_haproxy_reads("defaults-reset")}
    assert reads["web", "web-01"]["balance"] == "roundrobin"  # not the first defaults' source
    named = {(s["backend"], s["name"]): s for s in _as_haproxy_reads("defaults-named")}
    assert named["web", "web-01"]["balance"] == "leastconn"  # through `from site` → `from base`
    assert named["other", "web-01"]["balance"] == "static-rr"  # the last defaults before it
    aimed = {s["name"]: s for s in _as_haproxy_reads("checks-elsewhere")}
    assert (aimed["web-02"]["check_addr"], aimed["web-02"]["check_port"]) == ("192.168.80.11", 80)
    assert aimed["web-04"]["tracked"] == "www/web-01" and not aimed["web-04"]["check"]
    assert aimed["web-05"]["disabled"] and aimed["web-05"]["check"]
    template = [s["name"] for s in _as_haproxy_reads("server-template")]
    assert template == ["web1", "web2", "spare3", "spare4", "last"]


def test_the_private_reading_runs_haproxy_apart_from_the_running_one():
    line = haproxy.private_reading(["/etc/haproxy/haproxy.cfg"], ["/run/haproxy/admin.sock"])
    assert line.startswith("env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin unshare -n -m sh -c ")
    assert "/usr/sbin/haproxy -db -f /etc/haproxy/haproxy.cfg -f /run/lab-reading.cfg" in line
    assert "mount -o remount,bind,ro / || exit 3" in line  # it can change no file
    assert "mount -t tmpfs -o mode=755 lab-reading /run || exit 3" in line  # sockets, pid file
    elsewhere = haproxy.private_reading(["/etc/haproxy/haproxy.cfg"], ["/var/lib/haproxy/stats"])
    assert "[ -d /var/lib/haproxy ] && mount -t tmpfs lab-reading /var/lib/haproxy" in elsewhere
    beside = haproxy.private_reading(["/etc/haproxy/haproxy.cfg"], ["/etc/haproxy/admin.sock"])
    assert "mount -t tmpfs lab-reading /etc/haproxy" not in beside  # it hides no configuration


def test_only_the_lines_the_parser_reads_travel(tmp_path):
    """A 10 MB haproxy.cfg of comments: the shell line that fetches it (run here, with the same
    sh and grep) sends a few hundred bytes, and the parser reads the same configuration."""
    text = read_raw("haproxy-cfg-lb-01") + "# a comment of about a hundred characters\n" * 100_000
    for path in HAPROXY_CONFIGS:
        text += path.read_text().replace("global", "# global")
    (tmp_path / "haproxy.cfg").write_text(text)
    line = haproxy.cat_config([str(tmp_path / "haproxy.cfg")])
    sent = subprocess.run(["sh", "-c", line], capture_output=True, text=True, check=True).stdout
    assert len(sent) < 5000
    assert haproxy.parse_config(sent) == haproxy.parse_config(text)


def test_haproxy_c_warnings_in_its_own_words():
    said = haproxy.warnings(read_raw("haproxy-c-warnings-lb-01"))
    assert said == [
        "parsing [/tmp/w.cfg:13] : 'option httplog' not usable with frontend 'tcpfront' "
        "(needs 'mode http'). Falling back to 'option tcplog'.",
        "'redirect' rules ignored for frontend 'tcpfront' as they require HTTP mode.",
        "'option forwardfor' ignored for frontend 'tcpfront' as it requires HTTP mode.",
    ]
    assert haproxy.warnings(read_raw("haproxy-cfg-lb-01")) == []


def test_udp_relay_candidates_are_read_from_real_ss_and_leave_the_dns_server_out():
    from lab.observe.probes import datagram_candidates

    relay = ss.parse(read_raw("ss-udp-relay-web-02"))
    assert [(s.kind, s.address, s.port, s.pids) for s in relay] == [("udp", "*", 9001, {441})]
    found = datagram_candidates(relay, {441: "/usr/bin/socat"}, "192.168.91.12")
    assert found == {("192.168.91.12", 9001): ["socat"]}
    dns = ss.parse(read_raw("ss-udp-lb-01"))
    assert [(s.address, s.port, s.local_only) for s in dns] == [
        ("127.0.0.1", 53, True),
        ("192.168.91.10", 53, False),
    ]
    assert datagram_candidates(dns, dict.fromkeys((51, 58, 62), "/usr/sbin/nsd"), "x") == {}
    assert set(datagram_candidates(dns, {}, "x")) == {("192.168.91.10", 53)}  # not vouched


def test_relay_candidates_are_the_ports_beyond_loopback_but_the_web_ssh_and_database():
    from lab.observe.probes import relay_candidates

    listeners = ss.parse(read_raw("ss-socat-relay-web-01"))
    nginx = {pid: "/usr/sbin/nginx" for pid in (58, 59, 60)}  # its master and workers
    paths = {57: "/usr/sbin/sshd", 50: "/usr/sbin/mariadbd", 777: "/usr/bin/socat", **nginx}
    found = relay_candidates(listeners, paths, "192.168.214.11", "127.0.0.1:8000")
    # socat's relay, and the application's own port (a port forward needs no listener)
    assert found == {("192.168.214.11", 8001): ["socat"], ("192.168.214.11", 8000): []}
    # a database server that is not the distribution's program is asked like any other
    paths[50] = "/usr/local/sbin/mariadbd"
    found = relay_candidates(listeners, paths, "192.168.214.11", "unix:/run/app.sock")
    assert set(found) == {("192.168.214.11", 8001), ("192.168.214.11", 3306)}
    # the application's own sockets are judged by themselves (app.server: local_only)
    gunicorn = {194, 202, 203}
    public = [ss.Listener("tcp", "*", 8000, (("gunicorn", 194),)), *listeners]
    found = relay_candidates(public, paths, "192.168.214.11", "127.0.0.1:8000", gunicorn)
    assert found == {("192.168.214.11", 8001): ["socat"], ("192.168.214.11", 3306): ["mariadbd"]}
    reference = ss.parse(read_raw("ss-web-01"))
    paths = {53: "/usr/sbin/sshd", 2014: "/usr/sbin/mariadbd"}
    paths |= {pid: "/usr/sbin/nginx" for pid in (1591, 2253, 2254)}
    assert relay_candidates(reference, paths, "192.168.80.11", "unix:/run/app.sock") == {}
    # port 80 held by a program the system does not vouch for as Nginx is asked like any other
    del paths[2254]
    assert set(relay_candidates(reference, paths, "192.168.80.11", "unix:/run/app.sock")) == {
        ("192.168.80.11", 80)
    }


def test_an_answer_is_the_applications_by_its_pid_or_its_signature():
    from lab.observe.probes import answered_by_application

    said = {"host": "web-01", "pid": 203, "request_id": "a"}
    assert answered_by_application({"pid": 202, "request_id": "b"}, {194, 202, 203}, said) == 202
    assert (
        answered_by_application({"host": "web-01", "pid": 9, "request_id": "c"}, set(), said) == 9
    )
    assert answered_by_application({"host": "web-01", "request_id": "c"}, set(), said) == 0
    assert answered_by_application({"pid": "1; id"}, {1}, said) is None
    assert answered_by_application({"host": "web-01"}, set(), said) is None  # no request_id
    assert answered_by_application(None, {202}, said) is None
    assert answered_by_application([202], {202}, said) is None
    # another host's application, whose process has the same pid (each host counts its own)
    assert (
        answered_by_application({"host": "web-02", "pid": 202, "request_id": "d"}, {202}, said)
        is None
    )


def test_uwsgi_ini_files_on_its_command_line():
    assert proc.ini_files("/usr/bin/uwsgi --ini uwsgi.ini") == ["uwsgi.ini"]
    assert proc.ini_files("uwsgi --ini /a.ini --ini=/b.ini:prod /c.ini --master") == [
        "/a.ini",
        "/b.ini",
        "/c.ini",
    ]
    assert proc.ini_files("/usr/bin/gunicorn -c /a.ini app:app") == []


@pytest.mark.parametrize("name", ["tutorial", "guestapp", "mounted"])
def test_uwsgi_ini_is_read_as_uwsgi_reads_it(name):
    """unit/fixtures/uwsgi/NAME.ini as the distribution's uwsgi read it (`--get`, recorded)."""
    path = f"/tmp/lab-uwsgi/{name}.ini"
    text = (Path(__file__).parent / "fixtures" / "uwsgi" / f"{name}.ini").read_text()
    ours = proc.uwsgi_settings(["uwsgi", "--ini", path], [(path, text)])
    theirs = proc.parse_uwsgi_reading(read_raw(f"uwsgi-reading-{name}"))
    assert {k: sorted(v) for k, v in ours.items()} == {k: sorted(v) for k, v in theirs.items()}


def test_uwsgi_entry_points_from_its_own_reading_or_its_ini():
    processes = proc.parse_ps(read_raw("ps-uwsgi-ini-web-01"))  # the master and its 2 workers
    master = proc.eldest(processes)
    assert master.args == "/usr/bin/uwsgi --ini uwsgi.ini" and master.ppid == 1
    assert sorted(p.ppid for p in processes.values()) == [1, master.pid, master.pid]
    reading = proc.parse_uwsgi_reading(read_raw("uwsgi-reading-web-01"))
    assert reading == {"chdir": ["/srv/webstack/app"], "wsgi-file": ["app.py"]}
    assert proc.entry_candidates(master.args, "/srv/webstack/app", uwsgi=reading) == [
        "/srv/webstack/app/app.py"
    ]
    ini = [("/etc/webstack/uwsgi.ini", read_raw("uwsgi-ini-web-01"))]  # uwsgi not asked
    assert proc.entry_candidates(master.args, "/", inis=ini) == ["/srv/webstack/app/app.py"]
    mounted = {"mount": ["/=site.wsgi:application"], "pythonpath": ["lib"]}
    assert proc.entry_candidates("uwsgi x.ini", "/s", uwsgi=mounted) == [
        "/s/site/wsgi.py",
        "/s/site/wsgi/__init__.py",
        "/s/lib/site/wsgi.py",
        "/s/lib/site/wsgi/__init__.py",
    ]
    assert proc.entry_candidates("uwsgi --ini /etc/u.ini", "/x") == []  # nothing read
    assert proc.entry_candidates("uwsgi --ini a.ini --module w:app", "/x", uwsgi={}) == [
        "/x/w.py",
        "/x/w/__init__.py",
    ]


def test_uwsgi_reading_quotes_the_command_line():
    command = proc.uwsgi_reading("/usr/bin/uwsgi --ini $(id).ini", "/srv/a b")
    assert command.startswith("cd '/srv/a b' && ") and "'$(id).ini'" in command
    assert "/usr/bin/uwsgi-core --ini '$(id).ini' --get \"$o\"" in command


def prometheus_data(name: str) -> dict:
    """The data of a recorded reply of Prometheus's API (status line, headers, JSON body)."""
    return prometheus.reply_data(read_raw(name))


def test_prometheus_is_found_by_the_process_holding_the_socket():
    listeners = ss.parse(read_raw("ss-prometheus-lb-01"))
    assert prometheus.endpoint(listeners) == ("127.0.0.1:9090", ["prometheus"])
    fake = [ss.Listener("tcp", "*", 9090, (("python3", 812),))]
    assert prometheus.endpoint(fake) == (None, ["python3"])
    bound = [ss.Listener("tcp", "192.168.205.10", 9099, (("prometheus", 90),))]
    assert prometheus.endpoint(bound) == ("192.168.205.10:9099", [])


def test_prometheus_replies_parse():
    targets = prometheus.parse_targets(prometheus_data("prometheus-targets-lb-01"))
    assert {t["url"] for t in targets} >= {
        "http://192.168.205.12:9100/metrics",
        "http://192.168.205.10:8405/metrics",
    }
    assert all(t["health"] == "up" for t in targets)
    rules = prometheus.parse_rules(prometheus_data("prometheus-rules-lb-01"))
    assert [r["name"] for r in rules][:2] == ["WebServerOutOfRotation", "ReplicationStopped"]
    assert all(r["health"] == "ok" for r in rules)
    (alert,) = prometheus.parse_alerts(prometheus_data("prometheus-alerts-firing-lb-01"))
    assert alert["state"] == "firing" and alert["labels"]["server"] == "web-02"
    assert prometheus.instances(prometheus_data("prometheus-query-node-down-lb-01")) == [
        "192.168.205.10:9100",
        "192.168.205.11:9100",
    ]
    assert prometheus.instances(prometheus_data("prometheus-query-haproxy-lb-01")) == [
        "192.168.205.10:8405"
    ]
    assert len(prometheus.instances(prometheus_data("prometheus-query-node-lb-01"))) == 3


def test_a_prometheus_reply_that_is_no_api_answer_says_what_came_back():
    for raw, first in [
        (
            "HTTP/1.0 404 Not Found\r\nContent-Type: text/plain\r\n\r\n404 page not found\n",
            "HTTP/1.0 404 Not Found",
        ),
        ('HTTP/1.0 200 OK\r\n\r\n{"status":"error","error":"bad_data"}', "HTTP/1.0 200 OK"),
        ("cannot connect to 127.0.0.1:9090: Connection refused\n", "cannot connect to"),
        ("", "no answer"),
    ]:
        with pytest.raises(prometheus.NoAnswer, match=f"^{first}"):
            prometheus.reply_data(raw)


def test_scrape_urls_give_their_host_and_port():
    assert prometheus.target_host("http://192.168.205.12:9100/metrics") == ("192.168.205.12", 9100)
    assert prometheus.target_host("http://192.168.205.12:x/metrics") == ("", None)  # no raise


def test_prometheus_times_are_read_to_the_second_and_below():
    """runtimeinfo's startTime (nanoseconds) and lastConfigTime (whole seconds), both UTC."""
    assert prometheus.epoch_seconds("2026-11-29T03:22:50Z") == 1795922570.0
    started = prometheus.epoch_seconds("2026-11-29T03:22:46.520074759Z")
    assert abs(started - 1795922566.520074759) < 1e-6
    for odd in ("", "0001-01-01", "2026-11-29 03:22:50", "2026-11-29T03:22:50+01:00", None):
        assert prometheus.epoch_seconds(odd) is None, odd


def test_request_counters_are_summed_from_the_exporter_text():
    text = (
        "# TYPE haproxy_frontend_http_requests_total counter\n"
        'haproxy_frontend_http_requests_total{proxy="web"} 17\n'
        'haproxy_frontend_http_requests_total{proxy="stats"} 3\n'
        'haproxy_frontend_http_requests_rate_max{proxy="web"} 9\n'
    )
    assert prometheus.counter_total(text, "haproxy_frontend_http_requests_total") == 20
    assert prometheus.counter_total("", "haproxy_frontend_http_requests_total") is None


CONDITIONAL = """# configuration file /etc/nginx/sites-enabled/webstack:
server {
    listen 80 default_server;
    root /srv/webstack/app/static;
    location = / {
        if ($http_x_forwarded_for) {
            rewrite ^ /static/index.html break;
            proxy_pass http://127.0.0.1:8000;
        }
        try_files /index.html =404;
    }
    location /static/ { alias /srv/webstack/app/static/; }
}
"""


def test_a_location_that_passes_some_requests_on_says_so():
    """`if ($http_x_forwarded_for) { proxy_pass ... }`: visitors who come through the balancer
    get the application, the grader's direct requests the file."""
    assert nginx.location_for(CONDITIONAL, "www.foobar.com", "/") == (
        "= /",
        ["proxy_pass http://127.0.0.1:8000 (in if ($http_x_forwarded_for))"],
    )
    assert nginx.location_for(CONDITIONAL, "www.foobar.com", "/static/a.css") == ("/static/", [])


def test_a_server_whose_checks_go_through_a_socks4_proxy_says_where():
    config = haproxy.parse_config(
        "backend web\n    default-server socks4 127.0.0.1:1080\n"
        "    server web-01 192.168.56.11:80 check check-via-socks4\n"
        "    server web-02 192.168.56.12:80 check\n"
    )
    first, second = config.backends[0].servers
    assert first.check_via == "127.0.0.1:1080" and second.check_via == ""


def test_a_replica_that_ignores_its_sources_own_events_says_so():
    """IGNORE_SERVER_IDS holding the source's id skips every change it makes; other ids are
    no filter of this design's."""
    recorded = read_raw("replica-status-web-02")
    source = next(
        line.split(":", 1)[1].strip()
        for line in recorded.splitlines()
        if line.strip().startswith("Master_Server_Id:")
    )
    ignoring = recorded.replace(
        "Replicate_Ignore_Server_Ids: ", f"Replicate_Ignore_Server_Ids: {source}"
    )
    assert mysql.replica_status(ignoring).filters == (("Replicate_Ignore_Server_Ids", source),)
    other = recorded.replace("Replicate_Ignore_Server_Ids: ", "Replicate_Ignore_Server_Ids: 99")
    assert mysql.replica_status(other).filters == ()
