"""Nginx: its whole configuration as loaded from disk (`nginx -T`), parsed into directives."""

from __future__ import annotations

import ipaddress
import posixpath
import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from lab.remote.quoting import quote

NGINX = "/usr/sbin/nginx"  # the distribution's, whatever else a user put first in PATH
DUMP = f"{NGINX} -T 2>/dev/null"
TEST = f"{NGINX} -t 2>&1"
DEFAULT_CONFIG = "/etc/nginx/nginx.conf"
DEFAULT_ACCESS_LOG = "/var/log/nginx/access.log"
_TOKEN = re.compile(r"""#[^\n]*|"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|[{};]|[^\s{};"'#]+""")


@dataclass(frozen=True)
class Directive:
    """One directive with its arguments and the blocks around it (e.g. ('http', 'upstream app'))."""

    name: str
    args: tuple[str, ...]
    context: tuple[str, ...]
    parent: int = -1  # the number of the block it sits in (-1: top level)
    block: int = -1  # the number of the block it opens, if it opens one


_FILE_HEADER = re.compile(r"^# configuration file (.+):$", re.MULTILINE)


def instance_options(args: str) -> list[str] | None:
    """The -c and -p options of a master process's command line (`nginx: master process
    /usr/sbin/nginx -c /etc/other/nginx.conf -g daemon off;`) when it runs a configuration of
    its own: None for the one `nginx -T` reads (no -c, or the default file)."""
    words = args.split()
    found = []
    for flag in ("-c", "-p"):
        if flag in words[:-1]:
            found += [flag, words[words.index(flag) + 1]]
    if "-c" not in found or found[found.index("-c") + 1] == DEFAULT_CONFIG:
        return None
    return found


def dump_of(options: list[str]) -> str:
    """`nginx -T` of an instance with options (instance_options): its configuration, as read."""
    return f"{NGINX} -T {' '.join(quote(o) for o in options)} 2>/dev/null"


def config_files(dump: str) -> list[str]:
    """The files `nginx -T` read, in its order (its `# configuration file PATH:` headers)."""
    return list(dict.fromkeys(_FILE_HEADER.findall(dump)))


def _file_texts(dump: str) -> list[tuple[str, str]]:
    """(path, text) of each file of an `nginx -T` dump, in its order; one nameless file when the
    text has no `# configuration file PATH:` header (a configuration on its own)."""
    parts = _FILE_HEADER.split(dump)
    return list(zip(parts[1::2], parts[2::2], strict=True)) if len(parts) > 1 else [("", dump)]


def _included(tokens: list[str], end: int) -> str | None:
    """The file pattern of the `include PATTERN;` statement that ends at tokens[end], if any."""
    if end < 2 or tokens[end] != ";" or tokens[end - 2] != "include":
        return None
    if end > 2 and tokens[end - 3] not in ("{", "}", ";"):
        return None  # `include` as an argument of another directive
    return tokens[end - 1].strip("\"'")


def in_read_order(dump: str) -> list[str]:
    """The tokens of an `nginx -T` dump in the order Nginx reads them: the files an `include`
    names (by glob, relative to nginx.conf's directory) in place of it, as Nginx does, where the
    dump prints each file once, after the file that first included it; comments left out."""
    files = _file_texts(dump)
    texts = dict(files)
    prefix = posixpath.dirname(files[0][0])
    read: set[str] = set()

    def expand(path: str, within: tuple[str, ...]) -> list[str]:
        read.add(path)
        tokens = [t for t in _TOKEN.findall(texts[path]) if not t.startswith("#")]
        out = []
        for end, token in enumerate(tokens):
            out.append(token)
            pattern = _included(tokens, end) if path else None
            if pattern:
                wanted = str(PurePosixPath(prefix, pattern))
                for name, _ in files:  # a file including itself never loads: left out
                    if name not in within and PurePosixPath(name).match(wanted):
                        out += expand(name, (*within, name))
        return out

    tokens = expand(files[0][0], (files[0][0],))
    for path, _ in files:  # printed but named by no include understood here: as printed
        if path not in read:
            tokens += expand(path, (path,))
    return tokens


def directives(dump: str) -> list[Directive]:
    """Every directive of an `nginx -T` dump, in the order Nginx reads them (includes in place)."""
    found, stack, ids, words = [], [], [], []
    for token in in_read_order(dump):
        if token in ("{", ";"):
            if words:
                opens = len(found) if token == "{" else -1
                parent = ids[-1] if ids else -1
                found.append(Directive(words[0], tuple(words[1:]), tuple(stack), parent, opens))
                if token == "{":
                    stack.append(" ".join(words))
                    ids.append(opens)
            words = []
        elif token == "}":
            if stack:
                stack.pop()
                ids.pop()
            words = []
        else:
            words.append(token[1:-1] if token[0] in "\"'" else token)
    return found


def _listens(items: list[Directive], server: Directive) -> list[tuple[str, int, bool]]:
    """(address, port, default_server) of each IPv4 listen of server, '*' for any address; a
    server without listen is on *:80 (Nginx run as root)."""
    listens = [d for d in items if d.parent == server.block and d.name == "listen" and d.args]
    if not listens:
        return [("*", 80, False)]
    found = []
    for d in listens:
        where = d.args[0]
        if where.startswith(("unix:", "[")):
            continue  # a unix socket or IPv6 (ipv6only by default): no IPv4 probe lands there
        address, _, port = where.rpartition(":") if ":" in where else ("", "", where)
        if not port.isdigit():
            address, port = where, "80"
        address = "*" if address in ("", "*", "0.0.0.0") else address
        found.append((address, int(port), "default_server" in d.args or "default" in d.args[1:]))
    return found


def _name_rank(name: str, host: str, regexes: list) -> tuple | None:
    """How well a server_name matches host, in Nginx's order: exact, the longest leading
    wildcard, the longest trailing wildcard, the first regular expression; None: no match."""
    if name.startswith("~"):
        try:  # PCRE's (?<name>...) is Python's (?P<name>...)
            found = re.search(re.sub(r"\(\?<(?=[A-Za-z_])", "(?P<", name[1:]), host)
        except re.error:
            return None
        regexes.append(name)
        return (3, len(regexes)) if found else None
    name = name.lower().rstrip(".")
    if name == host or (name.startswith(".") and host == name[1:]):
        return (0, 0)
    if name.startswith(("*.", ".")):
        suffix = name[name.index(".") :]
        return (1, -len(suffix)) if host.endswith(suffix) else None
    if name.endswith(".*"):
        return (2, -len(name)) if host.startswith(name[:-1]) and len(host) > len(name) - 1 else None
    return None


def _server_for(
    items: list[Directive], site: str, address: str | None = None, port: int = 80
) -> Directive | None:
    """The server block Nginx chooses for Host site on address:port: among the servers that
    listen on that address (else on any address) and port, by server_name, else the port's
    default_server, else the first of them."""
    # in http {}, or at the top level of a configuration given without its file headers
    servers = [
        d for d in items if d.name == "server" and d.block >= 0 and d.context in ((), ("http",))
    ]
    listens = {s.block: _listens(items, s) for s in servers}
    exact = [s for s in servers if any(a == address and p == port for a, p, _ in listens[s.block])]
    candidates = exact or [
        s for s in servers if any(a == "*" and p == port for a, p, _ in listens[s.block])
    ]
    host = site.lower().rstrip(".").split(":")[0]
    regexes: list[str] = []
    ranked = []
    for order, server in enumerate(candidates):
        for names in (d for d in items if d.parent == server.block and d.name == "server_name"):
            for name in names.args:
                rank = _name_rank(name, host, regexes)
                if rank is not None:
                    ranked.append((rank, order, server))
    if ranked:
        return min(ranked, key=lambda r: r[:2])[2]
    wanted = address if exact else "*"
    for server in candidates:
        if any(a == wanted and p == port and d for a, p, d in listens[server.block]):
            return server
    return candidates[0] if candidates else None


def _location(items: list[Directive], server: Directive, path: str) -> Directive | None:
    """Nginx's choice of location for path: exact, then the longest prefix (^~ stops there),
    then the first matching regular expression, else that longest prefix."""
    locations = [d for d in items if d.name == "location" and d.parent == server.block and d.args]
    exact = [d for d in locations if d.args[0] == "=" and d.args[1:2] == (path,)]
    if exact:
        return exact[0]
    prefixes = [
        d
        for d in locations
        if (d.args[0] == "^~" and path.startswith(d.args[1]))
        or (len(d.args) == 1 and not d.args[0].startswith("@") and path.startswith(d.args[0]))
    ]
    longest = max(prefixes, key=lambda d: len(d.args[-1]), default=None)
    if longest is not None and longest.args[0] == "^~":
        return longest
    for d in locations:
        if d.args[0] in ("~", "~*") and len(d.args) > 1:
            try:
                if re.search(d.args[1], path, re.IGNORECASE if d.args[0] == "~*" else 0):
                    return d
            except re.error:
                continue
    return longest


CONDITIONS = ("if", "limit_except")  # blocks inside a location that apply to some requests


def location_for(
    dump: str, site: str, path: str, address: str | None = None
) -> tuple[str, list[str]]:
    """The location of site's server block (on address, port 80) that handles path, and what
    it passes requests to (proxy_pass and the like)."""
    items = directives(dump)
    server = _server_for(items, site, address)
    chosen = _location(items, server, path) if server else None
    if chosen is None:
        return "", []
    # in the location itself, or in an `if` or `limit_except` of it (for some requests only)
    inner = {d.block: d for d in items if d.parent == chosen.block and d.name in CONDITIONS}
    passes = [
        f"{d.name} {d.args[0]}"
        + (
            f" (in {inner[d.parent].name} {' '.join(inner[d.parent].args)})"
            if d.parent in inner
            else ""
        )
        for d in items
        if (d.parent == chosen.block or d.parent in inner) and d.name in PASSES and d.args
    ]
    return " ".join(chosen.args), passes


def asked_paths(dump: str, port: int, path: str = "/api/status") -> list[str]:
    """The paths a visitor asks for at port so that Nginx passes path on: path itself, then,
    in each server block listening there, a location that passes requests with a URI of its own
    (`location /x/ { proxy_pass http://127.0.0.1:8000/; }` turns /x/api/status into
    /api/status; an exact location passes its URI as it is)."""
    items = directives(dump)
    found = [path]
    for server in (d for d in items if d.name == "server" and d.block >= 0):
        if not any(p == port for _, p, _ in _listens(items, server)):
            continue
        for location in (d for d in items if d.name == "location" and d.parent == server.block):
            prefix, exact = _location_path(location.args)
            for d in items:
                if d.parent != location.block or d.name != "proxy_pass" or not d.args:
                    continue
                _, has_uri, uri = d.args[0].partition("://")[2].partition("/")
                if not prefix or not has_uri or "$" in d.args[0]:
                    continue  # without a URI the request's own path is passed on
                uri = "/" + uri
                if exact and uri == path:
                    found.append(prefix)
                elif not exact and path.startswith(uri):
                    found.append(prefix + path[len(uri) :])
    return list(dict.fromkeys(found))


def _location_path(args: tuple[str, ...]) -> tuple[str, bool]:
    """A location's path and whether it is exact ('' for a regular expression or a name)."""
    if len(args) == 1 and args[0].startswith("/"):
        return args[0], False
    if len(args) == 2 and args[0] in ("^~", "="):
        return args[1], args[0] == "="
    return "", False


def _log_file(log: Directive) -> str:
    """The file an access_log writes each request to at once, or '' (off, syslog, a name made
    of variables, a buffered or gzipped log, a log only `if=` a condition holds)."""
    path = log.args[0]
    later = any(a.startswith(("buffer=", "gzip", "if=")) for a in log.args[1:])
    return path if path.startswith("/") and "$" not in path and not later else ""


def site_access_logs(
    dump: str, site: str, path: str = "/", address: str | None = None
) -> list[str] | None:
    """The files a request for path on site (on address, port 80) is logged to at once; None
    when no file is (access_log off, syslog only, buffered).

    The innermost access_log directives win: the location's, else the server's, else http's.
    """
    items = directives(dump)
    server = _server_for(items, site, address)
    location = _location(items, server, path) if server else None
    http = [d.block for d in items if d.name == "http" and d.block >= 0]
    for scopes in ([location.block] if location else [], [server.block] if server else [], http):
        logs = [d for d in items if d.parent in scopes and d.name == "access_log" and d.args]
        if logs:
            files = [_log_file(d) for d in logs]
            off = any(d.args[0] == "off" for d in logs)
            return None if off or not any(files) else list(dict.fromkeys(filter(None, files)))
    return [DEFAULT_ACCESS_LOG]


def access_log_files(dump: str) -> list[str]:
    """Every file Nginx may log a request to at once: each access_log's, and its default."""
    files = [_log_file(d) for d in directives(dump) if d.name == "access_log" and d.args]
    return list(dict.fromkeys([*filter(None, files), DEFAULT_ACCESS_LOG]))


_ANY_REQUEST = re.compile(r'"[A-Z]+ \S+ HTTP/\d')


def count_requests(log: str, method: str, path: str, user_agent: str, clients) -> int | None:
    """How many lines of an access log record `METHOD PATH HTTP/x` from one of clients (when
    the line starts with an address) with user_agent (when the format logs it: some line of
    the log carries it); None when no line records a request line (a format without $request).
    """
    lines = [line for line in log.splitlines() if line.strip()]
    if lines and not any(_ANY_REQUEST.search(line) for line in lines):
        return None
    request = re.compile(rf'"{re.escape(method)} {re.escape(path)} HTTP/\d(\.\d)?"')
    agent = any(user_agent in line for line in lines)
    clients = set(clients)

    def ours(line: str) -> bool:
        first = line.split(None, 1)[0]
        from_client = not re.fullmatch(r"[0-9.]+|[0-9a-fA-F:]*:[0-9a-fA-F:.]*", first) or (
            first in clients
        )
        return from_client and bool(request.search(line)) and (not agent or user_agent in line)

    return sum(1 for line in lines if ours(line))


@dataclass(frozen=True)
class Target:
    """Where Nginx forwards requests: a TCP host and port, or a unix socket path."""

    protocol: str  # proxy_pass, uwsgi_pass, fastcgi_pass, scgi_pass, grpc_pass
    host: str  # host name or address; "" for a unix socket
    port: int | None
    path: str  # unix socket path, else ""

    def __str__(self) -> str:
        return f"unix:{self.path}" if self.path else f"{self.host}:{self.port}"


PASSES = ("proxy_pass", "uwsgi_pass", "fastcgi_pass", "scgi_pass", "grpc_pass")
DEFAULT_PORTS = {"http": 80, "https": 443, "grpc": 80}


def _target(protocol: str, address: str) -> Target | None:
    """A Target from a pass address or an upstream server ('http://h:p/x', 'h:p', 'unix:/s')."""
    scheme, sep, rest = address.partition("://")
    if not sep:
        scheme, rest = "", address
    if rest.startswith("unix:"):
        return Target(protocol, "", None, rest[5:].split(":", 1)[0])
    rest = rest.split("/", 1)[0]
    if "$" in rest:
        return None  # a variable: resolved per request, not knowable here
    host, _, port = rest.rpartition(":") if re.search(r":\d+$", rest) else (rest, "", "")
    port_number = int(port) if port else DEFAULT_PORTS.get(scheme, 80)
    return Target(protocol, host.strip("[]"), port_number, "")


def targets(dump: str) -> list[Target]:
    """The application servers Nginx forwards to, with upstream {} blocks resolved."""
    items = directives(dump)
    upstreams = _upstreams(items)
    found: list[Target] = []
    for d in items:
        for target in _pass_targets(d, upstreams):
            if target not in found:
                found.append(target)
    return found


def _upstreams(items: list[Directive]) -> dict[str, list[str]]:
    """upstream {} block name → its servers' addresses."""
    upstreams: dict[str, list[str]] = {}
    for d in items:
        blocks = [c for c in d.context if c.startswith("upstream ")]
        if d.name == "server" and blocks and d.args:
            upstreams.setdefault(blocks[-1].split()[1], []).append(d.args[0])
    return upstreams


def _pass_targets(d: Directive, upstreams: dict[str, list[str]]) -> list[Target]:
    """The targets a *_pass directive forwards to ([] for any other directive)."""
    if d.name not in PASSES or not d.args:
        return []
    name = d.args[0].partition("://")[2].split("/", 1)[0] or d.args[0]
    found = (_target(d.name, server) for server in upstreams.get(name, [d.args[0]]))
    return [t for t in found if t]


@dataclass(frozen=True)
class Passing:
    """A server block that forwards requests: the ports it listens on and where it passes."""

    ports: tuple[int, ...]
    names: tuple[str, ...]  # its server_name
    target: Target
    how: str  # the directive, as written (`proxy_pass http://127.0.0.1:8000`)


def passing_servers(dump: str) -> list[Passing]:
    """Every server block's forwarding (a *_pass anywhere inside it; http {} and stream {}),
    with the TCP ports it listens on (IPv4 and IPv6; 80 without listen); a pass in a location
    or server that denies everyone (`deny all;` without an allow) forwards nothing."""
    items = directives(dump)
    upstreams = _upstreams(items)
    blocks = {d.block: d for d in items if d.block >= 0}
    found = []
    for server in (d for d in items if d.name == "server" and d.block >= 0):  # http and stream
        inside = _within(items, server.block)
        ports = tuple(
            dict.fromkeys(p for d in inside if d.parent == server.block for p in _port(d))
        )
        names = tuple(
            a
            for d in inside
            if d.parent == server.block and d.name == "server_name"
            for a in d.args
        )
        for d in inside:
            if _denied(items, d, blocks, server.block):
                continue
            for target in _pass_targets(d, upstreams):
                found.append(Passing(ports or (80,), names, target, f"{d.name} {' '.join(d.args)}"))
    return found


def _within(items: list[Directive], block: int) -> list[Directive]:
    """The directives inside a block, at any depth."""
    inside, opened = [], {block}
    for d in items:
        if d.parent in opened:
            inside.append(d)
            if d.block >= 0:
                opened.add(d.block)
    return inside


def _port(d: Directive) -> list[int]:
    """The TCP port of a listen directive ([] for another directive, or a unix socket)."""
    if d.name != "listen" or not d.args or d.args[0].startswith("unix:"):
        return []
    port = d.args[0].rpartition("]")[2].rpartition(":")[2] if ":" in d.args[0] else d.args[0]
    return [int(port)] if port.isdigit() else [80]


def _denied(items: list[Directive], d: Directive, blocks: dict, top: int) -> bool:
    """Whether the access rules d is under deny everyone but the host itself (`deny all;`,
    with no `allow` but of loopback addresses): the innermost block around d, up to the server
    block top, that has allow or deny rules (Nginx takes a level's rules only where the level
    below has none)."""
    parent = d.parent
    while parent >= 0:
        rules = {
            (x.name, x.args[:1])
            for x in items
            if x.parent == parent and x.args and x.name in ("allow", "deny")
        }
        if rules:
            allowed = [args[0] for name, args in rules if name == "allow"]
            return ("deny", ("all",)) in rules and all(map(_loopback, allowed))
        if parent == top:
            return False
        parent = blocks[parent].parent
    return False


def _loopback(source: str) -> bool:
    """Whether an allow rule's source is the host itself (a loopback address or network, or
    unix: for connections over a unix socket)."""
    if source == "unix:":
        return True
    try:
        return ipaddress.ip_network(source, strict=False).subnet_of(
            ipaddress.ip_network("127.0.0.0/8" if "." in source else "::1/128")
        )
    except ValueError:
        return False


def document_roots(dump: str) -> list[str]:
    """Directories named by root and alias: where Nginx serves files from."""
    roots = [d.args[0] for d in directives(dump) if d.name in ("root", "alias") and d.args]
    return list(dict.fromkeys(r.rstrip("/") or "/" for r in roots if r.startswith("/")))


_PREFIX = re.compile(r"^(nginx: )?(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d )?(?=\[)")
_PID = re.compile(r"^(\[\w+\]) \d+#\d+: ")


def first_error(test_output: str) -> str:
    """The first [emerg]/[error] line of `nginx -t`, without prefix, date and pid."""
    for line in test_output.splitlines():
        if "[emerg]" in line or "[error]" in line or "[crit]" in line:
            return _PID.sub(r"\1 ", _PREFIX.sub("", line.strip()))
    return ""
