"""A kept shell: one SSH channel per host that runs many short commands, one at a time.

A command run over a channel of its own costs the host a new session in sshd, the login shell
and sudo, about 20 ms of CPU; the grader runs about 90 of them per `lab check`. A kept shell
pays that once: the distribution's perl (perl-base is part of every Debian and Ubuntu system),
started through sudo in a clean environment, reads each command, runs it with /bin/sh under the
host's own `timeout`, in that same environment, and sends back its exit code and output.
"""

from __future__ import annotations

import threading
import time

from invoke.exceptions import CommandTimedOut
from invoke.runners import Result

from lab.remote.quoting import SH, TIMEOUT, perl, trusted

# Request: "<bytes> <seconds>\n" then the command. Answer: "<out bytes> <err bytes> <exit>\n",
# then stdout and stderr. Its input closed (the channel ended), the server ends.
SERVER = r"""
use strict; use IO::Select; use POSIX ();
$| = 1; binmode STDIN; binmode STDOUT; print "ready\n";
while (defined(my $head = <STDIN>)) {
  my ($size, $seconds) = $head =~ /^(\d+) (\d+)$/ or exit 2;
  my $command = "";
  while (length($command) < $size) {
    read(STDIN, $command, $size - length($command), length($command)) or exit 2;
  }
  pipe(my $out_r, my $out_w) or exit 3; pipe(my $err_r, my $err_w) or exit 3;
  my $pid = fork() // exit 3;
  if (!$pid) {
    setpgrp(0, 0); open(STDIN, "<", "/dev/null");
    open(STDOUT, ">&", $out_w); open(STDERR, ">&", $err_w);
    exec("@TIMEOUT@", "-k", "2", $seconds, "@SH@", "-c", $command); POSIX::_exit(127);
  }
  close($out_w); close($err_w);
  my %got = (fileno($out_r) => "", fileno($err_r) => "");
  my $select = IO::Select->new($out_r, $err_r);
  while ($select->count) {
    for my $fh ($select->can_read) {
      my $read = sysread($fh, $got{fileno $fh}, 65536, length $got{fileno $fh});
      $select->remove($fh) unless $read;
    }
  }
  waitpid($pid, 0);
  my $code = ($? & 127) ? 128 + ($? & 127) : $? >> 8;
  my ($out, $err) = ($got{fileno $out_r}, $got{fileno $err_r});
  print length($out), " ", length($err), " $code\n", $out, $err;
}
""".replace("@TIMEOUT@", TIMEOUT).replace("@SH@", SH)


class ShellBroken(Exception):
    """The kept shell ended or answered out of turn: the command's outcome is unknown."""


class NotSent(Exception):
    """The kept shell could not take the command (its channel is gone): nothing ran."""


class KeptShell:
    """One shell server on a host's connection (root's through sudo, or the login user's)."""

    def __init__(self, client, sudo: bool, timeout: float = 10):
        self.sudo = sudo
        self._buffer = b""
        self._ended = False  # its answer ended or came out of turn: never used again
        self.channel = client.get_transport().open_session(timeout=timeout)
        self.channel.exec_command(trusted(f"exec {perl(SERVER)}", sudo))
        if self._line(time.monotonic() + timeout) != b"ready":
            self.close()
            raise ShellBroken("the kept shell did not start")

    def run(self, command: str, timeout: int) -> Result:
        """command's Result (exit 124: the host's timeout ended it); CommandTimedOut when no
        answer came within timeout + 5 s, ShellBroken when the shell ended."""
        data = command.encode()
        try:
            self.channel.sendall(f"{len(data)} {int(timeout)}\n".encode() + data)
        except Exception as exc:
            raise NotSent(str(exc)) from exc
        deadline = time.monotonic() + timeout + 5
        try:
            head = self._line(deadline).split()
            out_size, err_size, code = (int(n) for n in head)
        except ValueError:
            self._ended = True
            raise ShellBroken("the kept shell answered out of turn") from None
        out = self._exactly(out_size, deadline).decode(errors="replace")
        err = self._exactly(err_size, deadline).decode(errors="replace")
        return Result(stdout=out, stderr=err, command=command, exited=code)

    @property
    def alive(self) -> bool:
        return not (self._ended or self.channel.closed or self.channel.exit_status_ready())

    def close(self) -> None:
        self.channel.close()

    def _line(self, deadline: float) -> bytes:
        while b"\n" not in self._buffer:
            self._receive(deadline)
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def _exactly(self, size: int, deadline: float) -> bytes:
        while len(self._buffer) < size:
            self._receive(deadline)
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def _receive(self, deadline: float) -> None:
        left = deadline - time.monotonic()
        if left <= 0:
            raise CommandTimedOut(Result(command="kept shell"), timeout=left)
        self.channel.settimeout(left)
        try:
            chunk = self.channel.recv(65536)
        except TimeoutError:
            raise CommandTimedOut(Result(command="kept shell"), timeout=left) from None
        if not chunk:
            self._ended = True
            raise ShellBroken("the kept shell ended")
        self._buffer += chunk


class KeptShells:
    """Up to `size` kept shells per host, shared by threads, each running one command at a time
    and holding one of the host's channel slots for as long as it lives.

    take() gives an idle shell of the kind asked for, else a new one when the host has fewer
    than size and a free slot, else None: the caller then runs the command on a channel of its
    own (the slots the kept shells leave)."""

    def __init__(self, size: int, slots: dict[str, threading.BoundedSemaphore]):
        self.size = size
        self._slots = slots
        self._idle: dict[tuple[str, bool], list[KeptShell]] = {}
        self._count: dict[str, int] = {}
        self._refused: set[tuple[str, bool]] = set()  # (host, sudo): a shell could not start
        self._dead: list[tuple[str, KeptShell]] = []
        self._lock = threading.Lock()

    def take(self, host: str, sudo: bool, connect) -> KeptShell | None:
        """An idle kept shell, a new one (on connect()'s client), or None."""
        with self._lock:
            idle = self._idle.get((host, sudo), [])
            while idle:
                shell = idle.pop()
                if shell.alive:
                    return shell
                self._dead.append((host, shell))
            dead, self._dead = self._dead, []
        for gone, shell in dead:
            self.discard(gone, shell)
        with self._lock:
            if (host, sudo) in self._refused or self._count.get(host, 0) >= self.size:
                return None
            if not self._slots[host].acquire(blocking=False):
                return None
            self._count[host] = self._count.get(host, 0) + 1
        try:
            client = connect()  # a host that cannot be reached: raised, as by any command
        except BaseException:
            self._forget(host)
            raise
        try:
            return KeptShell(client, sudo)
        except Exception:  # no perl, no sudo: commands go on channels of their own
            self._forget(host)
            with self._lock:
                self._refused.add((host, sudo))
            return None

    def give_back(self, host: str, shell: KeptShell) -> None:
        with self._lock:
            self._idle.setdefault((host, shell.sudo), []).append(shell)

    def discard(self, host: str, shell: KeptShell) -> None:
        """A shell whose command went wrong: closed, its slot freed."""
        shell.close()
        self._forget(host)

    def close(self) -> None:
        with self._lock:
            shells = [(host, s) for (host, _), idle in self._idle.items() for s in idle]
            self._idle.clear()
        for host, shell in shells:
            self.discard(host, shell)

    def _forget(self, host: str) -> None:
        with self._lock:
            self._count[host] -= 1
        self._slots[host].release()
