"""`lab init [DIR]`: write a lab.yml for another lab beside the first (own name, free subnet)."""

from __future__ import annotations

import argparse
import ipaddress
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

import yaml

from lab.core import topology
from lab.core.errors import ExitCode, LabError
from lab.core.state import lab_home

HELP = "write a lab.yml to edit for another lab beside the first (own name and subnet)"
HEADER = """\
# A webstack lab of its own: edit the name (a prefix for everything it creates) and the subnet
# (with the hosts' addresses) as you like. Use it with `lab --topology {path} up`, or run
# `lab` in this directory.
"""
# VirtualBox allows host-only networks in 192.168.56.0/21 by default: try those first.
CANDIDATES = tuple(range(57, 255))
ORDER = 130  # its place in `lab --help`


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "directory", nargs="?", default=".", metavar="DIR", help="where to write lab.yml (here)"
    )
    parser.add_argument("--name", help="the lab's name (default: DIR's name, else webstackN)")
    parser.add_argument(
        "--subnet", help="its network, e.g. 192.168.57.0/24 (default: the first free one)"
    )


def run(lab) -> ExitCode:
    target = Path(lab.args.directory) / "lab.yml"
    if target.exists():
        raise LabError(f"{target} already exists; not overwriting it", hint="edit it instead")
    first = lab.topology
    name = lab.args.name or free_name(target.absolute().parent.name, taken_names(first))
    if name in taken_names(first):
        raise LabError(f"lab name {name!r} is taken", hint="choose another with --name")
    subnet = _subnet(lab.args.subnet) if lab.args.subnet else free_subnet([first.subnet], in_use)
    if subnet.overlaps(first.subnet):
        raise LabError(f"{subnet} overlaps {first.name!r}'s {first.subnet}")
    data = second_lab(yaml.safe_load(first.source.read_text()), first.source, name, subnet)
    topology.parse(data, source=target)  # what lab will read back must be valid
    target.parent.mkdir(parents=True, exist_ok=True)
    text = HEADER.format(path=target) + yaml.safe_dump(
        data, sort_keys=False, default_flow_style=None
    )
    target.write_text(text)
    lab.console.print(f"wrote {target}: lab [host]{name}[/] on {subnet}, beside {first.name!r}")
    lab.console.print(f"[muted]next: edit it, then `lab --topology {target} up`[/]")
    return ExitCode.OK


def second_lab(data: dict, source: Path, name: str, subnet: ipaddress.IPv4Network) -> dict:
    """The first lab's topology data under another name and subnet (host offsets kept)."""
    old = ipaddress.IPv4Network(str(data["network"]["subnet"]))
    data = {**data, "name": name, "network": {**data["network"], "subnet": str(subnet)}}
    data["hosts"] = {
        host: {**spec, "address": _moved(spec["address"], old, subnet)}
        for host, spec in data["hosts"].items()
    }
    if isinstance(data.get("app"), dict) and "source" in data["app"]:  # relative to the first
        app_dir = (source.absolute().parent / data["app"]["source"]).resolve()
        data["app"] = {**data["app"], "source": str(app_dir)}
    return data


def _moved(address: str, old: ipaddress.IPv4Network, new: ipaddress.IPv4Network) -> str:
    offset = int(ipaddress.IPv4Address(address)) - int(old.network_address)
    return str(new.network_address + offset)


def _subnet(text: str) -> ipaddress.IPv4Network:
    try:
        return ipaddress.IPv4Network(text, strict=True)
    except ValueError as exc:
        raise LabError(f"--subnet {text!r}: {exc}") from None


def taken_names(first: topology.Topology) -> set[str]:
    """The first lab's name and every lab with state on this machine."""
    labs = lab_home() / "labs"
    return {first.name} | ({path.name for path in labs.iterdir()} if labs.is_dir() else set())


def free_name(directory_name: str, taken: Iterable[str]) -> str:
    """DIR's name when it is a valid lab name, else the first free webstack2, webstack3…"""
    taken = set(taken)
    wanted = directory_name.lower()
    candidates = [wanted] + [f"webstack{number}" for number in range(2, 100)]
    for name in candidates:
        if topology.NAME_RE.match(name) and name not in taken:
            return name
    raise LabError("no free lab name", hint="choose one with --name")


def in_use(subnet: ipaddress.IPv4Network) -> bool:
    """Whether a route on this machine (another lab's bridge, a VPN, a LAN) overlaps subnet."""
    if not shutil.which("ip"):  # macOS, Windows: no routes to compare with
        return False
    from lab.providers.lxcnet import conflicting_routes

    return bool(conflicting_routes(subnet, own_bridge=""))


def free_subnet(
    taken: Iterable[ipaddress.IPv4Network],
    used: Callable[[ipaddress.IPv4Network], bool],
) -> ipaddress.IPv4Network:
    """The first 192.168.N.0/24 that overlaps neither a taken network nor a route in use."""
    taken = list(taken)
    for octet in CANDIDATES:
        subnet = ipaddress.IPv4Network(f"192.168.{octet}.0/24")
        if not any(subnet.overlaps(other) for other in taken) and not used(subnet):
            return subnet
    raise LabError("no free 192.168.N.0/24 network", hint="choose one with --subnet")
