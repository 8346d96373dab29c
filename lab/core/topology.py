"""The lab's topology, read from lab.yml: hosts, addresses, roles, network, domain, code base."""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from lab.core import resources
from lab.core.errors import LabError

NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,9}$")
HOST_RE = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
DOMAIN_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
KNOWN_ROLES = frozenset({"lb", "dns", "web", "app", "db-primary", "db-replica"})
PROVIDERS = ("auto", "lxc", "vagrant", "ssh")
PACKAGED = resources.topology_file()
SHIPPED = ("lab.yml", "lab-ha.yml")  # topology files shipped with the lab, found from anywhere
ENTRY_RE = re.compile(
    r"^([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*):([A-Za-z_][A-Za-z0-9_]*)$"
)


@dataclass(frozen=True)
class Host:
    """One host of the lab as the topology describes it."""

    name: str
    address: str
    roles: tuple[str, ...]


@dataclass(frozen=True)
class AppSource:
    """The code base the app component deploys: a directory and gunicorn's module:callable."""

    path: Path
    entry: str = "app:app"

    @property
    def schema(self) -> Path:
        """The code base's own database schema (applied instead of the built-in one if present)."""
        return self.path / "schema.sql"


@dataclass(frozen=True)
class Sandbox:
    """Limits for hosts that run untrusted code (a student's scripts): per host."""

    memory_mib: int = 1024
    processes: int = 1024
    cpus: float = 1.0
    disk_mib: int = 4096  # each host's writable layer lives on a file system of this size


REFERENCE_APP = AppSource(PACKAGED.parent / "app")


@dataclass(frozen=True)
class Topology:
    """The whole lab: its name, network, domain, hosts (in file order) and code base."""

    name: str
    provider: str
    domain: str
    subnet: ipaddress.IPv4Network
    hosts: tuple[Host, ...]
    source: Path | None = None
    app: AppSource = REFERENCE_APP
    sandbox: Sandbox | None = None  # set: limits per host and no shared download cache
    virtual_address: str | None = None  # the site's address, moved between load balancers

    @property
    def gateway(self) -> str:
        """The address the machine running `lab` takes on the lab network."""
        return str(next(self.subnet.hosts()))

    @property
    def prefixlen(self) -> int:
        return self.subnet.prefixlen

    def host(self, name: str) -> Host:
        """The host called name, or a LabError listing the valid names."""
        for host in self.hosts:
            if host.name == name:
                return host
        raise LabError(f"unknown host {name!r}; this lab has: {', '.join(self.names)}")

    @property
    def names(self) -> list[str]:
        return [h.name for h in self.hosts]

    def with_role(self, role: str) -> list[Host]:
        """Hosts carrying role, in file order."""
        return [h for h in self.hosts if role in h.roles]

    @property
    def site_address(self) -> str:
        """Where the site is reached: the virtual address if there is one, else the balancer's."""
        return self.virtual_address or self.one_with_role("lb").address

    def one_with_role(self, role: str) -> Host:
        """The single host carrying role."""
        hosts = self.with_role(role)
        if len(hosts) != 1:
            raise LabError(f"the topology needs exactly one host with role {role!r}")
        return hosts[0]


def find_topology_file(explicit: str | None = None) -> Path:
    """The lab.yml to use: --topology, $LAB_TOPOLOGY, ./lab.yml, else the packaged one.

    A shipped file named alone (`--topology lab-ha.yml`) is found even outside a clone."""
    for candidate in (explicit, os.environ.get("LAB_TOPOLOGY")):
        if candidate:
            path = Path(candidate)
            if not path.is_file() and path.name == candidate:  # a shipped one: lab-ha.yml
                path = resources.topology_file(candidate) if candidate in SHIPPED else path
            if not path.is_file():
                raise LabError(f"topology file not found: {path}")
            return path
    local = Path("lab.yml")
    return local if local.is_file() else PACKAGED


def load(path: Path) -> Topology:
    """Read and validate a topology file."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise LabError(f"{path}: cannot read topology: {_first_line(exc)}") from None
    return parse(data, source=path)


def parse(data: object, source: Path | None = None) -> Topology:
    """Validate topology data (as loaded from YAML); every error names the field."""
    where = f"{source}: " if source else ""

    def fail(message: str) -> LabError:
        return LabError(f"{where}{message}")

    if not isinstance(data, dict):
        raise fail("expected a mapping with name, network and hosts")
    name = str(data.get("name", "webstack"))
    if not NAME_RE.match(name):
        raise fail(f"name {name!r} must be 1-10 lowercase letters, digits or '-'")
    provider = str(data.get("provider", "auto"))
    if provider not in PROVIDERS:
        raise fail(f"provider {provider!r} is not one of {', '.join(PROVIDERS)}")
    domain = str(data.get("domain", "foobar.com")).lower()
    if not DOMAIN_RE.match(domain):
        raise fail(f"domain {domain!r} is not a valid domain name")
    network = data.get("network") or {}
    try:
        subnet = ipaddress.IPv4Network(str(network.get("subnet", "")), strict=True)
    except ValueError as exc:
        raise fail(f"network.subnet: {exc}") from None
    if subnet.prefixlen > 29 or not subnet.is_private:
        raise fail(f"network.subnet {subnet} must be a private IPv4 network of /29 or larger")
    raw_hosts = data.get("hosts")
    if not isinstance(raw_hosts, dict) or not raw_hosts:
        raise fail("hosts: expected a mapping of host name to address and roles")
    hosts, seen = [], {str(next(subnet.hosts()))}
    for host_name, spec in raw_hosts.items():
        hosts.append(_parse_host(str(host_name), spec, subnet, seen, fail))
    app = _parse_app(data.get("app"), source, fail) if "app" in data else REFERENCE_APP
    sandbox = _parse_sandbox(data["sandbox"], fail) if "sandbox" in data else None
    virtual = _parse_virtual_address(network.get("virtual_address"), subnet, hosts, seen, fail)
    return Topology(name, provider, domain, subnet, tuple(hosts), source, app, sandbox, virtual)


def _parse_virtual_address(value, subnet, hosts, seen, fail) -> str | None:
    """network.virtual_address: a free host address, needed exactly when there are 2+ balancers."""
    balancers = [h.name for h in hosts if "lb" in h.roles]
    if value is None:
        if len(balancers) > 1:
            raise fail(
                f"hosts {', '.join(balancers)} all have role 'lb': add network.virtual_address "
                "(the address the site is reached at, moved between them)"
            )
        return None
    try:
        address = ipaddress.IPv4Address(str(value))
    except ValueError as exc:
        raise fail(f"network.virtual_address: {exc}") from None
    if address not in subnet or address in (subnet.network_address, subnet.broadcast_address):
        raise fail(f"network.virtual_address {address} is not a host address in {subnet}")
    if str(address) in seen:
        raise fail(f"network.virtual_address {address} is already taken")
    if len(balancers) < 2:
        raise fail("network.virtual_address needs two or more hosts with role 'lb' to move between")
    return str(address)


def _parse_sandbox(spec, fail) -> Sandbox:
    """The optional sandbox: section: memory_mib, processes, cpus and disk_mib per host."""
    known = ("memory_mib", "processes", "cpus", "disk_mib")
    if not isinstance(spec, dict):
        raise fail(f"sandbox: expected a mapping with {', '.join(known)}")
    unknown = sorted(set(spec) - set(known))
    if unknown:
        raise fail(f"sandbox: unknown key {unknown[0]!r}; known: {', '.join(known)}")
    values = {}
    for key, low in (("memory_mib", 128), ("processes", 64), ("cpus", 0.1), ("disk_mib", 64)):
        value = spec.get(key, getattr(Sandbox, key))
        if isinstance(value, bool) or not isinstance(value, int | float) or value < low:
            raise fail(f"sandbox.{key}: expected a number of at least {low}")
        values[key] = float(value) if key == "cpus" else int(value)
    return Sandbox(**values)


def _parse_app(spec, source, fail) -> AppSource:
    """The optional app: section: a code base directory (relative to lab.yml) and its entry."""
    if not isinstance(spec, dict):
        raise fail("app: expected a mapping with source and optionally entry")
    unknown = sorted(set(spec) - {"source", "entry"})
    if unknown:
        raise fail(f"app: unknown key {unknown[0]!r}; known: source, entry")
    if not isinstance(spec.get("source"), str) or not spec["source"].strip():
        raise fail("app.source: expected the code base's directory (relative to lab.yml)")
    base = source.absolute().parent if source else Path.cwd()
    path = (base / spec["source"]).resolve()
    if not path.is_dir():
        raise fail(f"app.source: no directory {path}")
    entry = spec.get("entry", AppSource.entry)
    match = ENTRY_RE.match(entry) if isinstance(entry, str) else None
    if not match:
        raise fail(f"app.entry {entry!r} must be module:callable, e.g. wsgi:application")
    module = path.joinpath(*match.group(1).split("."))
    if not (module.with_suffix(".py").is_file() or (module / "__init__.py").is_file()):
        raise fail(f"app.entry: module {match.group(1)!r} is not in {path}")
    return AppSource(path, entry)


def _parse_host(name, spec, subnet, seen, fail) -> Host:
    if not HOST_RE.match(name):
        raise fail(f"host name {name!r} must be lowercase letters, digits or '-'")
    if not isinstance(spec, dict):
        raise fail(f"hosts.{name}: expected address and roles")
    try:
        address = ipaddress.IPv4Address(str(spec.get("address", "")))
    except ValueError as exc:
        raise fail(f"hosts.{name}.address: {exc}") from None
    if address not in subnet or address in (subnet.network_address, subnet.broadcast_address):
        raise fail(f"hosts.{name}.address {address} is not a host address in {subnet}")
    if str(address) in seen:
        raise fail(f"hosts.{name}.address {address} is already taken")
    seen.add(str(address))
    roles = spec.get("roles", [])
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise fail(f"hosts.{name}.roles: expected a list of role names")
    unknown = sorted(set(roles) - KNOWN_ROLES)
    if unknown:
        known = ", ".join(sorted(KNOWN_ROLES))
        raise fail(f"hosts.{name}.roles: unknown role {unknown[0]!r}; known: {known}")
    return Host(name, str(address), tuple(roles))


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def variant(name: str, third_octet: int, source: Path = PACKAGED) -> dict:
    """The topology of source under another lab name and 192.168.N.0/24 (a second lab)."""
    data = yaml.safe_load(source.read_text())
    old_prefix = str(data["network"]["subnet"]).rsplit(".", 1)[0] + "."
    data["name"] = name
    data["network"]["subnet"] = f"192.168.{third_octet}.0/24"
    for host in data["hosts"].values():
        host["address"] = host["address"].replace(old_prefix, f"192.168.{third_octet}.")
    if data["network"].get("virtual_address"):
        virtual = str(data["network"]["virtual_address"])
        data["network"]["virtual_address"] = virtual.replace(old_prefix, f"192.168.{third_octet}.")
    if isinstance(data.get("app"), dict) and "source" in data["app"]:  # written elsewhere
        data["app"]["source"] = str((source.absolute().parent / data["app"]["source"]).resolve())
    return data
