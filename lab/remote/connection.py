"""The one way `lab` talks to hosts: Fabric connections built from specs, reused, fanned out."""

from __future__ import annotations

import contextvars
import io
import socket
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import paramiko
from fabric import Config, Connection
from fabric.runners import Remote, Result

from lab.core.errors import LabError
from lab.core.state import write_private
from lab.core.wait import Deadline, results
from lab.remote.quoting import trusted
from lab.remote.shell import KeptShells, NotSent

CONNECT_TIMEOUT = 5
# sshd frees a finished session one turn of its loop after the channel closes, so a client
# running N commands back to back can hold 2N of sshd's MaxSessions (10) for a moment
CHANNELS = 5
STDIN_CHUNK = 32768
KEPT_SHELLS = 3  # per host, each holding one of its CHANNELS (lab.remote.shell)
ASK_RUNNING_EVERY = 1.0  # seconds between wait_for_ssh's questions whether the host still runs


@dataclass(frozen=True)
class HostSpec:
    """How to reach one host over SSH."""

    name: str
    address: str
    port: int
    user: str
    key_file: Path
    known_hosts: Path | None = None
    host_keys_pinned: bool = True  # False: keys are learnt on first contact (Vagrant's machines)
    # the first key seen is written to known_hosts and enforced from then on (servers the lab
    # did not create); host_keys_pinned then says nothing
    record_host_keys: bool = False
    # the host's lab address is not reachable from this machine: probes go through its SSH
    tunnel: bool = False


class HostKeyChanged(LabError):
    """A server answered with another host key than the one known for it."""

    def __init__(self, spec: HostSpec, exc: paramiko.BadHostKeyException):
        where = f"{spec.address}:{spec.port}" if spec.port != 22 else spec.address
        super().__init__(
            f"{spec.name} ({where}): host key changed: it offers {fingerprint(exc.key)}, "
            f"{spec.known_hosts} has {fingerprint(exc.expected_key)}; not connecting "
            "(if the server was rebuilt, delete its line there)"
        )


def fingerprint(key: paramiko.PKey) -> str:
    """A key's type and SHA256 fingerprint, as ssh-keygen -l prints them."""
    return f"{key.get_name()} {key.fingerprint}"


class RecordFirstKey(paramiko.MissingHostKeyPolicy):
    """Trust on first use: a host's first key is appended to known_hosts (0600) and accepted;
    paramiko then refuses any other key for that host."""

    _lock = threading.Lock()

    def __init__(self, path: Path):
        self.path = Path(path)

    def missing_host_key(self, client, hostname: str, key: paramiko.PKey) -> None:
        with self._lock:  # another connection of this run may have recorded it meanwhile
            known = paramiko.HostKeys()
            text = self.path.read_text() if self.path.is_file() else ""
            if text:
                known.load(str(self.path))
            recorded = (known.lookup(hostname) or {}).get(key.get_name())
            if recorded is not None and recorded != key:
                raise paramiko.BadHostKeyException(hostname, key, recorded)
            if recorded is None:
                if text and not text.endswith("\n"):
                    text += "\n"
                write_private(self.path, f"{text}{hostname} {key.get_name()} {key.get_base64()}\n")
        client.get_host_keys().add(hostname, key.get_name(), key)


class SafeRemote(Remote):
    """Fabric's remote runner, safe when a command exits before it has read all its stdin."""

    def wait(self) -> None:
        """Until the command has exited: woken by its exit status, not in invoke's 10 ms naps."""
        while not self.process_is_finished and not self.has_dead_threads:
            self.channel.status_event.wait(self.input_sleep)

    def read_our_stdin(self, input_):
        """A whole chunk of an in-memory input: invoke reads streams that are not terminals one
        byte per pass, with a 10 ms nap between passes (10 KB took 100 s)."""
        if isinstance(input_, io.StringIO):
            return input_.read(STDIN_CHUNK)
        return super().read_our_stdin(input_)

    # paramiko sends a channel's data and its EOF after releasing the channel's lock, so they
    # can follow the CLOSE of a command that has just exited; sshd then drops the whole
    # connection ("packet referred to nonexistent channel") and every command sharing it fails.
    # Both are sent under the lock here, and only on an open channel.
    def _write_proc_stdin(self, data: bytes) -> None:
        channel = self.channel
        while data:
            with channel.lock:
                size = 0 if channel.closed else channel._wait_for_send_window(len(data))
                if size == 0:
                    return  # the command has exited without reading its input, like EPIPE
                message = paramiko.Message()
                message.add_byte(paramiko.common.cMSG_CHANNEL_DATA)
                message.add_int(channel.remote_chanid)
                message.add_string(data[:size])
                channel.transport._send_user_message(message)
            data = data[size:]

    def close_proc_stdin(self) -> None:
        channel = self.channel
        with channel.lock:
            eof = None if channel.closed else channel._send_eof()
            if eof is not None:
                channel.transport._send_user_message(eof)


def connect(spec: HostSpec) -> Connection:
    """A Fabric connection: the lab key only, known host keys enforced, no ~/.ssh/config."""
    conn = Connection(
        host=spec.address,
        port=spec.port,
        user=spec.user,
        # no command reads the local stdin unless given input: invoke would forward it, and an
        # endless one (`yes | lab ...`) keeps every command from returning
        config=Config(
            lazy=True,
            overrides={"runners": {"remote": SafeRemote}, "run": {"in_stream": False}},
        ),
        connect_timeout=CONNECT_TIMEOUT,
        connect_kwargs={
            "key_filename": str(spec.key_file),
            "look_for_keys": False,
            "allow_agent": False,
            "banner_timeout": CONNECT_TIMEOUT,
            "auth_timeout": CONNECT_TIMEOUT,
        },
    )
    if spec.record_host_keys and spec.known_hosts:
        # loaded into the client's own keys (not load_host_keys: paramiko would rewrite the file)
        if Path(spec.known_hosts).is_file():
            conn.client.get_host_keys().load(str(spec.known_hosts))
        conn.client.set_missing_host_key_policy(RecordFirstKey(spec.known_hosts))
    elif spec.known_hosts and Path(spec.known_hosts).is_file():
        conn.client.load_host_keys(str(spec.known_hosts))
        if spec.host_keys_pinned:
            conn.client.set_missing_host_key_policy(paramiko.RejectPolicy())
    return conn


def open_checked(spec: HostSpec, conn: Connection) -> None:
    """conn.open(); a changed host key becomes one line naming the host (HostKeyChanged)."""
    if conn.is_connected:
        return
    sock = quick_socket(spec)
    conn.connect_kwargs["sock"] = sock  # for this login only: a later open makes its own
    try:
        conn.open()
    except paramiko.BadHostKeyException as exc:
        sock.close()
        raise HostKeyChanged(spec, exc) from None
    except BaseException:
        sock.close()
        raise
    finally:
        conn.connect_kwargs.pop("sock", None)


def quick_socket(spec: HostSpec) -> socket.socket:
    """A TCP connection to the host's sshd with Nagle's algorithm off. With it on, a small SSH
    request waits for the ACK of the one before, which the host delays by 40 ms: every command
    took about 45 ms instead of 3."""
    sock = socket.create_connection((spec.address, spec.port), timeout=CONNECT_TIMEOUT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


@dataclass(frozen=True)
class Outcome:
    """What one host returned from a fanned-out call, or the exception it raised."""

    host: str
    value: object = None
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def fan_out(items: Iterable, func: Callable, key: Callable = lambda item: item) -> dict:
    """func(item) for every item in parallel, never stopping at the first failure.

    Returns {key(item): Outcome}, in the items' order.
    """
    items = list(items)

    def call(item) -> Outcome:
        try:
            return Outcome(key(item), value=func(item))
        except Exception as exc:  # each item's failure is reported, the others go on
            return Outcome(key(item), error=exc)

    if not items:
        return {}
    with ThreadPoolExecutor(
        max_workers=len(items)
    ) as pool:  # each in a copy of the caller's context
        futures = [pool.submit(contextvars.copy_context().run, call, item) for item in items]
        return {outcome.host: outcome for outcome in results(futures)}


class Fleet:
    """Connections to the lab's hosts, opened once per run and shared by every step."""

    def __init__(self, specs: Iterable[HostSpec]):
        self.specs = {spec.name: spec for spec in specs}
        self._connections: dict[str, Connection] = {}
        self._locks = {name: threading.Lock() for name in self.specs}
        self._channels = {name: threading.BoundedSemaphore(CHANNELS) for name in self.specs}
        self._kept = KeptShells(KEPT_SHELLS, self._channels)

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __getitem__(self, name: str) -> Connection:
        """The host's one connection (opened on first use); run() is the thread-safe way in."""
        if name not in self.specs:
            raise LabError(f"unknown host {name!r}; this lab has: {', '.join(self.specs)}")
        with self._locks[name]:
            if name not in self._connections:
                self._connections[name] = connect(self.specs[name])
            return self._connections[name]

    def run(
        self, host: str, command: str, *, timeout: float = 15, stdin: str | None = None
    ) -> Result:
        """Run command on host from any thread; a non-zero exit is in the Result, not raised.

        One thread opens the connection while the others wait (logins started at once are
        dropped by sshd's MaxStartups), and at most CHANNELS commands share it at a time.
        """
        conn = self.opened(host)
        with self._channels[host]:
            return conn.run(
                command,
                hide=True,
                warn=True,
                timeout=timeout,
                in_stream=io.StringIO(stdin) if stdin is not None else False,
            )

    def run_trusted(self, host: str, command: str, *, sudo: bool, timeout: int) -> Result:
        """command as trusted() runs it (a clean environment, root's through sudo if asked, the
        host's timeout), through one of the host's kept shells when one is free, else on a
        channel of its own; a non-zero exit is in the Result, not raised."""
        shell = self._kept.take(host, sudo, lambda: self.opened(host).client)
        if shell is not None:
            try:
                result = shell.run(command, timeout)
            except NotSent:  # its channel is gone: the command goes on a channel of its own
                self._kept.discard(host, shell)
            except BaseException:
                self._kept.discard(host, shell)
                raise
            else:
                self._kept.give_back(host, shell)
                return result
        return self.run(host, trusted(command, sudo, timeout), timeout=timeout + 5)

    def opened(self, host: str) -> Connection:
        """The host's connection, connected (one thread connects while the others wait)."""
        conn = self[host]
        with self._locks[host]:
            open_checked(self.specs[host], conn)
        return conn

    @property
    def names(self) -> list[str]:
        return list(self.specs)

    def map(self, func: Callable[[Connection], object], hosts: Iterable[str] | None = None):
        """Call func(connection) on each host in parallel; never stops at the first failure."""
        names = list(hosts) if hosts is not None else self.names

        return fan_out(names, lambda name: func(self[name]))

    def close_kept_shells(self) -> None:
        """End the kept shells (their channel slots go back to commands of their own)."""
        self._kept.close()

    def close(self) -> None:
        self._kept.close()
        for conn in self._connections.values():
            conn.close()
        self._connections.clear()


# waits until systemd started every service of the boot (a check run right after sees them)
BOOT_FINISHED = "timeout 60 systemctl is-system-running --wait >/dev/null || true"


def on_every_host(specs: Iterable[HostSpec], command: str, timeout: float = 90) -> dict[str, str]:
    """command's output on every host at once; a host that fails it makes this fail."""
    with Fleet(specs) as fleet:
        outcomes = fan_out(fleet.names, lambda name: fleet.run(name, command, timeout=timeout))
    failed = [f"{h}: {describe(o.error)}" for h, o in outcomes.items() if o.error]
    failed += [
        f"{h}: {o.value.stderr.strip() or o.value.exited}"
        for h, o in outcomes.items()
        if not o.error and o.value.exited != 0
    ]
    if failed:
        raise LabError("; ".join(failed))
    return {h: o.value.stdout for h, o in outcomes.items()}


def wait_for_ssh(
    spec: HostSpec, deadline: Deadline, running: Callable[[], bool] | None = None
) -> None:
    """Poll until the host accepts an SSH login with the lab key, or the deadline passes; a
    host that running() says has stopped (killed on Ctrl-C, or crashed) fails at once."""
    last_error, asked = "no answer", Deadline(ASK_RUNNING_EVERY)
    for _ in deadline.ticks(0.2):
        if deadline.passed:  # no try once the deadline has passed (LAB_BOOT_TIMEOUT=0: none)
            break
        if running is not None and asked.passed:  # at most once every ASK_RUNNING_EVERY s
            if not running():
                raise LabError(f"{spec.name} stopped before it accepted SSH ({last_error})")
            asked = Deadline(ASK_RUNNING_EVERY)
        try:
            with socket.create_connection((spec.address, spec.port), timeout=1):
                pass
            conn = connect(spec)
            try:
                open_checked(spec, conn)  # a changed host key fails at once, not at the deadline
                conn.run("true", hide=True, timeout=CONNECT_TIMEOUT)
                return
            finally:
                conn.close()
        except (OSError, paramiko.SSHException, EOFError) as exc:
            last_error = describe(exc)
    raise LabError(f"{spec.name} did not accept SSH at {spec.address}:{spec.port} ({last_error})")


def describe(exc: BaseException) -> str:
    """A one-line description of a connection or command failure."""
    if isinstance(exc, LabError):
        return str(exc)
    if isinstance(exc, paramiko.BadHostKeyException):
        return "host key changed (not the host this lab created)"
    if isinstance(exc, paramiko.AuthenticationException):
        return "the lab's SSH key was refused"
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is sshd running?)"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__
