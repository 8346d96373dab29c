"""HTTP from inside a host: a request straight to a socket Nginx forwards to (TCP or unix)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from lab.remote.quoting import perl, quote

_CLIENT = (
    "alarm 5; my ($kind, $where, $path, $host, $agent) = @ARGV;"
    " my $s = $kind eq 'unix' ? IO::Socket::UNIX->new(Peer => $where)"
    " : IO::Socket::INET->new(PeerAddr => $where, Timeout => 5);"
    ' die "cannot connect to $where: $!\\n" unless $s;'
    ' print $s "GET $path HTTP/1.0\\r\\nHost: $host\\r\\nConnection: close\\r\\n'
    'User-Agent: $agent\\r\\nAccept: */*\\r\\nAccept-Language: en-US,en;q=0.5\\r\\n\\r\\n";'
    " print while <$s>;"
)
_SENDER = (  # the same, with a method and a JSON body
    r"alarm 5; my ($kind, $where, $path, $host, $agent, $method, $body) = @ARGV;"
    r" $method ||= 'GET'; $body //= '';"
    r" my $s = $kind eq 'unix' ? IO::Socket::UNIX->new(Peer => $where)"
    r" : IO::Socket::INET->new(PeerAddr => $where, Timeout => 5);"
    r' die "cannot connect to $where: $!\n" unless $s;'
    r' my $extra = length($body) ? "Content-Type: application/json\r\nContent-Length: "'
    r' . length($body) . "\r\n" : "";'
    r' print $s "$method $path HTTP/1.0\r\nHost: $host\r\nConnection: close\r\n'
    r"User-Agent: $agent\r\nAccept: */*\r\nAccept-Language: en-US,en;q=0.5\r\n"
    r'$extra\r\n$body";'
    r" print while <$s>;"
)
_DATAGRAM = (  # one datagram out; what comes back, the first within $wait, each next within 1 s
    "my ($where, $port, $request, $wait) = @ARGV;"
    " my $s = IO::Socket::IP->new(PeerHost => $where, PeerPort => $port, Proto => 'udp')"
    " or exit 0; $s->send(pack('H*', $request)) or exit 0;"
    " my $ready = IO::Select->new($s); my $got = '';"
    " for my $n (1 .. 64) { last unless $ready->can_read($n == 1 ? $wait : 1);"
    " defined $s->recv(my $part, 65535) or last; $got .= $part } binmode STDOUT; print $got;"
)
# as Nginx passes on a browser's request (HTTP/1.0, Host, Connection: close, the browser's own
# headers), so that an application cannot tell the grader's direct request from a visitor's
AGENT = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


def get(where: str, path: str, host: str) -> str:
    """A shell line doing GET path on where ('unix:/run/x.sock' or 'IP:PORT') with perl."""
    kind, target = ("unix", where[5:]) if where.startswith("unix:") else ("tcp", where)
    return (
        f"{perl(_CLIENT, 'IO::Socket::INET', 'IO::Socket::UNIX')} "
        f"{kind} {quote(target)} {quote(path)} {quote(host)} {quote(AGENT)}"
    )


def request(where: str, method: str, path: str, host: str, body: str = "") -> str:
    """A shell line sending method path (with a JSON body, if any) to where with perl."""
    kind, target = ("unix", where[5:]) if where.startswith("unix:") else ("tcp", where)
    return (
        f"{perl(_SENDER, 'IO::Socket::INET', 'IO::Socket::UNIX')} "
        f"{kind} {quote(target)} {quote(path)} {quote(host)} {quote(AGENT)} "
        f"{quote(method)} {quote(body)}"
    )


def datagram(address: str, port: int, request: bytes, wait: float) -> str:
    """A shell line sending request in one UDP datagram to address:port with perl, printing
    the datagrams that come back (nothing: none, or the port is closed)."""
    return (
        f"{perl(_DATAGRAM, 'IO::Socket::IP', 'IO::Select')} "
        f"{quote(address)} {int(port)} {request.hex()} {wait:g}"
    )


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""

    @property
    def status_code(self) -> int:
        """The status, named as requests names it (callers read either kind of reply)."""
        return self.status

    @property
    def text(self) -> str:
        """The body, named as requests names it."""
        return self.body

    def json(self):
        """The body as JSON, or None."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None


def parse_reply(raw: str) -> Reply:
    """A raw HTTP response (status line, headers, body)."""
    head, _, body = raw.replace("\r\n", "\n").partition("\n\n")
    lines = head.splitlines()
    parts = lines[0].split() if lines else []
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return Reply(status, headers, body)
