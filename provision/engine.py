"""Idempotent operations on one host over Fabric: read state first, change only what differs."""

from __future__ import annotations

import hashlib
import io
import shlex
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from fabric import Connection
from invoke.exceptions import CommandTimedOut, UnexpectedExit

from lab.core import templates
from lab.core.system import last_lines
from lab.facts import systemd
from lab.facts.systemd import own_lines
from lab.remote.quoting import as_root

TEMPLATES = Path(__file__).resolve().parent / "templates"
_jinja = templates.environment(TEMPLATES)
APT_ENV = "DEBIAN_FRONTEND=noninteractive"
APT_LISTS_MAX_AGE_MIN = 360


def render(template: str, **values) -> str:
    """Render a template from provision/templates."""
    return _jinja.get_template(template).render(**values)


class StepFailed(Exception):
    """A step failed on a host; the message carries the host's own error lines."""

    def __init__(self, host: str, step: str, detail: str):
        super().__init__(f"{host}: {step}: {detail}")
        self.host, self.step, self.detail = host, step, detail


@dataclass
class Change:
    component: str
    what: str


@dataclass
class HostRun:
    """One host during a provisioning run: its connection, facts and the changes made."""

    name: str
    address: str
    conn: Connection
    changes: list[Change] = field(default_factory=list)
    component: str = ""
    _packages: set[str] | None = None

    # -- commands -----------------------------------------------------------------------
    def sh(
        self,
        command: str,
        *,
        sudo: bool = True,
        stdin: str | None = None,
        check: bool = True,
        timeout: int = 600,
    ):
        """Run a shell command on the host (as root unless sudo=False)."""
        full = as_root(command) if sudo else command
        try:
            result = self.conn.run(
                full,
                hide=True,
                warn=not check,
                timeout=timeout,
                in_stream=io.StringIO(stdin) if stdin is not None else False,
            )
        except UnexpectedExit as exc:
            raise StepFailed(
                self.name,
                self.component or "command",
                last_lines(exc.result.stderr or exc.result.stdout),
            ) from None
        except CommandTimedOut:
            raise StepFailed(self.name, self.component, f"timed out: {command[:60]}") from None
        return result

    def changed(self, what: str) -> None:
        self.changes.append(Change(self.component, what))

    # -- packages -----------------------------------------------------------------------
    def installed_packages(self) -> set[str]:
        if self._packages is None:
            out = self.sh("dpkg-query -W -f='${Package} ${db:Status-Status}\\n'", sudo=False).stdout
            self._packages = {
                line.split()[0] for line in out.splitlines() if line.endswith(" installed")
            }
        return self._packages

    def packages(self, *names: str) -> bool:
        """Install the packages that are missing (one apt call), updating stale lists first."""
        missing = sorted(set(names) - self.installed_packages())
        if not missing:
            return False
        stale = (
            self.sh(
                "find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' "
                f"-mmin -{APT_LISTS_MAX_AGE_MIN} | head -1",
                check=False,
            ).stdout.strip()
            == ""
        )
        update = f"{APT_ENV} apt-get update -q"
        install = f"{APT_ENV} apt-get install -y -q -o Dpkg::Options::=--force-confold " + " ".join(
            shlex.quote(n) for n in missing
        )
        if stale:
            self.sh(update)
            self.sh(install)
        elif self.sh(install, check=False).failed:
            # recent lists can still be wrong: seeded from another lab's cache while its apt
            # was rewriting them, or older than the mirror's packages; updated once, believed
            self.sh(update)
            self.sh(install)
        self._packages = None
        self.changed(f"installed {', '.join(missing)}")
        return True

    # -- files --------------------------------------------------------------------------
    def file(
        self,
        path: str,
        content: str | bytes,
        mode: str = "0644",
        owner: str = "root",
        group: str = "root",
    ) -> bool:
        """Make path hold content with mode and owner; upload only when something differs."""
        data = content.encode() if isinstance(content, str) else content
        want = f"{hashlib.sha256(data).hexdigest()} {int(mode, 8):o} {owner} {group}"
        quoted = shlex.quote(path)
        have = self.sh(
            f"[ -f {quoted} ] && echo $(sha256sum < {quoted} | cut -d' ' -f1) "
            f"$(stat -c '%a %U %G' {quoted}) || true"
        ).stdout.strip()
        if have == want:
            return False
        tmp = f"/tmp/.webstack-{uuid.uuid4().hex}"
        self.conn.put(io.BytesIO(data), tmp)
        self.sh(  # the upload is removed either way; a failed mkdir or install fails the step
            f"mkdir -p {shlex.quote(str(Path(path).parent))} && "
            f"install -m {mode} -o {owner} -g {group} {tmp} {quoted}; "
            f"status=$?; rm -f {tmp}; exit $status"
        )
        self.changed(f"wrote {path}")
        return True

    def template(
        self,
        path: str,
        template: str,
        mode: str = "0644",
        owner: str = "root",
        group: str = "root",
        **values,
    ) -> bool:
        return self.file(path, render(template, **values), mode, owner, group)

    def link(self, path: str, target: str) -> bool:
        """Make path a symbolic link to target."""
        quoted = shlex.quote(path)
        if self.sh(f"readlink {quoted} || true").stdout.strip() == target:
            return False
        self.sh(f"ln -sfn {shlex.quote(target)} {quoted}")
        self.changed(f"linked {path}")
        return True

    def absent(self, path: str) -> bool:
        """Remove a file if present."""
        quoted = shlex.quote(path)
        if self.sh(f"[ -e {quoted} ] && echo yes || true").stdout.strip() != "yes":
            return False
        self.sh(f"rm -f {quoted}")
        self.changed(f"removed {path}")
        return True

    # -- services -----------------------------------------------------------------------
    def validate(self, command: str, what: str) -> None:
        """Run a config test (nginx -t, haproxy -c); its own error lines explain a failure."""
        result = self.sh(f"{command} 2>&1", check=False)
        if result.failed:
            raise StepFailed(
                self.name, self.component, f"{what} is invalid: {last_lines(result.stdout)}"
            )

    def service(self, name: str, *, restart: bool = False, reload: bool = False) -> bool:
        """Enable and start a service; restart or reload it when its configuration changed."""
        unit = shlex.quote(name)
        state = self.sh(
            f"systemctl is-enabled {unit}; systemctl is-active {unit}", check=False
        ).stdout.split()
        enabled, status = state[:1] == ["enabled"], (state[1:2] or [""])[0]
        active = status in ("active", "reloading")
        # a host that has just booted may still be starting it, with the configuration it
        # found then: a start only waits for that one, and a reload is refused. Wait for that
        # start to end, then restart (MariaDB stopped while it starts may never end)
        starting = status == "activating" and (restart or reload)
        restart = starting or (restart and active)
        # reset-failed first: a unit (re)started five times in 10 s, by edits or earlier
        # runs, is refused by systemd's start limit until its counter is flushed
        again = f"systemctl reset-failed {unit} 2>/dev/null; systemctl "
        try:
            if not enabled:
                self.sh(f"systemctl enable -q {unit}")
            if starting:
                self.sh(f"systemctl start {unit} 2>/dev/null; {again}restart {unit}")
            elif restart:
                self.sh(f"{again}restart {unit}")
            elif not active:
                self.sh(f"{again}start {unit}")
            elif reload:
                self.sh(f"systemctl reload {unit}")
        except StepFailed as failure:
            journal = self.sh(systemd.journal(name), check=False).stdout
            detail = last_lines(own_lines(journal), 3) if own_lines(journal) else failure.detail
            raise StepFailed(self.name, self.component, f"{name} did not start: {detail}") from None
        if not (enabled and active) or restart or reload:
            verb = "restarted" if restart else ("started" if not active else "reloaded")
            self.changed(f"{verb} {name}")
            return True
        return False

    def user(self, name: str, home: str) -> bool:
        """A system user (no login) owning home."""
        if self.sh(f"id -u {shlex.quote(name)}", check=False).ok:
            return False
        self.sh(
            f"useradd --system --home-dir {shlex.quote(home)} --shell /usr/sbin/nologin "
            f"{shlex.quote(name)}"
        )
        self.changed(f"created user {name}")
        return True
