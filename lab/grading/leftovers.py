"""Processes a student's files left running after they ended: outside any service, or theirs.

A script runs in a transient unit that systemd stops with everything in it, so what survives
escaped it (`systemd-run --scope`, a cgroup of its own, another login session) or hid in
another unit while still carrying the script's environment. Services started through systemd
(`systemctl start`) are the student's right and are never flagged. Observation (one command
reading /proc) and judgement (a pure function of its output) are separate.
"""

from __future__ import annotations

from dataclasses import dataclass

from lab.remote.connection import Fleet, fan_out
from lab.remote.quoting import trusted

MARKER = "LAB_HOST="  # in the environment of every process the script started (not services')
SHOWN = 5  # processes named per host; the rest are counted

# One line per process: pid, 1 if it carries MARKER, /proc/PID/stat, its cgroups, its command
# line (first 300 bytes); first a line naming the observing shell, left out with its family.
COMMAND = (
    'echo "self $$"; '
    "for d in /proc/[0-9]*; do p=${d#/proc/}; "
    "s=$(tr '\\n\\t' '  ' <$d/stat 2>/dev/null) || continue; "
    "c=$(tr '\\n\\t' '  ' <$d/cgroup 2>/dev/null); "
    f"if tr '\\0' '\\n' <$d/environ 2>/dev/null | grep -q '^{MARKER}'; then m=1; else m=0; fi; "
    "a=$(tr '\\0\\n\\t' '   ' <$d/cmdline 2>/dev/null | head -c 300); "
    'printf \'%s\\t%s\\t%s\\t%s\\t%s\\n\' "$p" "$m" "$s" "$c" "$a"; done'
)


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    session: int
    unit: str  # the cgroup path systemd placed it in ('/system.slice/ssh.service')
    marked: bool  # it carries the script's environment
    args: str


def parse(text: str) -> tuple[int, dict[int, Proc]]:
    """(the observing shell's pid, every process by pid) from COMMAND's output."""
    self_pid, found = 0, {}
    for line in text.splitlines():
        if line.startswith("self ") and line[5:].strip().isdigit():
            self_pid = int(line[5:].strip())
            continue
        fields = line.split("\t")
        if len(fields) != 5 or not fields[0].isdigit():
            continue
        stat = fields[2].rsplit(")", 1)[-1].split()  # after "(comm)": state ppid pgrp session
        if len(stat) < 4 or not (stat[1].isdigit() and stat[3].isdigit()):
            continue
        pid = int(fields[0])
        found[pid] = Proc(
            pid, int(stat[1]), int(stat[3]), cgroup_path(fields[3]), fields[1] == "1", fields[4]
        )
    return self_pid, found


def cgroup_path(text: str) -> str:
    """systemd's cgroup path from /proc/PID/cgroup's lines (v1 name=systemd, else v2 0::)."""
    entries = [entry.split(":", 2) for entry in text.split() if entry.count(":") >= 2]
    named = [e[2] for e in entries if e[1] == "name=systemd"]
    unified = [e[2] for e in entries if e[0] == "0" and e[1] == ""]
    return (named or unified or [""])[0]


def family(procs: dict[int, Proc], pid: int) -> set[int]:
    """pid, its ancestors and its descendants: the observing command and the login it runs in."""
    ancestors, current = set(), procs.get(pid)
    while current is not None and current.ppid > 1 and current.ppid not in ancestors:
        ancestors.add(current.ppid)
        current = procs.get(current.ppid)
    descendants, grew = {pid}, True
    while grew:
        children = {p.pid for p in procs.values() if p.ppid in descendants} - descendants
        descendants |= children
        grew = bool(children)
    return ancestors | descendants


def strays(self_pid: int, procs: dict[int, Proc]) -> list[tuple[Proc, str]]:
    """The processes a script left running, each with where it is, in words."""
    mine = family(procs, self_pid) if self_pid else set()
    found = []
    for proc in sorted(procs.values(), key=lambda p: p.pid):
        unit = proc.unit.rstrip("/").rsplit("/", 1)[-1]
        if proc.pid in mine or proc.pid == 1 or proc.ppid == 2 or proc.pid == 2:
            continue  # init, kernel threads, the grader's own command and login
        if unit.startswith("session-") and proc.args.startswith("sshd: "):
            continue  # a login's sshd (libpam-systemd puts logins in session scopes)
        in_service = unit.endswith(".service") and not unit.startswith("webstack-grade-")
        if in_service and not proc.marked:
            continue
        if unit.startswith("webstack-grade-"):
            where = "in the script's own unit"
        elif in_service:
            where = f"inside {unit}, with the script's environment"
        else:
            where = f"outside any service unit (cgroup {proc.unit or '?'})"
        found.append((proc, where))
    return found


def describe_strays(host: str, found: list[tuple[Proc, str]]) -> str:
    """One flag line for a host's strays: which processes, their command lines, where."""
    shown = "; ".join(f"pid {p.pid} `{p.args.strip() or '?'}` {w}" for p, w in found[:SHOWN])
    more = f"; and {len(found) - SHOWN} more" if len(found) > SHOWN else ""
    return f"{len(found)} process(es) left running on {host}: {shown}{more}"


def observe(fleet: Fleet, hosts: list[str]) -> dict[str, str]:
    """COMMAND's output per host (hosts the grader cannot reach are left out)."""
    command = trusted(COMMAND, sudo=True, timeout=60)
    outcomes = fan_out(hosts, lambda host: fleet.run(host, command, timeout=75))
    return {h: o.value.stdout for h, o in outcomes.items() if o.ok and o.value and o.value.ok}


def leftover_flags(outputs: dict[str, str], run: str, seen: set[tuple[str, int]]) -> list[str]:
    """Flags for the processes left running after the run's files, each process flagged once
    over the runs (seen: (host, pid) already flagged); the score is not touched."""
    flags = []
    for host, text in sorted(outputs.items()):
        found = [(p, w) for p, w in strays(*parse(text)) if (host, p.pid) not in seen]
        seen |= {(host, p.pid) for p, _ in found}
        if found:
            flags.append(f"after the {run} run's files, " + describe_strays(host, found))
    return flags
