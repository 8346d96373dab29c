"""Providers by name, loaded lazily; `select` picks one from flag, lab state, lab.yml, machine."""

from __future__ import annotations

import importlib
import shutil

from lab.core import platform
from lab.core.errors import LabError
from lab.core.state import LabState
from lab.core.topology import Topology

REGISTRY = {
    "lxc": "lab.providers.lxc:LxcProvider",
    "vagrant": "lab.providers.vagrant:VagrantProvider",
    "ssh": "lab.providers.ssh:SshProvider",
}


def available() -> list[str]:
    return sorted(REGISTRY)


def _lxc_installed() -> bool:
    return platform.system() == "linux" and bool(shutil.which("lxc-start"))


def default_for_machine() -> str:
    """The provider this machine can run: LXC on Linux as root, else Vagrant (no root needed)."""
    vagrant = bool(shutil.which("vagrant")) and "vagrant" in REGISTRY
    if _lxc_installed() and (platform.is_root() or not vagrant):
        return "lxc"
    if vagrant:
        return "vagrant"
    if platform.system() == "linux":
        hint = "install LXC (apt-get install lxc debootstrap) and run lab as root, or Vagrant"
    else:
        hint = "install Vagrant and VirtualBox (see the README's laptop quick start)"
    raise LabError("no provider available on this machine", hint=hint)


def choose(flag: str | None, recorded: str | None, configured: str) -> str:
    """Pick a provider name: a running lab keeps its own; then the flag, lab.yml, the machine."""
    if recorded and flag and flag != recorded:
        raise LabError(
            f"this lab is already up with provider {recorded!r}; "
            f"run `lab destroy` before switching to {flag!r}"
        )
    name = recorded or flag or (configured if configured != "auto" else default_for_machine())
    if name not in REGISTRY:
        raise LabError(f"unknown provider {name!r}; available: {', '.join(available())}")
    return name


def reason(flag: str | None, recorded: str | None, configured: str) -> str:
    """Why choose() picked what it picked, in words for the user."""
    if recorded:
        return "the provider this lab was brought up with"
    if flag:
        return "chosen with --provider"
    if configured != "auto":
        return "set in lab.yml"
    if default_for_machine() == "lxc":
        return "LXC is installed on this Linux machine (--provider vagrant for Vagrant)"
    if _lxc_installed():
        return "Vagrant needs no root and lab runs without it (LXC needs sudo)"
    if platform.system() != "linux":
        return f"Vagrant is installed (LXC runs only on Linux, this is {platform.system()})"
    return "Vagrant is installed and LXC is not"


def load(name: str, topology: Topology, state: LabState):
    """An instance of the provider called name."""
    module_name, class_name = REGISTRY[name].split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(topology, state)


def select(topology: Topology, state: LabState, flag: str | None = None):
    """The provider for this lab."""
    name = choose(flag, state.load().get("provider"), topology.provider)
    return load(name, topology, state)
