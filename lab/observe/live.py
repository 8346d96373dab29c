"""The live lab as checks see it: the network from this machine, and each host over SSH."""

from __future__ import annotations

import contextlib
import errno
import functools
import ipaddress
import logging
import os
import random
import re
import select
import selectors
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

from lab.core import ca, platform
from lab.core.state import LabState, lab_home
from lab.core.topology import Topology
from lab.core.wait import Deadline, until
from lab.facts import http as host_http
from lab.facts import ipaddr, vrrp
from lab.observe import CURRENT_CHECK, CheckError, visitor
from lab.remote.connection import Fleet, describe, fan_out
from lab.remote.shell import ShellBroken

HTTP_TIMEOUT = 5
CLEANUP_WAIT = 20.0  # seconds the cleanup lets commands in flight finish (a host's own timeout)
READ_CHUNK = 256  # bytes of a reply read at a time (a trickle is cut off at the deadline)
WEB_PORT = 80
OUTSIDE_READ_TIMEOUT = 10.0  # an application answers /api/status at once; a relay may hold
# the answer back a while (a browser waits far longer), so a silent port is waited for
OUTSIDE_CONNECT_TIMEOUT = 2.0  # a lab host connecting to another one
ROUTE_PROBE_TIMEOUT = 1.0  # a web server this machine cannot reach by then is asked via a balancer
THIS_MACHINE = "this machine"  # the grader's own machine, as a source of requests (from_outside)
SCRATCH_DB = "webstack_lab_check"  # the grader's own database; dropped after every run
TOKEN_PREFIX = "lab-check-"  # what the grader writes (guestbook entries, accounts) starts so
PAUSED = "/run/webstack-lab-check.paused"  # on a replica whose SQL thread the grader paused
# what a killed run may have left on the hosts, each undone by a shell line of the module that
# leaves it (registered with @leaves): every run begins by running them all (LiveLab.sweep)
LEFTOVERS: dict[str, Callable[[Topology], str]] = {}


def leaves(what: str):
    """Register the function giving the shell line that undoes `what` on any host, as root."""

    def register(undo: Callable[[Topology], str]):
        LEFTOVERS[what] = undo
        return undo

    return register


class LiveLab:
    """Observation tools shared by every check of a run; connections are opened once.

    Observations that several checks use are made once per run (memo); what a check changes
    on a host is undone by the cleanups it registers, also when the run is interrupted.
    """

    def __init__(self, topology: Topology, fleet: Fleet):
        quiet_expected_noise()
        self.topology = topology
        self.fleet = fleet
        self.site = f"www.{topology.domain}"
        self._memo: dict[object, object] = {}
        self._locks: dict[object, threading.Lock] = {}
        self._guard = threading.Lock()
        self._cleanups: list[tuple[str, Callable[[], object]]] = []
        self._unreachable: dict[str, str] = {}
        self._stopped = threading.Event()
        self._doing: dict[int, tuple[str | None, str]] = {}  # in flight: id → (check, what)
        self._running: dict[str, threading.Event] = {}  # set unless a check has it paused
        self._tunnelled = tunnelled(topology, fleet)

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

    def client_address(self) -> str:
        """This machine's address as the lab's hosts see it (no packet is sent)."""

        def find() -> str:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                probe.connect((self.topology.site_address, WEB_PORT))
                return probe.getsockname()[0]

        return self.memo("client address", find)

    def web_hosts(self) -> list[str]:
        return [h.name for h in self.topology.with_role("web")]

    def web_addresses(self) -> dict[str, str]:
        return {h: self.address(h) for h in self.web_hosts()}

    def sh(self, host: str, command: str, sudo: bool = False, check: bool = True, timeout=15):
        """Run a command on host; a failure becomes a CheckError naming host and what failed.

        The distribution's programs run it, in a clean environment (lab.remote.trusted); the
        host's own `timeout` ends it, so nothing of the grader's keeps running.
        """
        if host in self._unreachable:
            raise CheckError(self._unreachable[host])
        try:
            with self._busy_with(f"a command on {host}"):
                result = self.fleet.run_trusted(host, command, sudo=sudo, timeout=timeout)
        except CommandTimedOut:
            raise CheckError(f"{host}: a command of the grader did not finish in time") from None
        except ShellBroken as exc:  # its outcome unknown; the host may still answer
            raise CheckError(f"{host}: a command of the grader got no answer: {exc}") from None
        except CheckError:
            raise
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

    def stop(self) -> None:
        """The run's deadline: from now on a check's commands and requests fail at once (and
        a reply still arriving is cut off); the run's own cleanup still runs them."""
        self._stopped.set()

    def busy(self, check_id: str) -> list[str]:
        """What check_id is waiting for now: requests and commands in flight, longest first."""
        with self._guard:
            doing = [what for check, what in self._doing.values() if check == check_id]
        return list(dict.fromkeys(doing))

    def _wait_for_commands_in_flight(self, seconds: float) -> None:
        def none_in_flight() -> bool:
            with self._guard:
                return not self._doing

        until(none_in_flight, seconds, 0.05)

    def _refuse_when_stopped(self) -> None:
        if self._stopped.is_set() and CURRENT_CHECK.get() is not None:
            raise CheckError("stopped at the run's deadline")

    @contextmanager
    def _busy_with(self, what: str):
        self._refuse_when_stopped()
        key = object()
        with self._guard:
            self._doing[id(key)] = (CURRENT_CHECK.get(), what)
        try:
            yield
        finally:
            with self._guard:
                del self._doing[id(key)]

    def on_each(self, hosts: list[str], func) -> dict:
        """func(host) for each host in parallel, results by host (exceptions re-raised)."""
        outcomes = fan_out(hosts, func)
        for outcome in outcomes.values():
            if outcome.error:
                raise outcome.error
        return {host: outcome.value for host, outcome in outcomes.items()}

    def together(self, *funcs: Callable[[], object]) -> list:
        """Each of funcs() in parallel, their results in order (an exception re-raised)."""
        return list(self.on_each(list(range(len(funcs))), lambda i: funcs[i]()).values())

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

    def refresh(self, key, make: Callable[[], object]):
        """make() again for key, for the rest of the run (what it saw was about to change)."""
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            self._memo.pop(key, None)
        return self.memo(key, make)

    @contextmanager
    def pausing(self, thing: str):
        """Mark thing (the replica) paused by the current check while inside: a check that
        needs it running waits for the end (once_running)."""
        running = self._running_event(thing)
        running.clear()
        try:
            yield
        finally:
            running.set()

    def once_running(self, thing: str, seconds: float = 30.0) -> None:
        """Wait (bounded; cut short at the run's deadline) while a check has thing paused."""
        running = self._running_event(thing)
        if not running.is_set():
            with self._busy_with(f"the end of the pause of {thing} by another check"):
                until(lambda: running.is_set() or self._stopped.is_set(), seconds, 0.02)
            self._refuse_when_stopped()

    def _running_event(self, thing: str) -> threading.Event:
        with self._guard:
            if thing not in self._running:
                self._running[thing] = threading.Event()
                self._running[thing].set()
            return self._running[thing]

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
        """Undo whatever checks left changed (interrupted or crashed); returns what failed.

        A command still running on a host (Ctrl-C came while it was under way) is let finish
        first (bounded): an undo run before it would leave behind what it then creates."""
        self._wait_for_commands_in_flight(CLEANUP_WAIT)
        failed = []
        while self._cleanups:
            what, undo = self._cleanups.pop()
            try:
                undo()
            except BaseException as exc:  # go on: every other cleanup must still run
                failed.append(f"{what}: {exc}")
        if self.fleet is not None:
            self.fleet.close_kept_shells()  # the run is over: its channels are free again
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
        """Undo what an earlier, killed run may have left (LEFTOVERS), on every host."""
        script = "".join(f"{undo(self.topology)}; " for undo in LEFTOVERS.values()) + "true"
        fan_out(self.topology.names, lambda host: self.sh(host, script, sudo=True, check=False))

    # -- network from this machine ----------------------------------------------------------
    def http(
        self, url: str, method: str = "GET", timeout=HTTP_TIMEOUT, follow: bool = True, **kwargs
    ):
        """One HTTP request on a fresh connection, for the site's name, with the headers a
        browser sends (lab/observe/visitor.py; a caller's headers replace those of the same name).

        Like a browser, it follows a redirect from http:// to https:// on the same site once
        (connecting to the same address, the site's name as SNI and Host) and trusts the lab CA.
        """
        extra = {"Host": self.site, **kwargs.pop("headers", {})}
        reply = self._request(method, url, extra, timeout, kwargs)
        target = follow and upgraded(url, extra["Host"], reply.status_code, reply.headers)
        if target:
            extra["Host"] = urlsplit(target[1]).netloc
            reply = self._request(method, target[0], extra, timeout, kwargs)
        return reply

    def lab_ca(self) -> str | None:
        """The lab CA's certificate file, once the lab has one."""
        path = ca.Files.of(LabState(self.topology.name)).cert
        return str(path) if path.is_file() else None

    def _request(self, method: str, url: str, extra: dict, timeout, kwargs: dict):
        name = (urlsplit(f"//{extra['Host']}").hostname or "").rstrip(".")
        headers = browser_headers(method, url, extra)
        parts = urlsplit(url)
        try:
            port = parts.port or (443 if parts.scheme == "https" else WEB_PORT)
        except ValueError:
            raise CheckError(f"{method} {url}: not a port number") from None
        try:
            with (
                self._busy_with(f"{method} {url}"),
                self.reach(parts.hostname or "", port) as (address, local),
                requests.Session() as session,
            ):
                sent = url
                if address != parts.hostname:
                    sent = parts._replace(netloc=f"{address}:{local}").geturl()
                session.headers.clear()  # requests' own (python-requests) would go first
                session.mount("https://", _SiteAdapter(name))
                options = {"verify": self.lab_ca() or False, **kwargs}
                reply = session.request(
                    method,
                    sent,
                    headers=headers,
                    timeout=timeout,
                    allow_redirects=False,
                    stream=True,
                    **options,
                )
                with reply:  # read as it comes, so that the deadline can cut a slow reply off
                    body = []
                    for chunk in reply.iter_content(READ_CHUNK):
                        body.append(chunk)
                        self._refuse_when_stopped()
                    reply._content = b"".join(body)
                return reply
        except requests.RequestException as exc:
            raise CheckError(f"{method} {url}: {_reason(exc)}") from None
        except ChannelRefused as exc:
            raise CheckError(f"{method} {url}: {exc.reason} (from {exc.via})") from None

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
        answers over SSH (decided once per run; '' too when no balancer answers); host itself
        when its address is not reachable from this machine (nothing is sent there)."""
        if self.tunnelled(self.address(host)):
            return ""  # http() goes through host's own SSH
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

    def outside_sources(self, host: str) -> list[str]:
        """Where a visitor outside host may come from: this machine, then every other lab host
        that answers over SSH, the balancers first (decided once per run)."""

        def find() -> list[str]:
            others = [h.name for h in self.topology.with_role("lb")] + self.topology.names
            names = list(dict.fromkeys(h for h in others if h != host))
            answers = fan_out(names, lambda name: self.sh(name, "true"))
            return [THIS_MACHINE] + [name for name in names if not answers[name].error]

        return self.memo(("outside of", host), find)

    def in_lab(self, address: str) -> bool:
        """Whether address is an IPv4 address of the lab's network: the only ones this machine
        contacts (an address a student put on a host is asked from the other hosts alone)."""
        try:
            return ipaddress.ip_address(address) in self.topology.subnet
        except ValueError:
            return False

    def addresses(self, host: str) -> list[ipaddr.Address]:
        """host's addresses, IPv4 and IPv6, by interface (`ip -o addr show`, read once per run)."""
        return self.memo(
            ("addresses", host),
            lambda: ipaddr.parse(self.sh(host, ipaddr.ADDRESSES, check=False)),
        )

    def lab_interface(self, host: str) -> str | None:
        """host's interface on the lab network (the one carrying its lab address): the scope of
        a link-local address host connects to (None when not found)."""
        return ipaddr.interface_of(self.addresses(host), self.address(host))

    def from_outside(self, source: str, address: str, port: int, path: str) -> dict | None:
        """GET path from address:port (IPv4 or IPv6) as a visitor from source: this machine, or
        another lab host, whose SSH server connects there for us (a link-local IPv6 address
        with source's interface on the lab network as its scope). Returns where it was asked
        from, the status (None: no answer), the JSON object of the answer and its Server header;
        None when source
        cannot connect there (or cannot ask: this machine has no IPv6 on the lab network, nor
        contacts an address it reaches through SSH). Each connection gets a short while only.
        Where plain HTTP brings no JSON object, it is asked again over TLS, whatever certificate
        it shows (a relay that speaks TLS only: a visitor clicks through the warning), and so is
        a port whose plain answer is not a lab host's /api/status (a decoy in front of a TLS
        relay); the TLS answer is taken when it is one, or when plain HTTP brought no JSON."""
        started = time.monotonic()
        plain = self._from_outside(source, address, port, path, "http")
        if plain is None or self.status_like(plain["json"]):
            return plain
        if plain["status"] is None and time.monotonic() - started >= OUTSIDE_READ_TIMEOUT:
            return plain  # a silent server: TLS would have refused the plain request at once
        secure = self._from_outside(source, address, port, path, "https")
        if secure is None or secure["json"] is None:
            return plain
        return secure if self.status_like(secure["json"]) or plain["json"] is None else plain

    def status_like(self, body) -> bool:
        """Whether a JSON answer looks like a lab host's /api/status (its host and a
        request_id, docs/app-contract.md), whoever gave it."""
        if not isinstance(body, dict) or "request_id" not in body:
            return False
        host = str(body.get("host") or "").lower().partition(".")[0]
        return host in self.topology.names

    def _from_outside(
        self, source: str, address: str, port: int, path: str, scheme: str
    ) -> dict | None:
        timeout = OUTSIDE_READ_TIMEOUT  # found open first: connecting takes a TLS handshake
        link_local = is_link_local(address)
        if source == THIS_MACHINE:
            if link_local or self.tunnelled(address) or not self.in_lab(address):
                return None
            if connect_state(address, port, ROUTE_PROBE_TIMEOUT) != "open":
                return None
            host = f"[{address}]" if ":" in address else address
            return self._outside(source, f"{scheme}://{host}:{port}{path}", timeout)
        if link_local:
            scope = self.lab_interface(source)
            if not scope:
                return None
            address = f"{address}%{scope}"
        try:
            with forwarded(
                self.fleet[source], address, port, source, OUTSIDE_CONNECT_TIMEOUT
            ) as local:  # a forward takes one connection: one per attempt
                return self._outside(source, scheme + local.removeprefix("http") + path, timeout)
        except ChannelRefused as refused:
            if refused.reason == FORWARDING_OFF:  # unasked is not unreached: say so
                raise
            return None  # that host cannot connect there

    def datagram_from_outside(self, source: str, address: str, port: int, path: str) -> dict | None:
        """GET path sent to a UDP port address:port in one datagram, as a visitor's browser
        would send it, from source (this machine, or another lab host with perl), and what came
        back in datagrams, as from_outside gives it (status None: nothing came back). None
        where source cannot send there (as from_outside)."""
        request = datagram_request(path, self.site)
        if source == THIS_MACHINE:
            if is_link_local(address) or self.tunnelled(address) or not self.in_lab(address):
                return None
            raw = exchange_datagram(address, port, request, OUTSIDE_READ_TIMEOUT)
        else:
            if is_link_local(address):
                scope = self.lab_interface(source)
                if not scope:
                    return None
                address = f"{address}%{scope}"
            line = host_http.datagram(address, port, request, OUTSIDE_READ_TIMEOUT)
            raw = self.sh(source, line, check=False, timeout=int(OUTSIDE_READ_TIMEOUT) + 70)
        reply = host_http.parse_reply(raw)
        body = reply.json() if reply.status else None
        return {
            "from": source,
            "status": reply.status or None,
            "json": body if isinstance(body, dict) else None,
            "server": reply.headers.get("server", ""),
        }

    def _outside(self, origin: str, url: str, timeout) -> dict:
        try:
            reply = self.http(url, timeout=timeout, follow=False, verify=False)
        except CheckError:
            return {"from": origin, "status": None, "json": None, "server": ""}
        return {
            "from": origin,
            "status": reply.status_code,
            "json": json_object(reply),
            "server": reply.headers.get("Server", ""),  # who answered the visitor last
        }

    def dns_query(self, server: str, name: str, rdtype: str = "A") -> dns.message.Message:
        """Ask server directly (no resolver, no recursion) about name: over UDP from this
        machine, or over TCP through SSH when the server's address is not reachable from here."""
        query = dns.message.make_query(name, rdtype)
        query.flags &= ~dns.flags.RD
        try:
            with self.reach(server, 53) as (address, port):
                if address == server:
                    return dns.query.udp(query, server, timeout=3)
                return dns.query.tcp(query, address, port=port, timeout=3)
        except (dns.exception.DNSException, OSError) as exc:
            raise CheckError(
                f"DNS query to {server} for {name}: {exc or type(exc).__name__}"
            ) from None

    # -- addresses not reachable from this machine -------------------------------------------
    def tunnelled(self, address: str) -> bool:
        """Whether address is reached through a host's SSH connection, never directly."""
        return address in self._tunnelled

    def via(self, address: str) -> str:
        """The host whose SSH server connects to address for us (the balancer holding a
        virtual address)."""
        host = self._tunnelled[address]
        return host or self.name("lb")

    @contextmanager
    def reach(self, address: str, port: int):
        """(address, port) to connect to from this machine for address:port: itself, or a
        local port whose first connection the host behind address makes over SSH."""
        if not self.tunnelled(address):
            yield address, port
            return
        via = self.via(address)
        try:
            conn = self.fleet.opened(via)
        except Exception as exc:
            raise CheckError(f"{via}: unreachable over SSH: {describe(exc)}") from None
        with forwarded_port(conn, address, port, via) as local:
            yield "127.0.0.1", local


class _SiteAdapter(HTTPAdapter):
    """HTTPS to the address in the URL, naming the site in TLS (SNI) and checking its certificate
    for the site's name rather than for the address."""

    def __init__(self, name: str):
        self.name = name
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs.update(server_hostname=self.name, assert_hostname=self.name)
        super().init_poolmanager(*args, **kwargs)


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


def browser_headers(method: str, url: str, extra: dict) -> dict[str, str]:
    """A browser's headers for url, Host first, then the browser's own, with extra's values
    (case-insensitively) in place of them."""
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    wanted = {k.lower(): (k, v) for k, v in extra.items()}
    host = wanted.pop("host")[1]
    found = {"Host": host}
    for key, value in visitor.headers(method, path, f"{parts.scheme}://{host}").items():
        found[key] = wanted.pop(key.lower(), (key, value))[1]
    found.update(dict(wanted.values()))
    return found


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


def attempts(targets: list[tuple[str, str, int]], timeout: float) -> dict[tuple, str]:
    """What each (proto, address, port) gave from this machine, all tried at once: a TCP
    connection, or a UDP datagram that counts as open when one comes back: open, refused,
    silent (no answer within timeout) or unreachable."""
    found: dict[tuple, str] = {}
    for start in range(0, len(targets), _attempts_at_once()):
        found |= _attempt(targets[start : start + _attempts_at_once()], timeout)
    return found


def _attempts_at_once() -> int:
    """How many sockets attempts() may hold open at once (this process's file limit)."""
    try:
        import resource
    except ImportError:  # Windows: 512 sockets per select() call in CPython
        return 400
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        with contextlib.suppress(ValueError, OSError):
            soft = min(hard if hard != resource.RLIM_INFINITY else 65536, 65536)
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return max(64, min(soft - 256, 4096))


def _attempt(targets: list[tuple[str, str, int]], timeout: float) -> dict[tuple, str]:
    """attempts() for as many targets as this process may hold sockets for at once."""
    found: dict[tuple, str] = {}
    selector, sockets = selectors.DefaultSelector(), []
    try:
        for target in targets:
            proto, address, port = target
            udp = proto == "udp"
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            try:
                s = socket.socket(family, socket.SOCK_DGRAM if udp else socket.SOCK_STREAM)
            except OSError:  # out of files: not tried, never taken for blocked
                found[target] = "unknown"
                continue
            sockets.append(s)
            try:
                s.setblocking(False)
                if udp:
                    s.connect((address, port))
                    s.send(os.urandom(random.randint(8, 63)))  # nothing to tell it by
                    selector.register(s, selectors.EVENT_READ, target)
                elif (code := s.connect_ex((address, port))) == 0:
                    found[target] = "open"
                elif code in (errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN):
                    selector.register(s, selectors.EVENT_WRITE, target)
                else:
                    found[target] = _failed_attempt(code)
            except OSError as error:
                found[target] = _failed_attempt(error.errno)
        deadline = time.monotonic() + timeout
        while selector.get_map() and (left := deadline - time.monotonic()) > 0:
            for key, _ in selector.select(left):
                s, target = key.fileobj, key.data
                selector.unregister(s)
                if target[0] == "tcp":
                    code = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    found[target] = _failed_attempt(code) if code else "open"
                    continue
                try:
                    s.recv(64)
                    found[target] = "open"
                except OSError as error:
                    found[target] = _failed_attempt(error.errno)
    finally:
        selector.close()
        for s in sockets:
            s.close()
    return {target: found.get(target, "silent") for target in targets}


def _failed_attempt(code: int | None) -> str:
    """A failed attempt's errno in words: refused, unsent (a firewall of the sender's kept it
    in), or unreachable."""
    if code in (errno.EPERM, errno.EACCES):
        return "unsent"
    return "refused" if code == errno.ECONNREFUSED else "unreachable"


def datagram_request(path: str, site: str) -> bytes:
    """GET path of site with the headers a browser sends, as the bytes of one datagram."""
    headers = visitor.headers("GET", path, f"http://{site}")
    lines = [f"GET {path} HTTP/1.1", f"Host: {site}", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def exchange_datagram(address: str, port: int, request: bytes, wait: float) -> str:
    """request in one UDP datagram to address:port from this machine, and the datagrams that
    come back: the first within wait seconds, each next within a second (as http.datagram)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    parts = []
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect((address, port))
            sock.send(request)
            for n in range(64):
                if not select.select([sock], [], [], wait if n == 0 else 1)[0]:
                    break
                parts.append(sock.recv(65535))
        except OSError:  # refused (nothing there), unreachable
            pass
    return b"".join(parts).decode(errors="replace")


def is_link_local(address: str) -> bool:
    """Whether address is an IPv6 link-local one (fe80::/10), which needs a scope to connect."""
    try:
        return ipaddress.ip_address(address.partition("%")[0]).is_link_local and ":" in address
    except ValueError:
        return False


def tunnelled(topology: Topology, fleet: Fleet | None) -> dict[str, str]:
    """{address: host whose SSH reaches it} for the lab addresses this machine must not
    contact (their hosts' specs say tunnel); a virtual address maps to '' (the holder)."""
    specs = getattr(fleet, "specs", None) or {}
    found = {
        h.address: h.name for h in topology.hosts if getattr(specs.get(h.name), "tunnel", False)
    }
    if found and topology.virtual_address:
        found[topology.virtual_address] = ""
    return found


FORWARDING_OFF = "its SSH server does not forward connections (AllowTcpForwarding)"


class ChannelRefused(CheckError):
    """A host's SSH server could not connect to address:port for us."""

    def __init__(self, via: str, address: str, port: int, reason: str):
        super().__init__(f"{via} could not connect to {address}:{port}: {reason}")
        self.reason = reason
        self.via = via


@contextmanager
def forwarded(conn, address: str, port: int, via: str, timeout: float = HTTP_TIMEOUT):
    """http://127.0.0.1:PORT on this machine, whose first connection is made to address:port
    by via's SSH server (a direct-tcpip channel of conn, via's open connection) within timeout."""
    with forwarded_port(conn, address, port, via, timeout) as local:
        yield f"http://127.0.0.1:{local}"


@contextmanager
def forwarded_port(conn, address: str, port: int, via: str, timeout: float = HTTP_TIMEOUT):
    """A port on 127.0.0.1 whose first connection is made to address:port by via's SSH server
    (a direct-tcpip channel of conn, via's open connection) within timeout."""
    try:
        channel = conn.transport.open_channel(
            "direct-tcpip", (address, port), ("127.0.0.1", 0), timeout=timeout
        )
    except (paramiko.SSHException, OSError, EOFError, AttributeError) as exc:
        raise ChannelRefused(via, address, port, _refusal(exc)) from None
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(HTTP_TIMEOUT)
    pump = threading.Thread(target=carry, args=(listener, channel), daemon=True)
    pump.start()
    try:
        yield listener.getsockname()[1]
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
        return FORWARDING_OFF
    if "Timeout" in str(exc):
        return "timed out"
    return describe(exc)


class _QuietChannelFailures(logging.Filter):
    """paramiko logs a refused channel as an error on stderr; the CheckError already says it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "open FAILED" not in record.getMessage()


@functools.cache
def quiet_expected_noise() -> None:
    """Once, when the first LiveLab is made (not on import): no warning for HTTPS to a lab
    without a CA of its own (its redirect is followed unchecked), and no paramiko error line for
    a refused SSH channel (the CheckError says it)."""
    warnings.filterwarnings("ignore", category=InsecureRequestWarning, module="urllib3")
    logging.getLogger("paramiko.transport").addFilter(_QuietChannelFailures())


def carry(listener: socket.socket, channel, limit: float = 60.0) -> None:
    """Copy bytes both ways between listener's first connection and channel until one closes."""
    try:
        client, _ = listener.accept()
    except OSError:
        return
    deadline = Deadline(limit)
    ends = {client: channel, channel: client}
    with client:
        try:
            while not deadline.passed:
                ready, _, _ = select.select(list(ends), [], [], 0.5)
                for source in ready:
                    data = source.recv(65536)
                    if not data:
                        return
                    ends[source].sendall(data)
        except (OSError, ValueError):  # ValueError: select() on an end closed meanwhile (fd -1)
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
