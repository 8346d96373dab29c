"""HAProxy: its configuration as it is on disk, its command line, and its runtime API."""

from __future__ import annotations

import csv
import io
import re
import shlex
from dataclasses import dataclass, field

from lab.remote import quote

DEFAULT_CONFIG = "/etc/haproxy/haproxy.cfg"
PROCESSES = "ps -C haproxy -o pid=,ppid=,args="
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
    return f"echo {quote(command)} | perl -MIO::Socket::UNIX -e {quote(script)} {quote(socket)}"


def config_files(ps_output: str) -> list[str]:
    """The -f arguments of the running HAProxy (files or directories), else the default."""
    for line in ps_output.splitlines():
        args = line.split()[2:]
        paths = [args[i + 1] for i, arg in enumerate(args[:-1]) if arg == "-f"]
        if paths:
            return paths
    return [DEFAULT_CONFIG]


def cat_config(paths: list[str]) -> str:
    """A shell line printing every configuration file (a directory: its *.cfg files, sorted)."""
    parts = [
        f"if [ -d {quote(p)} ]; then cat {quote(p)}/*.cfg; else cat {quote(p)}; fi" for p in paths
    ]
    return "; ".join(parts)


def check_config(paths: list[str]) -> str:
    """`haproxy -c` on the configuration files in place."""
    return "haproxy -c " + " ".join(f"-f {quote(p)}" for p in paths) + " 2>&1"


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


@dataclass
class Config:
    """What the grader needs from haproxy.cfg."""

    sockets: list[str] = field(default_factory=list)
    backends: list[Backend] = field(default_factory=list)
    frontends: list[str] = field(default_factory=list)


def _tokens(line: str) -> list[str]:
    try:
        return shlex.split(line, comments=True)
    except ValueError:
        return line.split("#", 1)[0].split()


def parse_config(text: str) -> Config:
    """haproxy.cfg as sections: stats sockets, backends with servers, balance and defaults."""
    config = Config()
    kind, current = "", None
    defaults_balance, defaults_server = "roundrobin", ()
    section_server: tuple[str, ...] = ()
    for line in text.splitlines():
        words = _tokens(line)
        if not words:
            continue
        if words[0] in SECTIONS:
            kind, current = words[0], None
            name = words[1] if len(words) > 1 else ""
            section_server = ()
            if kind == "defaults":  # a new defaults section starts from HAProxy's own defaults
                defaults_server = ()
            if kind in ("backend", "listen"):
                current = Backend(kind, name, defaults_balance)
                config.backends.append(current)
            if kind in ("frontend", "listen"):
                config.frontends.append(name)
            continue
        if kind == "global" and words[:2] == ["stats", "socket"] and len(words) > 2:
            path = words[2].removeprefix("unix@")
            if path.startswith("/"):
                config.sockets.append(path)
        elif kind == "defaults" and words[0] == "balance" and len(words) > 1:
            defaults_balance = words[1]
        elif kind == "defaults" and words[0] == "default-server":
            defaults_server += tuple(words[1:])  # default-server lines add up, later wins
        elif current is not None and words[0] == "balance" and len(words) > 1:
            current.balance = words[1]
        elif current is not None and words[0] == "default-server":
            section_server += tuple(words[1:])
        elif current is not None and words[0] == "server" and len(words) > 2:
            host, _, port = words[2].rpartition(":") if ":" in words[2] else (words[2], "", "")
            current.servers.append(
                Server(
                    words[1],
                    host.strip("[]"),
                    int(port) if port.isdigit() else None,
                    defaults_server + section_server + tuple(words[3:]),
                )
            )
    return config


def parse_show_stat(text: str) -> list[dict[str, str]]:
    """HAProxy's `show stat` CSV as dicts (the header line starts with '# ')."""
    return list(csv.DictReader(io.StringIO(text.lstrip("# "))))


def servers_at(rows: list[dict[str, str]], addresses: dict[str, str]) -> dict[str, dict]:
    """`show stat` server rows by host name, matched by address (host → IP), never by name."""
    found = {}
    for row in rows:
        ip = row.get("addr", "").rpartition(":")[0].strip("[]")
        for host, address in addresses.items():
            if ip == address and row.get("svname") not in ("FRONTEND", "BACKEND"):
                found.setdefault(host, row)
    return found


def server_up(row: dict[str, str]) -> bool:
    """UP with a completed health check (not the initial state before the first check)."""
    return row.get("status", "").startswith("UP") and not row.get("check_status", "").startswith(
        "INI"
    )


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
