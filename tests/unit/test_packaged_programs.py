"""A process on a web port is named by what it runs as the system says (the kernel's
/proc/PID/exe, dpkg, the bytes themselves), not by the name a student gave a file: an
interpreter copied as /opt/fake/nginx is not Nginx; Debian's nginx, HAProxy, a packaged or venv
Python and an Nginx built from source are what they say."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from lab.core.topology import PACKAGED, load
from lab.facts import programs, ss
from lab.observe import probes
from lab.observe.live import LiveLab
from tests.helpers import judge

PYTHON_MD5 = "61b1600a764d9e2947a52ad348b2b0dd"

# `programs.identify` on web-02 for the reference (nginx master and two workers: their bytes
# name nginx, nothing more is asked), raw
REFERENCE_NGINX = (
    "exe\t702\t/usr/sbin/nginx\t\tyes\nexe\t703\t/usr/sbin/nginx\t\tyes\n"
    "exe\t704\t/usr/sbin/nginx\t\tyes\n"
)
# the false pass: python3.11 copied to /opt/fake/nginx, run by systemd-run
COPIED_INTERPRETER = (
    f"shipped\t{PYTHON_MD5}  usr/bin/python3.11\nexe\t2291\t/opt/fake/nginx\t{PYTHON_MD5}\tno\n"
)
# gunicorn from a venv (its python is a symlink: the kernel names the packaged file)
GUNICORN = (
    "package\tpython3.11-minimal: /usr/bin/python3.11\n"
    f"shipped\t{PYTHON_MD5}  usr/bin/python3.11\n"
    f"exe\t811\t/usr/bin/python3.11\t{PYTHON_MD5}\tno\n"
    f"exe\t812\t/usr/bin/python3.11\t{PYTHON_MD5}\tno\n"
)


def test_the_reference_nginx_is_nginx():
    found = programs.parse_identify(REFERENCE_NGINX)
    assert set(found) == {702, 703, 704}
    assert {programs.name(p) for p in found.values()} == {"nginx"}


def test_an_interpreter_copied_as_nginx_is_not_nginx():
    found = programs.parse_identify(COPIED_INTERPRETER)
    assert found[2291] == programs.Program(
        "/opt/fake/nginx", same_bytes_as=("/usr/bin/python3.11",)
    )
    assert programs.name(found[2291]) == (
        "nginx (/opt/fake/nginx: from no package, and not a build of nginx: "
        "the same bytes as /usr/bin/python3.11)"
    )


def test_a_packaged_interpreter_or_a_venv_copy_of_it_is_named_by_its_file():
    for pid, program in programs.parse_identify(GUNICORN).items():
        assert program.packages == ("python3.11-minimal",), pid
        assert programs.name(program) == "python3.11"
    copied = f"exe\t90\t/srv/venv/bin/python3.11\t{PYTHON_MD5}\tno\n" + GUNICORN
    assert programs.name(programs.parse_identify(copied)[90]) == "python3.11"  # venv --copies


def test_usrmerge_either_spelling_of_the_path_names_its_package():
    # the kernel says /usr/bin/dash; dpkg knows /bin/dash (asked in both spellings)
    raw = (
        "package\tdash: /bin/dash\nshipped\tf5ac0c1c1b7a0fd2dfb8ab3fc2e2c4b5  bin/dash\n"
        "exe\t41\t/usr/bin/dash\tf5ac0c1c1b7a0fd2dfb8ab3fc2e2c4b5\tno\n"
    )
    program = programs.parse_identify(raw)[41]
    assert program.packages == ("dash",) and programs.name(program) == "dash"


def test_an_upgraded_nginx_still_running_its_deleted_file_is_nginx():
    raw = "exe\t702\t/usr/sbin/nginx (deleted)\t\tyes\n"
    program = programs.parse_identify(raw)[702]
    assert program.path == "/usr/sbin/nginx" and program.deleted
    assert programs.name(program) == "nginx"


def test_nginx_built_from_source_names_itself():
    raw = "exe\t5120\t/usr/local/nginx/sbin/nginx\t\tyes\n"
    assert programs.name(programs.parse_identify(raw)[5120]) == "nginx"


def test_a_packaged_path_overwritten_with_other_bytes_is_not_that_program():
    raw = (
        "package\tnginx: /usr/sbin/nginx\n"
        f"shipped\t{PYTHON_MD5}  usr/bin/python3.11\n"
        f"exe\t77\t/usr/sbin/nginx\t{PYTHON_MD5}\tno\n"
    )
    assert programs.name(programs.parse_identify(raw)[77]) == (
        "nginx (/usr/sbin/nginx: not the file package nginx installed there, and not a build "
        "of nginx: the same bytes as /usr/bin/python3.11)"
    )


def test_a_fake_removed_after_it_started_says_so():
    raw = "exe\t9\t/opt/fake/haproxy (deleted)\t0123456789abcdef0123456789abcdef\tno\n"
    assert programs.name(programs.parse_identify(raw)[9]) == (
        "haproxy (/opt/fake/haproxy (deleted): from no package, and not a build of haproxy)"
    )


def test_diversions_and_several_owners_are_read():
    raw = (
        "package\tdiversion by dash from: /bin/sh\n"
        "package\tnginx-core, nginx-light: /usr/sbin/nginx\n"
        "exe\t3\t/usr/sbin/nginx\tabc\tno\n"
    )
    assert programs.parse_identify(raw)[3].packages == ("nginx-core", "nginx-light")


def test_a_process_the_kernel_says_nothing_of_keeps_its_process_name():
    program = programs.parse_identify("exe\t99\t\t\tno\n")[99]
    assert programs.name(program, "nginx") == "nginx"


def test_the_command_validates_pids_and_asks_each_path_once():
    command = programs.identify([12, "1; rm -rf /", 13])
    assert "for p in 12 13;" in command and "rm -rf" not in command
    assert "dpkg-query -S" in command and "/var/lib/dpkg/info/*.md5sums" in command


class PortLab(LiveLab):
    """A packaged lab whose web-02 holds port 80 with a canned `ss` and identify answer."""

    def __init__(self, listening: str, identified: str):
        super().__init__(load(PACKAGED), None)
        self.answers = {ss.LISTENING: listening}
        self.identified = identified
        self.commands: list[str] = []

    def sh(self, host, command, sudo=False, check=True, timeout=15):
        self.commands.append(command)
        return self.answers.get(command, self.identified if "readlink" in command else "")


SS_FAKE = (
    'tcp LISTEN 0 5 0.0.0.0:80 0.0.0.0:* users:(("nginx",pid=2291,fd=3))\n'
    'tcp LISTEN 0 4096 127.0.0.1:8000 0.0.0.0:* users:(("gunicorn",pid=811,fd=5))\n'
)
SS_NGINX = (
    'tcp LISTEN 0 511 0.0.0.0:80 0.0.0.0:* users:(("nginx",pid=704,fd=6),'
    '("nginx",pid=703,fd=6),("nginx",pid=702,fd=6))\n'
)


def test_programs_on_port_asks_once_for_all_pids_and_names_the_copy():
    lab = PortLab(SS_NGINX, REFERENCE_NGINX)
    assert probes.programs_on_port(lab, "web-02", 80) == ["nginx"]
    assert sum("readlink" in c for c in lab.commands) == 1
    assert "for p in 702 703 704;" in lab.commands[-1]
    lab = PortLab(SS_FAKE, COPIED_INTERPRETER)
    [name] = probes.programs_on_port(lab, "web-02", 80)
    assert name.startswith("nginx (/opt/fake/nginx: from no package")


def test_web_nginx_says_port_80_is_held_by_something_that_is_not_nginx():
    held = programs.name(programs.parse_identify(COPIED_INTERPRETER)[2291])
    hosts = {"web-02": {"listeners": [held], "loaded": None, "mtimes": {}, "config_ok": True,
                        "config_error": "", "status": 200, "server": "nginx/1.22.1"}}  # fmt: skip
    verdict = judge("web.nginx", hosts)
    assert not verdict.passed
    assert verdict.evidence == (
        "web-02: port 80 belongs to nginx (/opt/fake/nginx: from no package, and not a build of "
        "nginx: the same bytes as /usr/bin/python3.11), not Nginx"
    )


@pytest.mark.skipif(not Path("/var/lib/dpkg/info").is_dir(), reason="needs a Debian dpkg")
def test_the_command_on_this_machine_tells_a_renamed_copy_from_the_packaged_program(tmp_path):
    sleep = os.path.realpath(shutil.which("sleep") or "/bin/sleep")
    fake = tmp_path / "nginx"
    shutil.copy(sleep, fake)
    runs = [subprocess.Popen([sleep, "30"]), subprocess.Popen([str(fake), "30"])]
    try:
        time.sleep(0.2)
        pids = [p.pid for p in runs]
        out = subprocess.run(
            ["sh", "-c", programs.identify([*pids, "1; rm -rf /"])],
            capture_output=True,
            text=True,
        ).stdout
    finally:
        for process in runs:
            process.kill()
            process.wait()
    found = programs.parse_identify(out)
    assert programs.name(found[pids[0]]) == "sleep"
    named = programs.name(found[pids[1]])
    assert named.startswith(f"nginx ({fake}: from no package, and not a build of nginx"), named
    assert named.endswith("/sleep)"), named  # the packaged sleep's bytes


# integrity() on web-02 of a lab with /usr/bin/env changed, /usr/bin/mariadb diverted by hand
# and a library in /etc/ld.so.preload (dash's own diversion of /bin/sh is the package's)
TAMPERED = """verify\t??5??????   /usr/bin/env
diverted\tdiversion of /bin/sh to /bin/sh.distrib by dash
diverted\tlocal diversion of /usr/bin/mariadb to /usr/bin/mariadb.real
preload\t/nonexistent.so
"""


def test_programs_the_grader_runs_are_the_distributions_or_named_otherwise():
    assert programs.untrusted(TAMPERED) == [
        "/usr/bin/env is not the file its package installed (dpkg --verify)",
        "/usr/bin/mariadb is diverted (local diversion of /usr/bin/mariadb to "
        "/usr/bin/mariadb.real)",
        "/etc/ld.so.preload loads /nonexistent.so into every program",
    ]
    # a package's own diversion, a changed configuration file, a page a student edited
    fine = (
        "diverted\tdiversion of /bin/sh to /bin/sh.distrib by dash\n"
        "verify\t??5?????? c /etc/nginx/nginx.conf\n"
        "verify\t??5??????   /usr/share/nginx/html/index.html\n"
    )
    assert programs.untrusted(fine) == []
    made_up = "diverted\tdiversion of /usr/bin/mariadb to /usr/bin/mariadb.real by adr-tools\n"
    assert programs.untrusted(made_up) == [
        "/usr/bin/mariadb is diverted (diversion of /usr/bin/mariadb to /usr/bin/mariadb.real "
        "by adr-tools)"
    ]
    assert programs.untrusted("verify\tmissing     /usr/sbin/nginx\n") == [
        "/usr/sbin/nginx is missing (dpkg --verify)"
    ]


def test_the_integrity_command_asks_dpkg_about_every_program_the_grader_runs():
    command = programs.integrity()
    for program in ("/usr/bin/perl", "/bin/sh", "/usr/sbin/nginx", "/usr/bin/mariadb"):
        assert program in command
    assert "dpkg --verify" in command and "dpkg-divert --list" in command
