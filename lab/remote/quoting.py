"""The one place remote commands are quoted and wrapped in sudo, and remote values validated."""

from __future__ import annotations

import re
import shlex

quote = shlex.quote
_PID = re.compile(r"^[1-9][0-9]{0,9}$")


def as_root(command: str) -> str:
    """command run by root through sudo (never prompting) in a POSIX shell."""
    return f"sudo -n sh -c {quote(command)}"


# The distribution's directories only: a program a user put in /usr/local (first in root's PATH
# and in a login shell's) or in the environment never runs in the grader's place.
CLEAN_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
SUDO, ENV, TIMEOUT, SH = "/usr/bin/sudo", "/usr/bin/env", "/usr/bin/timeout", "/bin/sh"
# The distribution's perl, its modules from perl-base alone (every module the grader's scripts
# use is there, and dpkg --verify vouches for them): Debian's @INC puts /etc/perl and /usr/local
# first, where a module of a student's would shadow perl-base's inside the grader's programs.
PERL = "/usr/bin/perl -e " + shlex.quote(
    "BEGIN { my @base = grep { m{/perl-base$} } @INC; @INC = @base if @base }"
)


def perl(script: str, *modules: str) -> str:
    """PERL running script (with modules `use`d first), ready for its arguments."""
    used = "".join(f"use {m}; " for m in modules)
    return f"{PERL} -e {shlex.quote(used + script)}"


def trusted(command: str, sudo: bool = False, timeout: int | None = None) -> str:
    """command run by the distribution's /bin/sh with a clean environment (env -i: only the
    distribution's PATH, a home, a UTF-8 locale), by root through sudo when asked, and ended by
    the host's own timeout after that many seconds. Every program in the chain is named by its
    absolute path, so nothing a user installed or set is found first."""
    home = "HOME=/root" if sudo else 'HOME="$HOME"'
    bounded = f"{TIMEOUT} -k 2 {int(timeout)} " if timeout else ""
    line = f"{ENV} -i PATH={CLEAN_PATH} {home} LANG=C.UTF-8 {bounded}{SH} -c {quote(command)}"
    return f"{SUDO} -n {line}" if sudo else line


def pid(value: object) -> str | None:
    """value as a process id (digits only) or None: network values never reach a shell raw."""
    text = str(value).strip()
    return text if _PID.match(text) else None
