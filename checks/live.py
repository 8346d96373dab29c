"""The live lab as checks see it: the network from this machine, and each host over SSH."""

from __future__ import annotations

import logging
import re
import select
import socket
import threading
import time
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from urllib.parse import urlsplit

import dns.exception
import dns.flags
import dns.message
import dns.query
import paramiko
import requests
from invoke.exceptions import CommandTimedOut
from requests.adapters import HTTPAdapter
from urllib3.exceptions import InsecureRequestWarning

from checks.base import CheckError
from facts import vrrp
from lab import ca, platform
from lab.connection import Fleet, describe, fan_out
from lab.remote import as_root, quote
from lab.state import LabState, lab_home
from lab.topology import Topology

HTTP_TIMEOUT = 5
WEB_PORT = 80
ROUTE_PROBE_TIMEOUT = 1.0  # a web server this machine cannot reach by then is asked via a balancer
SCRATCH_DB = "webstack_lab_check"  # the grader's own database; dropped after every run
TOKEN_PREFIX = "lab-check-"  # what the grader writes (guestbook entries, accounts) starts so
PAUSED = "/run/webstack-lab-check.paused"  # on a replica whose SQL thread the grader paused


class LiveLab:
    """Observation tools shared by every check of a run; connections are opened once.

    Observations that several checks use are made once per run (memo); what a check changes
    on a host is undone by the cleanups it registers, also when the run is interrupted.
    """

    def __init__(self, topology: Topology, fleet: Fleet):
        self.topology = topology
        self.fleet = fleet
        self.site = f"www.{topology.domain}"
        self._memo: dict[object, object] = {}
        self._locks: dict[object, threading.Lock] = {}
        self._guard = threading.Lock()
        self._cleanups: list[tuple[str, Callable[[], object]]] = []
        self._unreachable: dict[str, str] = {}

    # -- hosts ----------------------------------------------------------------------------
    def address(self, role_or_host: str) -> str:
        """A host's address; for "lb", the site's front door (the virtual address, if any)."""
        if role_or_host in self.topology.names:
            return self.topology.host(role_or_host).address
        if role_or_host == "lb":
            return self.topology.site_address
        return self.topology.one_with_role(role_or_host).address

    def name(self, role: str) -> str:
        """The host with role; for "lb" with a virtual address, the balancer holding it now."""
        if role == "lb" and self.topology.virtual_address:
            return self.active_balancer()
        return self.topology.one_with_role(role).name

    def balancers(self) -> list[str]:
        return [h.name for h in self.topology.with_role("lb")]

    def holders(self) -> list[str]:
        """The load balancers that hold the virtual address now (one, when all is well)."""
        virtual = self.topology.virtual_address

        def holds(host: str) -> bool:
            found = vrrp.parse_addresses(self.sh(host, vrrp.ADDRESSES, check=False))
            return vrrp.holds(found, virtual) is not None

        outcomes = fan_out(self.balancers(), holds)
        return [host for host, outcome in outcomes.items() if outcome.value]

    def active_balancer(self) -> str:
        """The balancer behind the virtual address (the first one while nobody holds it)."""
        holders = self.holders()
        return holders[0] if holders else self.balancers()[0]

    def web_hosts(self) -> list[str]:
        return [h.name for h in self.topology.with_role("web")]

    def web_addresses(self) -> dict[str, str]:
        return {h: self.address(h) for h in self.web_hosts()}

    def sh(self, host: str, command: str, sudo: bool = False, check: bool = True, timeout=15):
        """Run a command on host; a failure becomes a CheckError naming host and what failed.

        The host's own `timeout` ends the command, so nothing of the grader's keeps running.
        """
        if host in self._unreachable:
            raise CheckError(self._unreachable[host])
        bounded = f"timeout -k 2 {int(timeout)} sh -c {quote(command)}"
        try:
            result = self.fleet.run(
                host, as_root(bounded) if sudo else bounded, timeout=timeout + 5
            )
        except CommandTimedOut:
            raise CheckError(f"{host}: a command of the grader did not finish in time") from None
        except Exception as exc:
            message = f"{host}: unreachable over SSH: {describe(exc)}"
            self._unreachable.setdefault(host, message)
            raise CheckError(message) from None
        if result.exited == 124:
            raise CheckError(f"{host}: a command of the grader did not finish within {timeout} s")
        if check and result.failed:
            output = (result.stderr or result.stdout).strip().splitlines()
            raise CheckError(f"{host}: {output[-1] if output else f'exit code {result.exited}'}")
        return result.stdout

    def on_each(self, hosts: list[str], func) -> dict:
        """func(host) for each host in parallel, results by host (exceptions re-raised)."""
        outcomes = fan_out(hosts, func)
        for outcome in outcomes.values():
            if outcome.error:
                raise outcome.error
        return {host: outcome.value for host, outcome in outcomes.items()}

    def memo(self, key, make: Callable[[], object]):
        """make() once per run for key; concurrent callers wait for the first one."""
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._memo:
                try:
                    self._memo[key] = make()
                except CheckError as exc:
                    self._memo[key] = exc
            value = self._memo[key]
        if isinstance(value, CheckError):
            raise value
        return value

    def on_cleanup(self, what: str, undo: Callable[[], object]) -> None:
        """Register undo for something a check changed on a host (run by cleanup())."""
        with self._guard:
            self._cleanups.append((what, undo))

    def done_with(self, what: str) -> None:
        """Run and forget the cleanup registered as what; one that fails stays registered, so
        that the end of the run tries it again."""
        with self._guard:
            undos = [u for w, u in self._cleanups if w == what]
            self._cleanups = [(w, u) for w, u in self._cleanups if w != what]
        for i, undo in enumerate(undos):
            try:
                undo()
            except BaseException:
                with self._guard:
                    self._cleanups += [(what, u) for u in undos[i:]]
                raise

    def cleanup(self) -> list[str]:
        """Undo whatever checks left changed (interrupted or crashed); returns what failed."""
        failed = []
        while self._cleanups:
            what, undo = self._cleanups.pop()
            try:
                undo()
            except BaseException as exc:  # go on: every other cleanup must still run
                failed.append(f"{what}: {exc}")
        return failed

    @contextmanager
    def exclusive(self):
        """One check run at a time on a lab: another run's sweep would undo this one's changes."""
        path = lab_home() / "locks" / f"check-{self.topology.name}.lock"
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(path, "w") as handle:
            platform.lock(handle, wait=True)
            yield

    def sweep(self) -> None:
        """Undo what an earlier, killed run may have left: a paused replica, a blackhole route,
        grader accounts and the scratch database (the grader's entries go in front_door)."""
        balancers = " ".join(quote(h.address) for h in self.topology.with_role("lb"))
        accounts = (
            "SELECT CONCAT('DROP USER ', QUOTE(user), '@', QUOTE(host), ';') FROM mysql.user "
            "WHERE user LIKE 'lab\\_check\\_%'"
        )
        script = (
            f"for lb in {balancers}; do ip route del blackhole $lb/32 2>/dev/null; done; "
            f"if [ -e {PAUSED} ]; then mysql -e 'START REPLICA SQL_THREAD' && rm -f {PAUSED}; fi; "
            "if command -v mysql >/dev/null && mysql -e 'SELECT 1' >/dev/null 2>&1; then "
            f"{{ echo 'SET SESSION sql_log_bin = 0;'; mysql -N -e {quote(accounts)}; "
            f"echo 'DROP DATABASE IF EXISTS {SCRATCH_DB};'; }} | mysql; fi; true"
        )
        fan_out(self.topology.names, lambda host: self.sh(host, script, sudo=True, check=False))

    # -- network from this machine ----------------------------------------------------------
    def http(
        self, url: str, method: str = "GET", timeout=HTTP_TIMEOUT, follow: bool = True, **kwargs
    ):
        """One HTTP request on a fresh connection, for the site's name (as a browser sends it).

        Like a browser, it follows a redirect from http:// to https:// on the same site once
        (connecting to the same address, the site's name as SNI and Host) and trusts the lab CA.
        """
        headers = {"Connection": "close", "Host": self.site, **kwargs.pop("headers", {})}
        reply = self._request(method, url, headers, timeout, kwargs)
        target = follow and upgraded(url, headers["Host"], reply.status_code, reply.headers)
        if target:
            headers["Host"] = urlsplit(target[1]).netloc
            reply = self._request(method, target[0], headers, timeout, kwargs)
        return reply

    def lab_ca(self) -> str | None:
        """The lab CA's certificate file, once the lab has one."""
        path = ca.Files.of(LabState(self.topology.name)).cert
        return str(path) if path.is_file() else None

    def _request(self, method: str, url: str, headers: dict, timeout, kwargs: dict):
        name = (urlsplit(f"//{headers['Host']}").hostname or "").rstrip(".")
        try:
            with requests.Session() as session:
                session.mount("https://", _SiteAdapter(name))
                options = {"verify": self.lab_ca() or False, **kwargs}
                return session.request(
                    method, url, headers=headers, timeout=timeout, allow_redirects=False, **options
                )
        except requests.RequestException as exc:
            raise CheckError(f"{method} {url}: {_reason(exc)}") from None

    def web(self, host: str, path: str, method: str = "GET", **kwargs):
        """A request to host (by address) for the site, as the load balancer sends it: from
        this machine, or from a load balancer when a firewall admits only the balancers."""
        origin = f"http://{self.address(host)}"
        via = self.memo(("web route", host), lambda: self._web_route(host))
        if not via:
            return self.http(origin + path, method, **kwargs)
        try:
            with forwarded(self.fleet[via], self.address(host), WEB_PORT, via) as local:
                try:
                    return self.http(local + path, method, **kwargs)
                except CheckError as exc:
                    raise CheckError(f"{str(exc).replace(local, origin)} (via {via})") from None
        except ChannelRefused as exc:  # nothing answers there, from this machine nor from via
            raise CheckError(
                f"{method} {origin}{path}: {exc.reason} (from this machine and from {via})"
            ) from None

    def _web_route(self, host: str) -> str:
        """'' when this machine reaches host's web port, else the first load balancer that
        answers over SSH (decided once per run; '' too when no balancer answers)."""
        if connect_state(self.address(host), WEB_PORT, ROUTE_PROBE_TIMEOUT) == "open":
            return ""
        for balancer in self.topology.with_role("lb"):
            if balancer.name == host:
                continue
            try:
                self.sh(balancer.name, "true")
            except CheckError:
                continue
            return balancer.name
        return ""

    def dns_query(self, server: str, name: str, rdtype: str = "A") -> dns.message.Message:
        """Ask server directly (no resolver, no recursion) about name."""
        query = dns.message.make_query(name, rdtype)
        query.flags &= ~dns.flags.RD
        try:
            return dns.query.udp(query, server, timeout=3)
        except (dns.exception.DNSException, OSError) as exc:
            raise CheckError(
                f"DNS query to {server} for {name}: {exc or type(exc).__name__}"
            ) from None


class _SiteAdapter(HTTPAdapter):
    """HTTPS to the address in the URL, naming the site in TLS (SNI) and checking its certificate
    for the site's name rather than for the address."""

    def __init__(self, name: str):
        self.name = name
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs.update(server_hostname=self.name, assert_hostname=self.name)
        super().init_poolmanager(*args, **kwargs)


# a lab without a CA of its own: the redirect is followed without checking the certificate
warnings.filterwarnings("ignore", category=InsecureRequestWarning)
REDIRECTS = (301, 302, 303, 307, 308)
TLS_FAILURE = re.compile(r"(certificate verify failed: [^(]*?|Hostname mismatch[^'\"]*?)\s*[('\"]")


def upgraded(url: str, host: str, status: int, headers) -> tuple[str, str] | None:
    """Where a redirect from http:// to https:// on the same site leads: (the URL at the same
    address, the https URL named in Location); None for any other answer."""
    if status not in REDIRECTS or not url.startswith("http://"):
        return None
    location = urlsplit(headers.get("Location", ""))
    asked = urlsplit(url)
    if location.scheme != "https" or location.hostname not in (
        asked.hostname,
        urlsplit(f"//{host}").hostname,
    ):
        return None
    try:
        port = f":{location.port}" if location.port else ""
    except ValueError:  # a port that is no number: nowhere to go
        return None
    query = f"?{location.query}" if location.query else ""
    return f"https://{asked.hostname}{port}{location.path or '/'}{query}", location.geturl()


def connect_state(address: str, port: int, timeout: float) -> str:
    """A TCP connect from this machine: open, refused, silent (dropped) or unreachable."""
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return "open"
    except ConnectionRefusedError:
        return "refused"
    except TimeoutError:
        return "silent"
    except OSError:
        return "unreachable"


class ChannelRefused(CheckError):
    """A host's SSH server could not connect to address:port for us."""

    def __init__(self, via: str, address: str, port: int, reason: str):
        super().__init__(f"{via} could not connect to {address}:{port}: {reason}")
        self.reason = reason


@contextmanager
def forwarded(conn, address: str, port: int, via: str):
    """http://127.0.0.1:PORT on this machine, whose first connection is made to address:port
    by via's SSH server (a direct-tcpip channel of conn, via's open connection)."""
    try:
        channel = conn.transport.open_channel(
            "direct-tcpip", (address, port), ("127.0.0.1", 0), timeout=HTTP_TIMEOUT
        )
    except (paramiko.SSHException, OSError, EOFError, AttributeError) as exc:
        raise ChannelRefused(via, address, port, _refusal(exc)) from None
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(HTTP_TIMEOUT)
    pump = threading.Thread(target=carry, args=(listener, channel), daemon=True)
    pump.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()
        channel.close()
        pump.join(1)


def _refusal(exc: Exception) -> str:
    """Why an SSH server did not open a channel to address:port, in words."""
    code = getattr(exc, "code", None)
    if code == paramiko.common.OPEN_FAILED_CONNECT_FAILED:
        return "connection refused or unreachable"
    if code == paramiko.common.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED:
        return "its SSH server does not forward connections (AllowTcpForwarding)"
    if "Timeout" in str(exc):
        return "timed out"
    return describe(exc)


class _QuietChannelFailures(logging.Filter):
    """paramiko logs a refused channel as an error on stderr; the CheckError already says it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "open FAILED" not in record.getMessage()


logging.getLogger("paramiko.transport").addFilter(_QuietChannelFailures())


def carry(listener: socket.socket, channel, limit: float = 60.0) -> None:
    """Copy bytes both ways between listener's first connection and channel until one closes."""
    try:
        client, _ = listener.accept()
    except OSError:
        return
    deadline = time.monotonic() + limit
    ends = {client: channel, channel: client}
    with client:
        try:
            while time.monotonic() < deadline:
                ready, _, _ = select.select(list(ends), [], [], 0.5)
                for source in ready:
                    data = source.recv(65536)
                    if not data:
                        return
                    ends[source].sendall(data)
        except OSError:
            return


def _reason(exc: requests.RequestException) -> str:
    text = str(exc)
    tls = TLS_FAILURE.search(text)
    if tls:
        return tls.group(1).strip()
    for marker in ("Connection refused", "timed out", "No route to host", "Name or service"):
        if marker in text:
            return marker.lower()
    return type(exc).__name__


def json_object(reply) -> dict | None:
    """A reply's body as a JSON object, or None (a list or a number is not the contract)."""
    try:
        body = reply.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
