"""The lab's Debian 12 base image: an LXC container built once with debootstrap, then cloned."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from lab.core import platform
from lab.core.errors import LabError
from lab.core.system import last_lines, run

RELEASE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
SECURITY_MIRROR = "http://deb.debian.org/debian-security"
RECIPE_VERSION = 2  # bump when the recipe below changes: existing images are then rebuilt
LAB_USER = "lab"
PHONE_HOME_UNITS = (
    "systemd-timesyncd.service",
    "apt-daily.timer",
    "apt-daily.service",
    "apt-daily-upgrade.timer",
    "apt-daily-upgrade.service",
)
SSHD_CONFIG = """\
# webstack lab: key-only logins for the lab user; each host gets its own host key
HostKey /etc/ssh/ssh_host_ed25519_key
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
UseDNS no
"""


class BaseImage:
    """The cached base image container under lxcpath."""

    name = f"image-{RELEASE}"

    def __init__(self, lxcpath: Path):
        self.lxcpath = lxcpath
        self.dir = lxcpath / self.name
        self.rootfs = self.dir / "rootfs"
        self.marker = self.dir / "webstack-lab-image.json"

    @property
    def ready(self) -> bool:
        """True when the image was built completely by the current recipe."""
        try:
            return json.loads(self.marker.read_text()).get("recipe") == RECIPE_VERSION
        except (OSError, ValueError):
            return False

    def ensure(self, log) -> bool:
        """Build the image unless a complete one is cached; True when it was built now.

        Labs brought up at the same moment wait for one build instead of racing it.
        """
        if self.ready:
            return False
        self.lxcpath.mkdir(parents=True, exist_ok=True)
        with open(self.lxcpath / f".{self.name}.lock", "w") as lock:
            if not platform.lock(lock):
                log("waiting for another lab's build of the image")
                platform.lock(lock, wait=True)
            if self.ready:
                return False
            self._build(log)
        return True

    def _build(self, log) -> None:
        if self.dir.exists():
            log("removing an incomplete or outdated image")
            self.remove()
        self.lxcpath.mkdir(parents=True, exist_ok=True)
        self._create(log)
        self._customise(log)
        self.marker.write_text(json.dumps({"recipe": RECIPE_VERSION, "release": RELEASE}) + "\n")

    def _create(self, log) -> None:
        log("debootstrap Debian 12 (first run only; later runs reuse the image)")
        args = [
            "lxc-create",
            "-P",
            str(self.lxcpath),
            "-n",
            self.name,
            "-t",
            "debian",
            "--",
            "-r",
            RELEASE,
            f"--mirror={MIRROR}",
            f"--security-mirror={SECURITY_MIRROR}",
            "--packages=sudo,openssh-server,ca-certificates,curl,dbus,iputils-ping,procps,less,nano",
        ]
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        tail: list[str] = []
        for line in proc.stdout:
            tail = [*tail[-20:], line.rstrip()]
            if line.strip():
                log(line.strip()[:70])
        if proc.wait() != 0:
            raise LabError(f"building the base image failed: {last_lines(chr(10).join(tail))}")

    def _customise(self, log) -> None:
        log("preparing the image: lab user, sshd, masked timers")
        root = self.rootfs
        self._chroot("useradd", "-m", "-s", "/bin/bash", "-G", "sudo", LAB_USER)
        sudoers = root / "etc/sudoers.d/lab"
        sudoers.write_text(f"{LAB_USER} ALL=(ALL) NOPASSWD:ALL\n")
        sudoers.chmod(0o440)
        self._chroot(
            "install", "-d", "-m", "700", "-o", LAB_USER, "-g", LAB_USER, f"/home/{LAB_USER}/.ssh"
        )
        (root / "etc/ssh/sshd_config.d/lab.conf").write_text(SSHD_CONFIG)
        for key in (root / "etc/ssh").glob("ssh_host_*"):
            key.unlink()
        for unit in PHONE_HOME_UNITS:
            link = root / "etc/systemd/system" / unit
            link.unlink(missing_ok=True)
            link.symlink_to("/dev/null")
        # LXC gives eth0 its address before init; ifupdown must not wait for DHCP.
        (root / "etc/network/interfaces").write_text("auto lo\niface lo inet loopback\n")
        (root / "etc/machine-id").write_text("")  # systemd makes a fresh one on each clone's boot
        (root / "var/lib/dbus/machine-id").unlink(missing_ok=True)
        (root / "etc/apt/apt.conf.d/80webstack-lab").write_text(
            'Acquire::Retries "3";\nAPT::Keep-Downloaded-Packages "true";\n'
        )
        self._chroot("apt-get", "clean")

    def _chroot(self, *args: str) -> None:
        run(["chroot", str(self.rootfs), *args])

    def remove(self) -> None:
        """Delete the image container."""
        if self.dir.exists():
            run(["lxc-destroy", "-P", str(self.lxcpath), "-n", self.name], check=False)
        if self.dir.exists():
            run(["rm", "-rf", "--one-file-system", str(self.dir)])


def lab_user_ids(rootfs: Path) -> tuple[int, int]:
    """uid and gid of the lab user inside the image."""
    for line in (rootfs / "etc/passwd").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == LAB_USER:
            return int(fields[2]), int(fields[3])
    raise LabError("the base image has no lab user; rebuild it with `lab destroy --purge`")


def write_into(upper: Path, lower: Path, rel: str, data: str, mode: int, owner=(0, 0)) -> None:
    """Write a file into an overlay upper dir, giving new parent dirs the lower dirs' ownership."""
    parent_upper, parent_lower = upper, lower
    for part in Path(rel).parent.parts:
        parent_upper, parent_lower = parent_upper / part, parent_lower / part
        if not parent_upper.exists():
            info = parent_lower.stat()
            parent_upper.mkdir()
            os.chown(parent_upper, info.st_uid, info.st_gid)
            os.chmod(parent_upper, info.st_mode & 0o7777)
    target = upper / rel
    if target.is_symlink():
        target.unlink()
    target.write_text(data)
    os.chown(target, *owner)
    os.chmod(target, mode)
