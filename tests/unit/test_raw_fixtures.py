"""Each recorded raw fixture was made by the command the grader runs today, not only parsed by
today's parser: a fact whose command changed must have its fixtures recorded again
(`python -m tests.record --raw NAME HOST COMMAND`, the command printed by the failure)."""

import re
import shlex
from fnmatch import fnmatch

from lab.facts import dns, haproxy, http, ipaddr, mysql, nginx, proc, ss, systemd, vrrp
from lab.grading import leftovers
from lab.observe.live import SCRATCH_DB
from tests.record import HAPROXY_CONFIGS, RAW, UWSGI_CONFIGS, haproxy_reading, raw_fixture
from tests.record import uwsgi_reading as record_uwsgi_reading


def pids(command: str) -> list[str]:
    """The process ids a recorded `ps -p` or `ps -C` command was about."""
    found = re.search(r"-p (\d[\d,]*)$", command)
    return found.group(1).split(",") if found else []


def prometheus(command: str) -> str:
    """Today's request to Prometheus's HTTP API for the query the fixture recorded."""
    query = re.search(r"(/api/v1/[^\s\"']+)", command)
    return http.get("127.0.0.1:9090", query.group(1) if query else "", "localhost") + " 2>&1"


W_CFG = "/tmp/w.cfg"
TCP_FRONTEND = (
    f"cp {haproxy.DEFAULT_CONFIG} {W_CFG} && printf "
    '"\\nfrontend tcpfront\\n    mode tcp\\n    bind 127.0.0.1:8999\\n'
    '    redirect prefix http://x code 301\\n    default_backend web\\n" '
    f">> {W_CFG} && "
)
# fixture name pattern → today's command from the recorded one (first match wins)
TODAY = {
    "access-log-*": lambda c: f"tail -n 16 {nginx.DEFAULT_ACCESS_LOG}",  # a sample of the log
    "accounts-unloaded-*": lambda c: mysql.command(mysql.ACCOUNTS),
    "getent-*": lambda c: dns.getent(re.findall(r'echo "= ([^"]+)"', c)),
    "haproxy-cfg-*": lambda c: haproxy.cat_config([haproxy.DEFAULT_CONFIG]),
    "leftover-processes-*": lambda c: leftovers.COMMAND,
    "haproxy-c-warnings-*": lambda c: (
        TCP_FRONTEND + haproxy.check_config([W_CFG]) + f"; rm -f {W_CFG}"
    ),
    "haproxy-reading-*": lambda c: "",  # by name, below
    "ip-addr-*": lambda c: ipaddr.ADDRESSES,
    "journal-app-denied-*": lambda c: systemd.journal("webstack-app.service", 200, "-60s"),
    "mariadb-state-*": lambda c: mysql.SERVER_STATE,
    "nginx-T-*": lambda c: nginx.DUMP,
    "prometheus-*": prometheus,
    "ps-haproxy-*": lambda c: haproxy.PROCESSES,
    "ps-unit-*": lambda c: systemd.unit_of(c.rsplit(" ", 1)[-1]),
    "ps-units-*": lambda c: proc.UNITS,
    "ps-*": lambda c: proc.ps(pids(c)),
    "replica-status-*": lambda c: mysql.REPLICA_STATUS,
    "replicate-variables-*": lambda c: mysql.FILTER_VARIABLES,
    "show-stat-*": lambda c: haproxy.runtime_api("show stat", "/run/haproxy/admin.sock"),
    "ss-udp-*": lambda c: ss.BOUND_UDP,
    "ss-*": lambda c: ss.LISTENING,
    "text-columns-*": lambda c: mysql.command(mysql.text_columns((SCRATCH_DB,))),
    "uwsgi-ini-*": lambda c: "head -c 65536 -- /etc/webstack/uwsgi.ini",
    "uwsgi-reading-web-01": lambda c: proc.uwsgi_reading(
        "/usr/bin/uwsgi --ini uwsgi.ini", "/etc/webstack"
    ),
    "uwsgi-reading-*": lambda c: "",  # by name, below
    "vrrp-*": lambda c: f"{vrrp.ADDRESSES}; echo ---; {vrrp.RAW_SOCKETS}",  # both, one fixture
}


def today(name: str, recorded: str) -> str | None:
    """The command the grader would run today for the fixture name; None: no fact claims it."""
    if fnmatch(name, "haproxy-reading-*"):
        return haproxy_reading(HAPROXY_CONFIGS / f"{name.removeprefix('haproxy-reading-')}.cfg")
    if fnmatch(name, "uwsgi-reading-*") and name != "uwsgi-reading-web-01":
        return record_uwsgi_reading(UWSGI_CONFIGS / f"{name.removeprefix('uwsgi-reading-')}.ini")
    for pattern, command in TODAY.items():
        if fnmatch(name, pattern):
            return command(recorded)
    return None


def same_argv(one: str, other: str) -> bool:
    """Whether two shell lines are the same words (quoted one way or another)."""
    try:
        return shlex.split(one) == shlex.split(other)
    except ValueError:
        return one == other


def test_every_raw_fixture_was_made_by_the_command_its_fact_runs_today():
    stale = {}
    for path in sorted(RAW.glob("*.txt")):
        recorded = raw_fixture(path.read_text())[0]
        wanted = today(path.stem, recorded)
        assert wanted is not None, f"{path.name}: no fact's command named in TODAY"
        if not same_argv(recorded, wanted):
            stale[path.stem] = (recorded[:160], wanted[:160])
    assert not stale, stale  # (recorded, today's) of each: record it again
