"""A Vagrant box for vagrant-lxc, built locally from the lab's Debian 12 image (`lab box build`)."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

from lab.core.errors import LabError
from lab.core.system import run
from lab.providers.lxcimage import RECIPE_VERSION, BaseImage

BOX_NAME = "webstack-lab/debian-12"
BOX_RECIPE = 2  # bump when _customise changes: an installed older box is then rebuilt
BOX_VERSION = f"{RECIPE_VERSION}.{BOX_RECIPE}.0"
INSECURE_KEY_GLOB = "/usr/share/rubygems-integration/all/gems/vagrant-*/keys/vagrant.pub"
LXC_CONFIG = """\
lxc.include = /usr/share/lxc/config/debian.common.conf
lxc.arch = amd64
lxc.apparmor.profile = unconfined
"""
HOSTKEYS_UNIT = """\
[Unit]
Description=Generate this machine's own SSH host keys on first boot
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target
"""


def insecure_public_key() -> str:
    """Vagrant's well-known key: only for the box's first boot; Vagrant then inserts its own."""
    found = sorted(Path("/").glob(INSECURE_KEY_GLOB.lstrip("/")))
    if not found:
        raise LabError("Vagrant's public key was not found", hint="apt-get install vagrant")
    return found[-1].read_text().strip()


def box_installed() -> bool:
    out = run(["vagrant", "box", "list", "--machine-readable"], check=False).stdout
    return f",box-name,{BOX_NAME}" in out and f",box-version,{BOX_VERSION}" in out


def build(image: BaseImage, resolver: str, workdir: Path, log) -> Path:
    """Build the box file from the cached image and return its path."""
    if not image.ready:
        raise LabError("the lab's base image is not built yet", hint="run `lab up` once first")
    workdir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=workdir))
    try:
        rootfs = staging / "rootfs"
        log("copying the base image")
        run(["cp", "-a", str(image.rootfs), str(rootfs)])
        log("adding the vagrant user, systemd-networkd, first-boot host keys")
        _customise(rootfs, resolver)
        log("packing rootfs.tar.gz")
        run(
            [
                "tar",
                "--numeric-owner",
                "-I",
                "gzip -1",
                "-cf",
                str(staging / "rootfs.tar.gz"),
                "-C",
                str(staging),
                "./rootfs",  # vagrant-lxc strips two components: ./rootfs/
            ]
        )
        shutil.rmtree(rootfs)
        (staging / "lxc-config").write_text(LXC_CONFIG)
        (staging / "metadata.json").write_text(
            json.dumps(
                {
                    "provider": "lxc",
                    "version": "1.0.0",  # the box format, not the box's own version
                    "built-on": time.strftime("%Y-%m-%d"),
                }
            )
            + "\n"
        )
        box = workdir / "webstack-lab-debian-12-lxc.box"
        run(
            [
                "tar",
                "-cf",
                str(box),
                "-C",
                str(staging),
                "rootfs.tar.gz",
                "lxc-config",
                "metadata.json",
            ]
        )
        return box
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def add(box: Path) -> None:
    """Register the box with Vagrant under BOX_NAME (replacing an older build)."""
    metadata = {
        "name": BOX_NAME,
        "versions": [
            {
                "version": BOX_VERSION,
                "providers": [{"name": "lxc", "url": f"file://{box}"}],
            }
        ],
    }
    catalogue = box.with_suffix(".json")
    catalogue.write_text(json.dumps(metadata))
    run(["vagrant", "box", "add", "--force", str(catalogue)], timeout=900)


def remove() -> None:
    run(["vagrant", "box", "remove", "--force", "--all", BOX_NAME], check=False)


def _customise(rootfs: Path, resolver: str) -> None:
    def chroot(*args: str) -> None:
        run(["chroot", str(rootfs), *args])

    chroot("useradd", "-m", "-s", "/bin/bash", "vagrant")
    sudoers = rootfs / "etc/sudoers.d/vagrant"
    sudoers.write_text("vagrant ALL=(ALL) NOPASSWD:ALL\n")
    sudoers.chmod(0o440)
    chroot("install", "-d", "-m", "700", "-o", "vagrant", "-g", "vagrant", "/home/vagrant/.ssh")
    keys = rootfs / "home/vagrant/.ssh/authorized_keys"
    keys.write_text(insecure_public_key() + "\n")
    chroot("chown", "vagrant:vagrant", "/home/vagrant/.ssh/authorized_keys")
    keys.chmod(0o600)
    # Vagrant restarts systemd-networkd after setting the hostname (ifupdown would fail);
    # LXC configures eth0 itself, so networkd has no .network file and leaves it alone.
    chroot("dpkg", "--purge", "ifupdown", "isc-dhcp-client", "isc-dhcp-common")
    chroot("systemctl", "enable", "systemd-networkd.service")
    # nothing for networkd to bring online: waiting for it would stall every package install
    chroot("systemctl", "mask", "systemd-networkd-wait-online.service")
    (rootfs / "etc/systemd/system/webstack-hostkeys.service").write_text(HOSTKEYS_UNIT)
    chroot("systemctl", "enable", "webstack-hostkeys.service")
    resolv = rootfs / "etc/resolv.conf"
    resolv.unlink(missing_ok=True)
    resolv.write_text(f"nameserver {resolver}\n")
