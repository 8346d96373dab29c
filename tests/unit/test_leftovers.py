"""Processes left running after a student's files: judged on /proc read from a real host."""

from __future__ import annotations

from lab.grading.leftovers import Proc, cgroup_path, leftover_flags, parse, strays
from tests.record import read_raw

RECORDED = read_raw("leftover-processes-web-02")


def test_the_recording_is_read_whole():
    self_pid, procs = parse(RECORDED)
    assert self_pid in procs and procs[1].unit == "/init.scope"
    commands = {p.args.strip() for p in procs.values()}
    assert commands >= {"sleep 1002", "sleep 1003", "/bin/sleep 1004"}


def test_escapes_are_flagged_and_services_are_not():
    found = {p.args.strip(): where for p, where in strays(*parse(RECORDED))}
    assert set(found) == {"sleep 1002", "sleep 1003"}, found
    assert found["sleep 1002"].startswith("outside any service unit (cgroup /system.slice/run-")
    assert found["sleep 1003"] == "inside ssh.service, with the script's environment"


def test_the_grader_its_login_and_system_services_are_not_flagged():
    _, procs = parse(RECORDED)
    found = {p.pid for p, _ in strays(*parse(RECORDED))}
    for proc in procs.values():
        if proc.args.startswith(("sshd", "/lib/systemd", "/sbin/agetty", "/usr/bin/dbus")):
            assert proc.pid not in found, proc


def test_a_flag_names_the_host_and_the_command_line_once_over_the_runs():
    seen: set = set()
    first = leftover_flags({"web-02": RECORDED}, "first", seen)
    assert len(first) == 1 and first[0].startswith("after the first run's files, 2 process(es)")
    assert "on web-02" in first[0] and "`sleep 1002`" in first[0] and "`sleep 1003`" in first[0]
    assert leftover_flags({"web-02": RECORDED}, "second", seen) == []  # the same processes
    assert leftover_flags({"web-01": ""}, "first", set()) == []


def procs(*rows: Proc) -> dict[int, Proc]:
    return {row.pid: row for row in rows}


def test_a_process_in_a_login_session_or_the_scripts_unit_is_flagged():
    init = Proc(1, 0, 1, "/init.scope", False, "/sbin/init")
    relay = Proc(40, 1, 40, "/user.slice/user-0.slice/session-3.scope", False, "socat tcp-l:9 -")
    kept = Proc(41, 1, 30, "/system.slice/webstack-grade-1-0.service", True, "sleep 9")
    unit = Proc(42, 1, 42, "/system.slice/relay.service", False, "socat tcp-l:8 -")
    found = {p.pid: where for p, where in strays(0, procs(init, relay, kept, unit))}
    assert found == {
        40: "outside any service unit (cgroup /user.slice/user-0.slice/session-3.scope)",
        41: "in the script's own unit",
    }


def test_the_observers_family_is_left_out_wherever_it_runs():
    sshd = Proc(50, 1, 50, "/user.slice/user-1000.slice/session-9.scope", False, "sshd: lab")
    shell = Proc(51, 50, 51, "/user.slice/user-1000.slice/session-9.scope", False, "sh -c ...")
    child = Proc(52, 51, 51, "/user.slice/user-1000.slice/session-9.scope", False, "tr")
    assert strays(51, procs(sshd, shell, child)) == []


def test_cgroup_path_prefers_systemds_own_hierarchy():
    assert cgroup_path("9:name=systemd:/system.slice/a.service 0::/b.scope") == (
        "/system.slice/a.service"
    )
    assert cgroup_path("0::/system.slice/nginx.service") == "/system.slice/nginx.service"
    assert cgroup_path("") == ""
