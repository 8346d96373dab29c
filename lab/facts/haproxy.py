"""HAProxy: its configuration as it is on disk, its command line, and its runtime API."""

from __future__ import annotations

import csv
import io
import posixpath
import re
import shlex
from dataclasses import dataclass, field
from typing import TypedDict

from lab.facts import dns
from lab.remote.quoting import perl, quote

DEFAULT_CONFIG = "/etc/haproxy/haproxy.cfg"
PROCESSES = "ps -C haproxy -o pid=,ppid=,args="
INSTALLED = "dpkg-query -W -f='${Status}' haproxy 2>/dev/null; echo"


def parse_installed(output: str) -> bool:
    """Whether dpkg says the haproxy package is installed ("install ok installed")."""
    return output.strip().endswith(" installed")


SECTIONS = {
    "global", "defaults", "frontend", "backend", "listen", "resolvers", "peers", "userlist",
    "mailers", "program", "http-errors", "ring", "cache",
}  # fmt: skip
ROUND_ROBIN = ("roundrobin", "static-rr")


def runtime_api(command: str, socket: str) -> str:
    """A shell line sending command to HAProxy's runtime API (perl is on every Debian server)."""
    script = (
        '$s = IO::Socket::UNIX->new(Peer => $ARGV[0]) or die "cannot open $ARGV[0]\\n";'
        " print $s <STDIN>; print while <$s>;"
    )
    return f"echo {quote(command)} | {perl(script, 'IO::Socket::UNIX')} {quote(socket)}"


def process_ids(ps_output: str) -> list[str]:
    """The pids of PROCESSES' output."""
    return [line.split()[0] for line in ps_output.splitlines() if line.split()]


def instance_pids(ps_output: str) -> set[int]:
    """The pids of PROCESSES' output that run the configuration config_files names (a master
    and its workers share its command line): not those of a second instance of HAProxy."""
    files = config_files(ps_output)
    found = set()
    for line in ps_output.splitlines():
        fields = line.split()
        args = fields[2:]
        paths = [args[i + 1] for i, arg in enumerate(args[:-1]) if arg == "-f"] or [DEFAULT_CONFIG]
        if fields and fields[0].isdigit() and paths == files:
            found.add(int(fields[0]))
    return found


def config_files(ps_output: str) -> list[str]:
    """The -f arguments of the running HAProxy (files or directories), else the default."""
    for line in ps_output.splitlines():
        args = line.split()[2:]
        paths = [args[i + 1] for i, arg in enumerate(args[:-1]) if arg == "-f"]
        if paths:
            return paths
    return [DEFAULT_CONFIG]


HAPROXY = "/usr/sbin/haproxy"  # the distribution's program, never one found on a PATH
KEYWORDS = (
    *("stats", "balance", "default-server", "server", "server-template", "use-server"),
    *("tcp-check", "http-check", "default_backend", "use_backend"),
)
LONGEST_CHECK_OUTPUT = 200  # lines of `haproxy -c` kept (a config can warn on every line)


def cat_config(paths: list[str]) -> str:
    """A shell line printing the lines of every configuration file (a directory: its *.cfg
    files, sorted) that parse_config reads: section headers and the keywords it needs. Comments
    and everything else stay on the host (a 10 MB file of comments must not travel)."""
    parts = [
        f"if [ -d {quote(p)} ]; then cat {quote(p)}/*.cfg; else cat {quote(p)}; fi" for p in paths
    ]
    words = "|".join(sorted(SECTIONS) + list(KEYWORDS))
    pattern = f"^[[:space:]]*({words})([[:space:]]|$)"
    return "{ " + "; ".join(parts) + "; } | grep -E " + quote(pattern) + "; true"


def check_config(paths: list[str]) -> str:
    """`haproxy -c` on the configuration files in place, its first lines, then `exit=CODE`."""
    files = " ".join(f"-f {quote(p)}" for p in paths)
    return (
        f'{{ {HAPROXY} -c {files} 2>&1; echo "exit=$?"; }} '
        f"| awk 'NR <= {LONGEST_CHECK_OUTPUT} || /^exit=/'"
    )


READING = "/run/lab-reading"  # in the private copy's own /run: nothing outside sees it


def private_reading(paths: list[str], sockets: list[str] = ()) -> str:
    """A shell line that starts a throwaway copy of HAProxy on the configuration files and asks
    it how it reads them (`show stat`, `show servers state` on a stats socket of its own), then
    kills it. The copy runs in network and mount namespaces of its own: its binds cannot clash
    with the running HAProxy (any address may be bound there), every file system is read-only to
    it, and its sockets, pid file and logs land in a private /run (and in a private directory
    wherever else the configuration puts a stats socket). Sections of the output start with `@@ `.
    """
    files = " ".join(f"-f {quote(p)}" for p in paths)
    dirs = sorted({posixpath.dirname(s) for s in sockets} - {"/", "/run"})
    dirs = [d for d in dirs if not any(f"{p}/".startswith(f"{d}/") for p in paths)]
    ask = "; ".join(
        f"echo '@@ {c}'; " + runtime_api(c, f"{READING}.sock") + " 2>&1"
        for c in ("show stat", "show servers state")
    )
    script = (
        "echo 1 > /proc/sys/net/ipv4/ip_nonlocal_bind; "
        "echo 1 > /proc/sys/net/ipv6/ip_nonlocal_bind 2>/dev/null; ip link set lo up; "
        "mount -o remount,bind,ro / || exit 3; "
        "for m in $(awk '$2 !~ \"^/(proc|sys|dev)(/|$)\" {print $2}' /proc/self/mounts); "
        'do mount -o remount,bind,ro "$m" 2>/dev/null; done; '
        "mount -t tmpfs -o mode=755 lab-reading /run || exit 3; "
        + "".join(
            f"[ -d {quote(d)} ] && mount -t tmpfs lab-reading {quote(d)}; " * (d[:5] != "/run/")
            + f"mkdir -p {quote(d)}; "
            for d in dict.fromkeys(["/run/haproxy", *dirs])
        )
        + f"printf 'global\\n    stats socket {READING}.sock mode 600 level admin\\n' "
        f"> {READING}.cfg; "
        f"{HAPROXY} -db {files} -f {READING}.cfg > {READING}.log 2>&1 & pid=$!; i=0; "
        f"while [ $i -lt 50 ] && [ ! -S {READING}.sock ] && kill -0 $pid 2>/dev/null; "
        "do sleep 0.1; i=$((i+1)); done; "
        f"{ask}; kill $pid 2>/dev/null; wait $pid; "
        f"echo '@@ log'; grep -E '^\\[(ALERT|WARNING)\\]' {READING}.log | head -n 20"
    )
    return "env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin unshare -n -m sh -c " + quote(script)


def parse_reading(text: str) -> dict[str, str]:
    """The sections of private_reading's output by name ("show stat", "show servers state",
    "log")."""
    found, name = {}, None
    for line in text.splitlines(keepends=True):
        if line.startswith("@@ "):
            name = line[3:].strip()
            found[name] = ""
        elif name is not None:
            found[name] += line
    return found


@dataclass(frozen=True)
class Server:
    """A `server` line of a backend, with the default-server options before it."""

    name: str
    host: str
    port: int | None
    options: tuple[str, ...]

    @property
    def checked(self) -> bool:
        switches = [o for o in self.options if o in ("check", "no-check")]
        return bool(switches) and switches[-1] == "check"  # the last one given wins

    @property
    def backup(self) -> bool:
        return "backup" in self.options

    @property
    def disabled(self) -> bool:
        return "disabled" in self.options

    @property
    def check_via(self) -> str:
        """The proxy its health checks go through (`check-via-socks4`: the `socks4` address),
        '' when they go straight to the server."""
        if "check-via-socks4" not in self.options:
            return ""
        return self.option("socks4") or "a SOCKS4 proxy"

    def option(self, name: str) -> str | None:
        """The value of an option such as inter (the last one given)."""
        values = [self.options[i + 1] for i, o in enumerate(self.options[:-1]) if o == name]
        return values[-1] if values else None


@dataclass
class Backend:
    """A backend or listen section: its balance algorithm and servers."""

    kind: str
    name: str
    balance: str = "roundrobin"
    servers: list[Server] = field(default_factory=list)
    defaults: dict = field(default_factory=dict, repr=False)  # its defaults section's values
    connects: list[tuple[str, int]] = field(default_factory=list)  # (addr, port) check rules
    chooses: list[str] = field(default_factory=list)  # `use-server` rules, as written

    @property
    def check_connects(self) -> list[tuple[str, int]]:
        """Where its health checks connect (its own rules, else its defaults section's)."""
        return self.connects or list(self.defaults.get("connects", ()))


@dataclass
class Config:
    """What the grader needs from haproxy.cfg."""

    sockets: list[str] = field(default_factory=list)
    backends: list[Backend] = field(default_factory=list)
    frontends: list[str] = field(default_factory=list)
    routes: set[str] | None = field(default_factory=set)  # backends frontends name (None: any)

    def routed(self, backend: Backend) -> bool:
        """Whether a frontend can send requests to backend (a listen section takes its own)."""
        return backend.kind == "listen" or self.routes is None or backend.name in self.routes


def check_connect(words: list[str]) -> tuple[str, int] | None:
    """The (addr, port) of a `tcp-check connect` / `http-check connect` rule ('' and 0: the
    server's own), or None for another line."""
    if len(words) < 2 or words[0] not in ("tcp-check", "http-check") or words[1] != "connect":
        return None
    options = {words[i]: words[i + 1] for i in range(2, len(words) - 1)}
    port = options.get("port", "")
    return options.get("addr", ""), int(port) if port.isdigit() else 0


def _rule(config: Config, defaults: dict | None, proxy: Backend | None, words: list[str]) -> bool:
    """Note a routing or health-check rule (of a defaults section or a proxy); False when the
    line is none."""
    connect = check_connect(words)
    if words[0] in ("default_backend", "use_backend"):
        _route(config, words)
    elif connect and defaults is not None:
        defaults["connects"] = (*defaults.get("connects", ()), connect)
    elif connect and proxy is not None:
        proxy.connects.append(connect)
    elif words[0] == "use-server" and proxy is not None:
        proxy.chooses.append(" ".join(words))
    else:
        return False
    return True


def _route(config: Config, words: list[str]) -> None:
    """Note the backend a `default_backend`/`use_backend` line names (a name built from the
    request, %[...], may be any backend)."""
    if len(words) < 2:
        return
    if "%" in words[1] or config.routes is None:
        config.routes = None
    else:
        config.routes.add(words[1])


def _tokens(line: str) -> list[str]:
    try:
        return shlex.split(line, comments=True)
    except ValueError:
        return line.split("#", 1)[0].split()


def _section(words: list[str]) -> tuple[str, str]:
    """(name, defaults section it names with `from`) of a section header."""
    rest = words[1:]
    base = rest[rest.index("from") + 1] if "from" in rest[:-1] else ""
    name = rest[0] if rest and rest[0] != "from" else ""
    return name, base


def _template_names(prefix: str, count: str) -> list[str]:
    """The servers `server-template PREFIX COUNT` makes: PREFIX1..PREFIXn, or a range a-b."""
    low, _, high = count.partition("-")
    if not low.isdigit() or not (high or low).isdigit():
        return []
    first, last = (int(low), int(high)) if high else (1, int(low))
    return [f"{prefix}{i}" for i in range(first, min(last, first + 999) + 1)]


def algorithm(word: str) -> str:
    """A `balance` algorithm as `show stat` names it: hdr(Host) is hdr."""
    return word.split("(", 1)[0]


def parse_config(text: str) -> Config:
    """haproxy.cfg as sections: stats sockets, backends with servers, balance and defaults.

    Each `defaults` section starts from HAProxy's own defaults (or, with `from NAME`, from the
    named one); a proxy takes the last defaults section before it, or the one it names."""
    config = Config()
    kind, current = "", None
    builtin = {"balance": "roundrobin", "server": ()}
    last, named = builtin, {}
    section_server: tuple[str, ...] = ()
    for line in text.splitlines():
        if line.lstrip()[:1] in ("", "#"):
            continue
        words = _tokens(line)
        if not words:
            continue
        if words[0] in SECTIONS:
            kind, current = words[0], None
            name, base = _section(words)
            section_server = ()
            if kind == "defaults":
                last = dict(named.get(base, builtin) if base else builtin)
                if name:
                    named[name] = last
            elif kind in ("backend", "listen"):
                current = Backend(kind, name, named.get(base, last)["balance"])
                current.defaults = named.get(base, last)
                config.backends.append(current)
            if kind in ("frontend", "listen"):
                config.frontends.append(name)
            continue
        if kind == "global" and words[:2] == ["stats", "socket"] and len(words) > 2:
            path = words[2].removeprefix("unix@")
            if path.startswith("/"):
                config.sockets.append(path)
        elif kind == "defaults" and words[0] == "balance" and len(words) > 1:
            last["balance"] = algorithm(words[1])
        elif kind == "defaults" and words[0] == "default-server":
            last["server"] += tuple(words[1:])  # default-server lines add up, later wins
        elif _rule(config, last if kind == "defaults" else None, current, words):
            continue
        elif current is not None and words[0] == "balance" and len(words) > 1:
            current.balance = algorithm(words[1])
        elif current is not None and words[0] == "default-server":
            section_server += tuple(words[1:])
        elif current is not None and words[0] in ("server", "server-template"):
            current.servers += _servers(words, current.defaults["server"] + section_server)
    return config


def _servers(words: list[str], defaults: tuple[str, ...]) -> list[Server]:
    """The servers a `server` or `server-template` line makes, default-server options first."""
    names, where, options = words[1:2], words[2:3], words[3:]
    if words[0] == "server-template":
        names, where, options = _template_names(*words[1:3]), words[3:4], words[4:]
    if not names or not where:
        return []
    host, _, port = where[0].rpartition(":") if ":" in where[0] else (where[0], "", "")
    number = int(port) if port.isdigit() else None
    return [Server(name, host.strip("[]"), number, defaults + tuple(options)) for name in names]


def parse_show_stat(text: str) -> list[dict[str, str]]:
    """HAProxy's `show stat` CSV as dicts (the header line starts with '# ')."""
    return list(csv.DictReader(io.StringIO(text.lstrip("# "))))


def parse_servers_state(text: str) -> list[dict[str, str]]:
    """HAProxy's `show servers state` (a version line, a `# ` header, rows split on spaces)."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("# be_id")), None)
    if start is None:
        return []
    header = lines[start][2:].split()
    rows = [line.split() for line in lines[start + 1 :]]
    return [dict(zip(header, row, strict=True)) for row in rows if len(row) == len(header)]


class ServerRow(TypedDict):
    """A server as HAProxy reads the configuration (running_servers) or the grader does
    (configured_servers)."""

    backend: str
    balance: str  # its backend's algorithm ('' when HAProxy did not say)
    name: str
    host: str  # as configured: an address or a name
    port: int | None
    check: bool
    backup: bool
    disabled: bool
    fall: str | None  # None: not health-checked (or HAProxy did not say)
    check_addr: str  # where health checks go ('': the server's own address)
    check_port: int  # 0: the server's own port
    tracked: str  # the server whose checks it follows ('': none)


CHECK_CONFIGURED = 0x02  # srv_check_state of `show servers state`: HAProxy's CHK_ST_CONFIGURED


def checked(stat_row: dict[str, str], state_row: dict[str, str]) -> bool:
    """Whether HAProxy health-checks the server (a disabled one's checks are only paused)."""
    state = state_row.get("srv_check_state", "")
    if state.isdigit():
        return bool(int(state) & CHECK_CONFIGURED)
    return bool(stat_row.get("check_status"))


def running_servers(stat: list[dict[str, str]], state: list[dict[str, str]]) -> list[ServerRow]:
    """Every server as HAProxy reads its configuration: backend, balance algorithm, address,
    port, health checks (and where they go), backup, disabled, tracked (`show stat` rows joined
    with `show servers state` rows by backend and server name)."""
    algorithms = {r["pxname"]: r.get("algo", "") for r in stat if r.get("svname") == "BACKEND"}
    states = {(r["be_name"], r["srv_name"]): r for r in state}
    found = []
    for row in stat:
        if row.get("svname") in ("FRONTEND", "BACKEND"):
            continue
        more = states.get((row["pxname"], row["svname"]), {})
        host, _, port = row.get("addr", "").rpartition(":")
        check_addr = more.get("srv_check_addr", "-")
        check_port = more.get("srv_check_port", "0")
        found.append(
            {
                "backend": row["pxname"],
                "balance": algorithms.get(row["pxname"], ""),
                "name": row["svname"],
                "host": more.get("srv_addr") or host.strip("[]"),
                "port": int(port) if port.isdigit() else None,
                "check": checked(row, more),
                "backup": row.get("bck") == "1",
                "disabled": row.get("status", "").startswith("MAINT"),
                "fall": row.get("check_fall") or None,
                "check_addr": "" if check_addr == "-" else check_addr,
                "check_port": int(check_port) if check_port.isdigit() else 0,
                "tracked": row.get("tracked", ""),
            }
        )
    return found


def configured_servers(config: Config) -> list[ServerRow]:
    """Every server as the grader reads the configuration files itself, in running_servers'
    shape (for when HAProxy cannot be asked), with HAProxy's default fall of 3."""
    return [
        {
            "backend": backend.name,
            "balance": backend.balance,
            "name": server.name,
            "host": server.host,
            "port": server.port,
            "check": server.checked,
            "backup": server.backup,
            "disabled": server.disabled,
            "fall": (
                (server.option("fall") or "3") if server.checked and not server.disabled else None
            ),
            "check_addr": server.option("addr") or "",
            "check_port": int(p) if (p := server.option("port") or "").isdigit() else 0,
            "tracked": server.option("track") or "",
        }
        for backend in config.backends
        for server in backend.servers
    ]


def servers_at(rows: list[dict[str, str]], addresses: dict[str, str]) -> dict[str, dict]:
    """`show stat` server rows by host name, matched by address (host → IP), never by name."""
    found = {}
    for row in _rows_at(rows, addresses):
        found.setdefault(_host_of(row, addresses), row)
    return found


def counted_at(
    rows: list[dict[str, str]], addresses: dict[str, str], counter: str = "stot"
) -> dict[str, int]:
    """A counter of the server rows at each host's address (sessions: stot), over every
    backend."""
    found = dict.fromkeys(addresses, 0)
    for row in _rows_at(rows, addresses):
        found[_host_of(row, addresses)] += (
            int(row[counter]) if row.get(counter, "").isdigit() else 0
        )
    return found


def sessions_at(rows: list[dict[str, str]], addresses: dict[str, str]) -> dict[str, int]:
    """Sessions (stot) of the server rows at each host's address, over every backend."""
    return counted_at(rows, addresses)


# what HAProxy did to a web server when this `show stat` counter grew
MOVES = {
    "chkdown": "took {host} out of the rotation {n} time(s) on failed health checks",
    "wretr": "retried {n} connection(s) to {host}",
    "wredis": "redispatched {n} request(s) meant for {host}",
}


def moves(
    before: list[dict[str, str]],
    after: list[dict[str, str]],
    addresses: dict[str, str],
    requests: int,
) -> list[str]:
    """What moved the turns between two `show stat` readings around `requests` requests, in
    words: a web server taken out of the rotation, a connection retried or redispatched, more
    sessions than those requests (other visitors'), HAProxy started again (its counters fell
    back); [] when nothing did."""
    was, now = sessions_at(before, addresses), sessions_at(after, addresses)
    if any(now[host] < n for host, n in was.items()):
        return ["started again meanwhile (its counters began anew)"]
    said = []
    for counter, words in MOVES.items():
        grown = counted_at(after, addresses, counter)
        for host, n in counted_at(before, addresses, counter).items():
            if grown[host] > n:
                said.append(words.format(host=host, n=grown[host] - n))
    said += changed_states(before, after, addresses)
    others = sum(sessions_at(after, addresses).values()) - sum(
        sessions_at(before, addresses).values()
    )
    if others > requests:
        said.append(f"took {others - requests} request(s) from other visitors")
    return said


def changed_states(
    before: list[dict[str, str]], after: list[dict[str, str]], addresses: dict[str, str]
) -> list[str]:
    """Server rows at the web servers' addresses whose state changed between two `show stat`
    readings, in words: a server that came back into the rotation meanwhile took no turns before.
    """
    was = {(r["pxname"], r["svname"]): r for r in _rows_at(before, addresses)}
    said = []
    for row in _rows_at(after, addresses):
        old = was.get((row["pxname"], row["svname"]), {}).get("status", "")
        if old and old != row.get("status", ""):
            said.append(f"saw {_host_of(row, addresses)} go from {old} to {row.get('status', '')}")
    return said


def _ip(row: dict[str, str]) -> str:
    """The address of a `show stat` row's server, without its port."""
    return dns.plain(row.get("addr", "").rpartition(":")[0].strip("[]"))


def _host_of(row: dict[str, str], addresses: dict[str, str]) -> str:
    """The host whose address a `show stat` server row has (the first, if two share it)."""
    return next(h for h, a in addresses.items() if _ip(row) == a)


def _rows_at(rows: list[dict[str, str]], addresses: dict[str, str]) -> list[dict[str, str]]:
    """The server rows (not FRONTEND or BACKEND) at one of the addresses."""
    return [
        r
        for r in rows
        if _ip(r) in addresses.values() and r.get("svname") not in ("FRONTEND", "BACKEND")
    ]


def backend_sessions(rows: list[dict[str, str]]) -> dict[str, int]:
    """Sessions (stot) of each backend, by name (its BACKEND row)."""
    return {
        r["pxname"]: int(r["stot"]) if r.get("stot", "").isdigit() else 0
        for r in rows
        if r.get("svname") == "BACKEND"
    }


def server_up(row: dict[str, str]) -> bool:
    """UP with a completed health check (not the initial state before the first check)."""
    return row.get("status", "").startswith("UP") and not row.get("check_status", "").startswith(
        "INI"
    )


def warnings(check_output: str) -> list[str]:
    """The [WARNING] lines of `haproxy -c`, without their prefix (file and line stay)."""
    return [
        re.sub(r"^\[WARNING\]\s*(\(\d+\))?\s*:\s*(config\s*:\s*)?", "", line).strip()
        for line in check_output.splitlines()
        if line.startswith("[WARNING]")
    ]


def first_alert(check_output: str) -> str:
    """The first [ALERT] of `haproxy -c`, without its prefix (file and line stay)."""
    for line in check_output.splitlines():
        if line.startswith("[ALERT]"):
            return re.sub(r"^\[ALERT\]\s*(\(\d+\))?\s*:\s*(config\s*:\s*)?", "", line).strip()
    return ""


_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600, "d": 86400}


def seconds(value: str | None, default: float) -> float:
    """An HAProxy time value ('1s', '500', '2m'; bare numbers are milliseconds) in seconds."""
    match = re.match(r"^(\d+(?:\.\d+)?)(us|ms|s|m|h|d)?$", (value or "").strip())
    if not match:
        return default
    return float(match.group(1)) * _UNITS[match.group(2) or "ms"]


def detection_seconds(inter: str | None, fall: str | None) -> float:
    """Seconds until HAProxy takes a dead server out: inter times fall (2 s, 3 by default)."""
    count = int(fall) if (fall or "").isdigit() else 3
    return seconds(inter, 2.0) * count
