"""The grader runs the distribution's programs in a clean environment: nothing a student put in
/usr/local or in the environment runs in its place (../shared/style.md, "Trust no program the
student controls")."""

from __future__ import annotations

import os
import shlex
import stat
import subprocess

from lab.facts import haproxy, mysql, nginx, proc, programs
from lab.remote.quoting import CLEAN_PATH, trusted


def test_every_program_of_the_chain_is_named_by_its_absolute_path():
    line = trusted("echo hi", sudo=True, timeout=15)
    words = shlex.split(line)
    assert words[:4] == ["/usr/bin/sudo", "-n", "/usr/bin/env", "-i"]
    assert f"PATH={CLEAN_PATH}" in words and "HOME=/root" in words
    assert words[-7:-2] == ["/usr/bin/timeout", "-k", "2", "15", "/bin/sh"]
    assert words[-2:] == ["-c", "echo hi"]
    assert "/usr/local" not in CLEAN_PATH
    plain = shlex.split(trusted("id", timeout=5))
    assert plain[0] == "/usr/bin/env" and "sudo" not in " ".join(plain)


def test_the_facts_name_the_distributions_programs():
    assert nginx.DUMP.startswith("/usr/sbin/nginx -T") and nginx.TEST.startswith("/usr/sbin/nginx")
    assert haproxy.check_config(["/etc/haproxy/haproxy.cfg"]).startswith("{ /usr/sbin/haproxy -c")
    assert mysql.command("SELECT 1").startswith("/usr/bin/mysql ")
    assert mysql.REPLICA_STATUS.startswith("/usr/bin/mysql ")
    assert proc.HOSTNAME == "cat /proc/sys/kernel/hostname"


def test_a_program_first_in_path_and_a_variable_in_the_environment_do_not_reach_the_command(
    tmp_path,
):
    """Run for real on this machine (no sudo): a fake `hostname` first in PATH and an exported
    shell function are both left behind by the clean environment."""
    fake = tmp_path / "hostname"
    fake.write_text("#!/bin/sh\necho fooled\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    env = {
        "PATH": f"{tmp_path}:{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "BASH_FUNC_cat%%": "() { echo fooled; }",
        "LD_PRELOAD": "/nonexistent/fooled.so",
    }
    command = "hostname; cat /proc/sys/kernel/hostname; echo $PATH; env | sort"
    fooled = subprocess.run(["sh", "-c", "hostname"], env=env, capture_output=True, text=True)
    assert fooled.stdout == "fooled\n"  # as a login shell would find it
    out = subprocess.run(
        ["sh", "-c", trusted(command, timeout=5)], env=env, capture_output=True, text=True
    ).stdout
    assert "fooled" not in out and "LD_PRELOAD" not in out and "BASH_FUNC" not in out, out
    assert f"{CLEAN_PATH}\n" in out
    assert out.splitlines()[0] == out.splitlines()[1]  # the real hostname, twice


def test_what_runs_is_read_from_the_process_itself():
    out = subprocess.run(
        ["sh", "-c", programs.identify([os.getpid(), "1; rm -rf /", 999999999])],
        capture_output=True,
        text=True,
    ).stdout
    found = programs.parse_identify(out)
    assert found[os.getpid()].path == os.path.realpath(f"/proc/{os.getpid()}/exe")
    assert found[999999999].path == ""  # no such process: the kernel says nothing
    assert set(found) == {os.getpid(), 999999999}  # the value that was no pid never ran
