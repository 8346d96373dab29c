"""The fact parsers on outputs recorded from real hosts (tests/unit/fixtures/raw)."""

from facts import dns, haproxy, mysql, nginx, proc, ss
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
        ("192.168.80.11", 80, True, False),
        ("192.168.80.12", 80, True, False),
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
    found = haproxy.servers_at(rows, {"one": "192.168.80.11", "two": "192.168.80.12"})
    assert set(found) == {"one", "two"}
    assert all(haproxy.server_up(r) for r in found.values())
    assert haproxy.servers_at(rows, {"x": "192.168.80.99"}) == {}
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
    assert status.running and status.source_host == "192.168.80.11"
    columns = mysql.parse_columns(read_raw("text-columns-web-01"))
    assert {str(c) for c in columns} >= {"webstack.guestbook.message", "webstack.guestbook.name"}
    sql = mysql.search(columns[:1], ["lab-check-00ff"])
    assert "LIKE '%lab-check-00ff%'" in sql and "`webstack`.`guestbook`" in sql
    assert mysql.parse_found("webstack.guestbook.message\tlab-check-00ff\n") == {
        "lab-check-00ff": "webstack.guestbook.message"
    }
    assert mysql.ident("a`b") == "`a``b`" and mysql.literal("it's") == "'it''s'"


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
