"""Nginx: its whole configuration as loaded from disk (`nginx -T`), parsed into directives."""

from __future__ import annotations

import re
from dataclasses import dataclass

DUMP = "nginx -T 2>/dev/null"
TEST = "nginx -t 2>&1"
DEFAULT_ACCESS_LOG = "/var/log/nginx/access.log"
_TOKEN = re.compile(r"""#[^\n]*|"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|[{};]|[^\s{};"'#]+""")


@dataclass(frozen=True)
class Directive:
    """One directive with its arguments and the blocks around it (e.g. ('http', 'upstream app'))."""

    name: str
    args: tuple[str, ...]
    context: tuple[str, ...]


def directives(dump: str) -> list[Directive]:
    """Every directive of an `nginx -T` dump, in order (the dump's file markers are comments)."""
    found, stack, words = [], [], []
    for token in _TOKEN.findall(dump):
        if token.startswith("#"):
            continue
        if token in ("{", ";"):
            if words:
                found.append(Directive(words[0], tuple(words[1:]), tuple(stack)))
                if token == "{":
                    stack.append(" ".join(words))
            words = []
        elif token == "}":
            if stack:
                stack.pop()
            words = []
        else:
            words.append(token[1:-1] if token[0] in "\"'" else token)
    return found


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
    upstreams: dict[str, list[str]] = {}
    for d in items:
        blocks = [c for c in d.context if c.startswith("upstream ")]
        if d.name == "server" and blocks and d.args:
            upstreams.setdefault(blocks[-1].split()[1], []).append(d.args[0])
    found: list[Target] = []
    for d in items:
        if d.name not in PASSES or not d.args:
            continue
        name = d.args[0].partition("://")[2].split("/", 1)[0] or d.args[0]
        for server in upstreams.get(name, [d.args[0]]):
            target = _target(d.name, server)
            if target and target not in found:
                found.append(target)
    return found


def access_logs(dump: str) -> list[str]:
    """Files Nginx writes its access log to (the default when none is configured)."""
    items = directives(dump)
    logs = [d.args[0] for d in items if d.name == "access_log" and d.args]
    files = [p for p in logs if p.startswith("/")]
    if not logs:
        return [DEFAULT_ACCESS_LOG]
    return list(dict.fromkeys(files))


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
