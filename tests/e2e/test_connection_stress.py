"""Many threads share one Fleet, as `lab check` does: no command is lost, mixed up or refused."""

from __future__ import annotations

import hashlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import paramiko
import pytest

from lab import providers
from lab.core import topology
from lab.core.state import LabState
from lab.remote.connection import Fleet, describe

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("lxc")]

HOST = "web-01"


def fleet_of(lab) -> Fleet:
    topo = topology.load(lab.topology)
    return Fleet(providers.select(topo, LabState(topo.name)).specs())


def hammer(fleet: Fleet, threads: int, commands: int, barrier=None, **run) -> list[str]:
    """Each thread runs `commands` echoes through fleet.run; returns what went wrong."""

    def worker(thread: int) -> list[str]:
        if barrier:
            barrier.wait()
        problems = []
        for n in range(commands):
            token = f"token-{thread}-{n}"
            try:
                result = fleet.run(HOST, f"echo {token}; hostname", **run)
            except Exception as exc:
                problems.append(f"{token}: {type(exc).__name__}: {describe(exc)}")
                continue
            if result.exited != 0 or result.stdout.split() != [token, HOST]:
                problems.append(f"{token}: exit {result.exited}, {result.stdout!r}")
        return problems

    with ThreadPoolExecutor(threads) as pool:
        return [p for problems in pool.map(worker, range(threads)) for p in problems]


def test_forty_threads_share_one_connection_and_every_command_succeeds(lab):
    with fleet_of(lab) as fleet:
        problems = hammer(fleet, threads=40, commands=25)
    assert not problems, f"{len(problems)} of 1000 commands failed, e.g. {problems[:3]}"


def test_threads_hitting_a_fresh_fleet_at_once_log_in_once(lab, monkeypatch):
    logins = []
    transport_init = paramiko.Transport.__init__

    def counted(self, *args, **kwargs):
        logins.append(self)
        transport_init(self, *args, **kwargs)

    monkeypatch.setattr(paramiko.Transport, "__init__", counted)
    for _ in range(5):
        with fleet_of(lab) as fleet:
            problems = hammer(fleet, threads=12, commands=2, barrier=threading.Barrier(12))
        assert not problems, f"{len(problems)} of 24 commands failed, e.g. {problems[:3]}"
    assert len(logins) == 5  # one SSH connection per fleet, however many threads start at once


def test_stdin_reaches_the_command_and_an_unread_stdin_is_harmless(lab):
    with fleet_of(lab) as fleet:
        assert fleet.run(HOST, "cat", stdin="fed through stdin\n").stdout == "fed through stdin\n"
        problems = hammer(fleet, threads=10, commands=10, stdin="never read\n")
    assert not problems, f"{len(problems)} of 100 commands failed, e.g. {problems[:3]}"


def test_input_still_on_its_way_when_a_command_exits_leaves_the_connection_up(lab, monkeypatch):
    """Input sent as a command exits reaches sshd before this side's CLOSE: after it, sshd
    would drop the connection and every command sharing it (packet for a nonexistent channel)."""
    with fleet_of(lab) as fleet:
        transport = fleet.opened(HOST).client.get_transport()
        send = transport._send_user_message

        def late_data(message):
            if message.asbytes()[:1] == paramiko.common.cMSG_CHANNEL_DATA:
                time.sleep(0.3)  # meanwhile the command exits and its CLOSE comes back
            send(message)

        monkeypatch.setattr(transport, "_send_user_message", late_data)
        for _ in range(3):
            assert fleet.run(HOST, "true", stdin="never read\n").exited == 0
        assert fleet.run(HOST, "echo up").stdout == "up\n"
        assert transport.is_active()


def test_input_sent_to_a_command_arrives_whole_and_fast(lab):
    data = "".join(f"line {n} of the input\n" for n in range(20000))  # about 450 KB
    with fleet_of(lab) as fleet:  # read a byte per 10 ms, as invoke does, it would take 75 min
        result = fleet.run(HOST, "sha256sum", stdin=data, timeout=30)
        assert result.stdout.split()[0] == hashlib.sha256(data.encode()).hexdigest()
        stopped_early = fleet.run(HOST, "head -c 4", stdin=data, timeout=30)  # exits unread
        assert (stopped_early.exited, stopped_early.stdout) == (0, "line")
