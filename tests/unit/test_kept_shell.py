"""The kept shell (lab.remote.shell): its perl server, run here through a local shell as sshd
would run it, answers each command as a channel of its own would (output, exit code, the
host's timeout, a clean environment, no input); the pool keeps to its size and channel slots."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from types import SimpleNamespace
from typing import ClassVar

import pytest

from lab.remote import shell
from lab.remote.shell import KeptShell, KeptShells, NotSent, ShellBroken


class LocalChannel:
    """The few methods of a paramiko channel the kept shell uses, over a local /bin/sh."""

    def __init__(self):
        self.ours, self._theirs = socket.socketpair()
        self.process = None

    def exec_command(self, command: str) -> None:
        self.process = subprocess.Popen(
            ["/bin/sh", "-c", command], stdin=self._theirs, stdout=self._theirs
        )
        self._theirs.close()

    def sendall(self, data: bytes) -> None:
        self.ours.sendall(data)

    def recv(self, size: int) -> bytes:
        return self.ours.recv(size)

    def settimeout(self, seconds: float) -> None:
        self.ours.settimeout(seconds)

    @property
    def closed(self) -> bool:
        return self.ours.fileno() == -1

    def exit_status_ready(self) -> bool:
        return self.process.poll() is not None

    def close(self) -> None:
        self.ours.close()
        self.process.wait(5)


class LocalClient:
    def __init__(self):
        self.channels: list[LocalChannel] = []

    def get_transport(self):
        def open_session(timeout=None):
            self.channels.append(LocalChannel())
            return self.channels[-1]

        return SimpleNamespace(open_session=open_session)


@pytest.fixture
def kept():
    one = KeptShell(LocalClient(), sudo=False)
    yield one
    one.close()


def test_each_command_gets_its_output_and_exit_code_in_turn(kept):
    result = kept.run("echo out; echo err >&2; exit 3", 5)
    assert (result.stdout, result.stderr, result.exited) == ("out\n", "err\n", 3)
    assert result.failed
    for n in range(20):
        assert kept.run(f"echo {n}", 5).stdout == f"{n}\n"
    assert kept.run("kill -9 $$", 5).exited == 137  # killed by a signal: 128 + its number


def test_output_of_any_size_and_bytes_arrives_whole(kept):
    big = kept.run("head -c 3000000 /dev/zero | tr '\\0' x; head -c 200000 /dev/zero >&2", 10)
    assert big.stdout == "x" * 3_000_000 and len(big.stderr) == 200_000
    odd = kept.run("printf 'caf\\303\\251 \\377 end'", 5)
    assert odd.stdout == "café \ufffd end"


def test_a_command_runs_in_a_clean_environment_with_no_input(kept, monkeypatch):
    monkeypatch.setenv("LAB_TEST_LEAK", "1")
    names = {line.split("=", 1)[0] for line in kept.run("env", 5).stdout.splitlines()}
    assert names <= {"PATH", "HOME", "LANG", "PWD", "SHLVL", "_"}, names
    assert kept.run("echo $PATH", 5).stdout.strip() == "/usr/sbin:/usr/bin:/sbin:/bin"
    started = time.monotonic()
    assert kept.run("cat", 5).stdout == ""  # stdin is /dev/null: nothing waits for input
    assert time.monotonic() - started < 2


def test_the_hosts_timeout_ends_a_command_and_the_shell_goes_on(kept):
    started = time.monotonic()
    assert kept.run("sleep 30", 1).exited == 124
    assert time.monotonic() - started < 4
    assert kept.run("echo still here", 5).stdout == "still here\n"


def test_a_shell_that_ended_says_so_and_a_closed_one_takes_nothing(kept):
    server = kept.run("ps -o ppid= -p $PPID", 5).stdout.strip()  # the command's timeout's parent
    assert kept.run(f"ps -o comm= -p {server}", 5).stdout.strip() == "perl"
    # sshd sends a channel's exit status after its end of output: not known yet when it ends
    kept.channel.exit_status_ready = lambda: False
    with pytest.raises(ShellBroken):  # the server itself killed during a command
        kept.run(f"kill -9 {server}; sleep 1", 5)
    assert not kept.alive
    kept.close()
    with pytest.raises(NotSent):
        kept.run("echo never", 5)


class FakeShell:
    started: ClassVar[list[FakeShell]] = []

    def __init__(self, client, sudo):
        if client == "no perl":
            raise ShellBroken("the kept shell did not start")
        self.sudo, self.alive = sudo, True
        FakeShell.started.append(self)

    def close(self):
        self.alive = False


def test_the_pool_keeps_to_its_size_and_gives_back_channel_slots(monkeypatch):
    monkeypatch.setattr(shell, "KeptShell", FakeShell)
    FakeShell.started = []
    slots = {"web-01": threading.BoundedSemaphore(5)}
    pool = KeptShells(3, slots)
    taken = [pool.take("web-01", True, lambda: "client") for _ in range(4)]
    assert all(taken[:3]) and taken[3] is None  # three kept shells at most: then a channel
    assert slots["web-01"]._value == 2
    pool.give_back("web-01", taken[0])
    assert pool.take("web-01", True, lambda: "client") is taken[0]  # an idle one is reused
    assert pool.take("web-01", False, lambda: "client") is None  # full: the other kind waits
    pool.discard("web-01", taken[1])
    user = pool.take("web-01", False, lambda: "client")
    assert user is not None and not user.sudo
    pool.give_back("web-01", taken[2])
    taken[2].alive = False  # its channel ended while idle: not given out again
    assert pool.take("web-01", True, lambda: "client") is not taken[2]
    pool.close()
    assert len(FakeShell.started) == 5


def test_a_host_without_a_kept_shell_gets_channels_and_an_unreachable_one_says_so(monkeypatch):
    monkeypatch.setattr(shell, "KeptShell", FakeShell)
    slots = {"old": threading.BoundedSemaphore(5), "down": threading.BoundedSemaphore(5)}
    pool = KeptShells(3, slots)
    assert pool.take("old", True, lambda: "no perl") is None
    assert pool.take("old", True, lambda: "client") is None  # not tried again
    assert slots["old"]._value == 5

    def unreachable():
        raise OSError("No route to host")

    with pytest.raises(OSError):
        pool.take("down", True, unreachable)
    assert slots["down"]._value == 5
    assert pool.take("down", True, lambda: "client") is not None  # back: tried again
