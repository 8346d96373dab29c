"""Hosts as Vagrant machines from the repository's Vagrantfile, driven through python-vagrant."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from pathlib import Path

import paramiko

from lab.core import platform as lab_platform
from lab.core import resources
from lab.core.errors import HostFailure, LabError
from lab.core.state import lab_home, write_private
from lab.core.system import last_lines, require_root
from lab.providers import vagrantbox
from lab.providers.aptcache import host_cache
from lab.providers.base import HostStatus
from lab.providers.lxcimage import BaseImage
from lab.providers.lxcnet import LabNetwork, upstream_resolver
from lab.remote.connection import HostSpec

VAGRANTFILE_DIR = resources.vagrantfile_dir()
PLUGINS = {"virtualbox": None, "libvirt": "vagrant-libvirt", "lxc": "vagrant-lxc"}


def usable_vagrant_providers() -> dict[str, str]:
    """Vagrant providers this machine can run, each with the reason."""
    found = {}
    plugins = ""
    if shutil.which("vagrant"):
        plugins = subprocess.run(
            ["vagrant", "plugin", "list"], capture_output=True, text=True, check=False
        ).stdout
    if shutil.which("VBoxManage"):
        found["virtualbox"] = "VBoxManage is installed"
    if "vagrant-libvirt" in plugins and shutil.which("virsh"):
        found["libvirt"] = "vagrant-libvirt and virsh are installed"
    if "vagrant-lxc" in plugins and shutil.which("lxc-start"):
        found["lxc"] = "vagrant-lxc and LXC are installed"
    return found


def require_vagrant():
    """python-vagrant, once the vagrant command is known to exist (its import warns otherwise)."""
    if not shutil.which("vagrant"):
        raise LabError(
            "vagrant is not installed",
            hint="install Vagrant (Debian: apt-get install vagrant vagrant-lxc)",
        )
    import vagrant

    return vagrant


def pick_vagrant_provider() -> tuple[str, str]:
    """$LAB_VAGRANT_PROVIDER, else VirtualBox, libvirt, lxc in that order; with the reason."""
    wanted = os.environ.get("LAB_VAGRANT_PROVIDER")
    if wanted:
        if wanted not in PLUGINS:
            raise LabError(f"unknown Vagrant provider {wanted!r}; one of {', '.join(PLUGINS)}")
        return wanted, "chosen with LAB_VAGRANT_PROVIDER"
    usable = usable_vagrant_providers()  # asks Vagrant: seconds
    for name in PLUGINS:
        if name in usable:
            return name, usable[name]
    raise LabError(
        "Vagrant has no usable provider on this machine",
        hint="install VirtualBox, or vagrant-libvirt, or (Linux) vagrant-lxc",
    )


def box_for(vagrant_provider: str, machine: str | None = None) -> str:
    """The box the Vagrantfile picks for a provider on this CPU, and why."""
    arm = (machine or platform.machine()).lower() in ("arm64", "aarch64")
    return {
        "virtualbox": "bento/debian-12-arm64 (arm64 host: VirtualBox 7.1 on Apple Silicon)"
        if arm
        else "bento/debian-12 (amd64 host)",
        "libvirt": "debian/bookworm64",
        "lxc": f"{vagrantbox.BOX_NAME} (built on this machine by `lab box build`)",
    }[vagrant_provider]


def parse_ssh_config(text: str, names: list[str]) -> dict[str, dict]:
    """`vagrant ssh-config` output (all machines) as {name: {hostname, port, user, key}}."""
    config = paramiko.SSHConfig.from_text(text)
    specs = {}
    for name in names:
        if name not in config.get_hostnames():
            continue
        entry = config.lookup(name)
        specs[name] = {
            "hostname": entry["hostname"],
            "port": int(entry.get("port", 22)),
            "user": entry.get("user", "vagrant"),
            "key": (entry.get("identityfile") or [""])[0],
        }
    return specs


class VagrantProvider:
    """The Vagrantfile's machines; one `vagrant ssh-config` per run, saved for later commands."""

    name = "vagrant"

    def __init__(self, topology, state):
        self.topology = topology
        self.state = state
        self.network = LabNetwork(topology, state)
        self.apt_cache = lab_home() / "cache" / "apt"

    # -- vagrant ----------------------------------------------------------------------------
    def _env(self, vagrant_provider: str | None = None) -> dict:
        env = {
            **os.environ,
            "VAGRANT_CWD": str(VAGRANTFILE_DIR),
            "VAGRANT_DOTFILE_PATH": str(self.state.dir / "vagrant"),
            "LAB_TOPOLOGY": str(self.topology.source or VAGRANTFILE_DIR / "lab.yml"),
            "LAB_BRIDGE": self.network.bridge,
            "VAGRANT_CHECKPOINT_DISABLE": "1",
            "LAB_APT_CACHE": str(self.apt_cache),
        }
        if vagrant_provider:
            env["VAGRANT_DEFAULT_PROVIDER"] = vagrant_provider
        return env

    def _vagrant(self, log_name: str, vagrant_provider: str | None = None):
        vagrant = require_vagrant()
        log = self.state.dir / f"vagrant-{log_name}.log"
        self.state.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return vagrant.Vagrant(
            root=str(VAGRANTFILE_DIR),
            env=self._env(vagrant_provider),
            out_cm=vagrant.make_file_cm(str(log)),
            err_cm=vagrant.make_file_cm(str(log)),
        )

    def _call(self, what: str, func, log_name: str):
        """Run a python-vagrant call; its failures become one line quoting Vagrant's own."""
        try:
            return func()
        except subprocess.CalledProcessError:
            log = self.state.dir / f"vagrant-{log_name}.log"
            tail = last_lines(log.read_text(), 2) if log.is_file() else "no output"
            raise HostFailure(
                f"vagrant {what} failed: {tail}", hint=f"the whole output is in {log}"
            ) from None

    # -- provider interface -----------------------------------------------------------------
    def up(self, progress) -> None:
        require_vagrant()
        vagrant_provider, reason = pick_vagrant_provider()
        self.state.save(
            provider=self.name,
            vagrant_provider=vagrant_provider,
            topology=str(self.topology.source or ""),
        )
        if vagrant_provider == "lxc":
            self._prepare_lxc(progress)
        machine = self._vagrant("up", vagrant_provider)
        with progress.step(f"vagrant up ({vagrant_provider}: {reason})") as step:
            self._call("up", lambda: machine.up(provider=vagrant_provider), "up")
            step.done(", ".join(self.topology.names))
        with progress.step("vagrant ssh-config") as step:
            text = self._call("ssh-config", machine.ssh_config, "up")
            write_private(self.state.dir / "vagrant-ssh-config", text)
            step.done("saved")

    def _prepare_lxc(self, progress) -> None:
        """vagrant-lxc needs the lab's box and the lab's bridge (with NAT) on this machine."""
        require_root("lab up with Vagrant's lxc provider")
        self.state.save(network=True)
        resolver = upstream_resolver()
        with progress.step(f"lab network {self.topology.subnet}") as step:
            self.network.ensure(resolver)
            step.done(self.network.bridge)
        for host in self.topology.hosts:
            host_cache(self.apt_cache, f"vagrant-{self.topology.name}-{host.name}", host.name)
        with progress.step(f"Vagrant box {vagrantbox.BOX_NAME}") as step:
            box_lock = lab_home() / "cache" / ".box.lock"  # labs brought up at once build it once
            box_lock.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            with open(box_lock, "w") as lock:
                if not lab_platform.lock(lock):
                    step.update("waiting for another lab's build of the box")
                    lab_platform.lock(lock, wait=True)
                if vagrantbox.box_installed():
                    step.done("installed")
                else:
                    self.build_box(progress, resolver)
                    step.done("built and added")

    def build_box(self, progress, resolver: str | None = None) -> None:
        """Build the lxc box from the lab's image (building the image first if needed)."""
        image = BaseImage(lab_home() / "containers")
        with progress.step("base image (Debian 12)") as step:
            step.done("built" if image.ensure(step.update) else "cached")
        with progress.step("box") as step:
            box = vagrantbox.build(
                image, resolver or upstream_resolver(), lab_home() / "cache" / "box", step.update
            )
            step.update("vagrant box add")
            vagrantbox.add(box)
            step.done(str(box))

    def status(self) -> list[HostStatus]:
        try:
            states = {s.name: s.state for s in self._vagrant("status").status()}
        except subprocess.CalledProcessError:
            states = {}
        return [
            HostStatus(h.name, h.address, _state_word(states.get(h.name)), self.name)
            for h in self.topology.hosts
        ]

    def destroy(self, progress, purge: bool = False) -> None:
        record = self.state.load()
        if (self.state.dir / "vagrant").exists():
            machine = self._vagrant("destroy", record.get("vagrant_provider"))
            with progress.step("vagrant destroy") as step:
                self._call("destroy", lambda: machine.destroy(), "destroy")
                step.done(", ".join(self.topology.names))
        if record.get("network"):
            with progress.step("lab network") as step:
                self.network.remove()
                step.done("removed")
        if purge:
            with progress.step("Vagrant box and download cache") as step:
                for cache in self.apt_cache.glob(f"vagrant-{self.topology.name}-*"):
                    shutil.rmtree(cache, ignore_errors=True)
                vagrantbox.remove()
                shutil.rmtree(lab_home() / "cache" / "box", ignore_errors=True)
                step.done("removed")
        self.state.remove()

    def specs(self) -> list[HostSpec]:
        saved = self.state.dir / "vagrant-ssh-config"
        if not saved.is_file():
            raise LabError("this Vagrant lab has no saved ssh-config", hint="run `lab up` again")
        found = parse_ssh_config(saved.read_text(), self.topology.names)
        missing = [name for name in self.topology.names if name not in found]
        if missing:
            raise LabError(f"Vagrant does not know {', '.join(missing)}", hint="run `lab up`")
        return [
            HostSpec(
                name,
                info["hostname"],
                info["port"],
                info["user"],
                Path(info["key"]),
                self.state.known_hosts,
                host_keys_pinned=False,
            )
            for name, info in found.items()
        ]

    # -- snapshots: Vagrant's own, where its provider has them -----------------------------
    layers = False

    def _snapshots(self, what: str):
        """python-vagrant for a snapshot command, refusing providers without snapshots."""
        vagrant_provider = self.state.load().get("vagrant_provider")
        if vagrant_provider == "lxc":
            raise LabError(
                "Vagrant's lxc provider has no snapshots",
                hint="use the lxc provider (`lab up --provider lxc`) or VirtualBox/libvirt",
            )
        return self._vagrant(f"snapshot-{what}", vagrant_provider)

    def snapshot_save(self, name: str, directory: Path, progress) -> dict:
        machine = self._snapshots("save")
        with progress.step(f"vagrant snapshot save {name}") as step:
            self._call(
                "snapshot save", lambda: machine.snapshot_save(f"lab-{name}"), "snapshot-save"
            )
            step.done(", ".join(self.topology.names))
        return {}

    def snapshot_restore(self, name: str, directory: Path, layers: dict, progress) -> None:
        machine = self._snapshots("restore")
        with progress.step(f"vagrant snapshot restore {name}") as step:
            self._call(
                "snapshot restore",
                lambda: machine.snapshot_restore(f"lab-{name}"),
                "snapshot-restore",
            )
            step.done(", ".join(self.topology.names))

    def snapshot_delete(self, name: str, directory: Path) -> None:
        machine = self._snapshots("delete")
        self._call(
            "snapshot delete", lambda: machine.snapshot_delete(f"lab-{name}"), "snapshot-delete"
        )

    def base_id(self) -> str:
        return ""

    def doctor(self) -> list[tuple[str, bool, str]]:
        usable = usable_vagrant_providers()
        try:
            picked, reason = pick_vagrant_provider()
            pick = (f"Vagrant provider {picked} ({reason}), box {box_for(picked)}", True, "")
        except LabError as exc:
            pick = (str(exc), False, exc.hint)
        checks = [
            (
                "vagrant installed",
                bool(shutil.which("vagrant")),
                "install Vagrant (Debian: apt-get install vagrant)",
            ),
            (
                "usable Vagrant providers: " + (", ".join(usable) or "none"),
                bool(usable),
                "install VirtualBox, vagrant-libvirt, or (Linux) vagrant-lxc",
            ),
            pick,
        ]
        if "lxc" in usable:
            checks.append(
                (
                    f"lxc box {vagrantbox.BOX_NAME}",
                    True,
                    "" if vagrantbox.box_installed() else "built by the first lab up",
                )
            )
        return checks


def _state_word(state: str | None) -> str:
    """python-vagrant's state names, in the lab's words."""
    if state == "running":
        return "running"
    if state in (None, "not_created"):
        return "absent"
    return "stopped"
