"""Snapshots of a lab's hosts, and the machine's cache of reference states built from them.

Snapshots (`lab snapshot`) live in $LAB_HOME/snapshots/LAB/NAME, outside the lab's state
directory: they survive `lab destroy` (restore them after the next `lab up`) and only
`lab snapshot delete` removes them. Reference states live in $LAB_HOME/cache/reference/KEY,
machine-wide like the base image: the key is the base image, the provisioning code (provision/,
lab/facts/, the application files), the topology file, the set of components applied and the
host profile given after them (its name and its script), so a stale entry is never used; stale
entries no host or snapshot uses are removed when a new one is built.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import re
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from lab.core.errors import HostFailure, LabError
from lab.core.state import LabState, lab_home, write_private
from lab.core.topology import Topology
from lab.remote.connection import Fleet, describe, fan_out
from lab.remote.quoting import as_root

CACHE_FORMAT = 1  # bump when what a cache entry holds changes
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
PROVISIONING_CODE = ("provision", "lab.facts")  # packages whose code decides what hosts hold
META = "meta.json"
PROFILE_PARTS = ("profile", "profile_script")  # in an entry's key only when it has a profile


# -- snapshots --------------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """One saved state of a lab's hosts."""

    name: str
    created: float
    provider: str
    seconds: float
    path: Path


def snapshots_dir(lab_name: str) -> Path:
    return lab_home() / "snapshots" / lab_name


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise LabError(
            f"invalid snapshot name {name!r}",
            hint="letters, digits, '.', '_' and '-', starting with a letter or digit",
        )
    return name


def list_snapshots(lab_name: str) -> list[Snapshot]:
    """The lab's snapshots, oldest first; one whose meta.json can't be read is listed as
    unreadable (so that it can be deleted), one without it (a save interrupted) is left out."""
    found = []
    for meta in snapshots_dir(lab_name).glob(f"*/{META}"):
        try:
            data = _read_json(meta)
        except LabError:
            data = {"provider": "unreadable", "created": _modified(meta)}
        found.append(
            Snapshot(
                data.get("name", meta.parent.name),
                float(data.get("created", 0)),
                data.get("provider", "?"),
                float(data.get("seconds", 0)),
                meta.parent,
            )
        )
    return sorted(found, key=lambda s: s.created)


def labs_gone(current: str) -> dict[str, list[Snapshot]]:
    """Snapshots of labs other than current that no longer exist on this machine (destroyed,
    or test labs), by lab: `lab snapshot list` names them, `delete --lab` removes them."""
    root = lab_home() / "snapshots"
    labs = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    gone = {n: list_snapshots(n) for n in labs if n != current and not LabState(n).exists}
    return {name: found for name, found in gone.items() if found}


def find_snapshot(lab_name: str, name: str) -> Snapshot:
    for snapshot in list_snapshots(lab_name):
        if snapshot.name == check_name(name):
            return snapshot
    known = ", ".join(s.name for s in list_snapshots(lab_name)) or "none"
    raise LabError(f"lab {lab_name!r} has no snapshot {name!r} (snapshots: {known})")


def save_snapshot(state: LabState, provider, name: str, progress, replace: bool = False):
    """Save the hosts' state as name; returns the Snapshot."""
    directory = snapshots_dir(state.name) / check_name(name)
    if (directory / META).is_file() and not replace:
        raise LabError(
            f"snapshot {name!r} exists", hint="choose another name or delete it first (--force)"
        )
    if directory.exists():
        _delete_files(provider, name, directory)
    sweep(snapshots_dir(state.name), provider)
    started = time.monotonic()
    layers = provider.snapshot_save(name, directory, progress)
    seconds = round(time.monotonic() - started, 2)
    meta = {
        "name": name,
        "lab": state.name,
        "provider": provider.name,
        "created": time.time(),
        "seconds": seconds,
        "layers": layers,
        "secrets": _secrets(state),
    }
    write_private(directory / META, json.dumps(meta, indent=2) + "\n")
    return find_snapshot(state.name, name)


def restore_snapshot(state: LabState, provider, name: str, progress) -> float:
    """Bring the hosts back to snapshot name; returns the seconds it took."""
    snapshot = find_snapshot(state.name, name)
    meta = _read_json(snapshot.path / META)
    if meta.get("provider") != provider.name:
        raise LabError(
            f"snapshot {name!r} was taken with provider {meta.get('provider')!r}, "
            f"this lab runs {provider.name!r}"
        )
    started = time.monotonic()
    provider.snapshot_restore(name, snapshot.path, meta.get("layers") or {}, progress)
    _merge_secrets(state, meta.get("secrets") or {})
    return round(time.monotonic() - started, 2)


def delete_snapshot(state: LabState, provider, name: str) -> None:
    """Remove snapshot name; of a lab that is gone, only its files (its hosts, and whatever
    the provider kept with them, went with the lab)."""
    snapshot = find_snapshot(state.name, name)
    if state.exists:
        _delete_files(provider, name, snapshot.path)
    else:
        shutil.rmtree(snapshot.path)
    if snapshots_dir(state.name).is_dir() and not any(snapshots_dir(state.name).iterdir()):
        snapshots_dir(state.name).rmdir()


def _delete_files(provider, name: str, directory: Path) -> None:
    """Forget snapshot name and remove its files, but a layer some host starts from stays
    until none does (the next save or delete of the lab sweeps it)."""
    provider.snapshot_delete(name, directory)
    (directory / META).unlink(missing_ok=True)
    sweep(directory.parent, provider)


def sweep(lab_dir: Path, provider) -> None:
    """Remove the layers no snapshot of the lab lists and no host on this machine starts from
    (a replaced or deleted snapshot's), and directories left empty."""
    used = {Path(p) for p in provider.layers_in_use()} if provider.layers else set()
    for directory in [d for d in lab_dir.iterdir() if d.is_dir()] if lab_dir.is_dir() else []:
        try:
            meta = _meta_if_present(directory / META)
        except LabError:
            continue  # unreadable: `lab snapshot list` shows it, `delete` removes it whole
        tops = [Path(stack[0]) for stack in ((meta or {}).get("layers") or {}).values() if stack]
        own = {
            directory / t.relative_to(directory).parts[0] for t in tops if directory in t.parents
        }
        if meta is not None and not own:
            continue  # saved as copies (or by a provider without layers): all of it is its own
        for child in directory.iterdir():
            if child.name != META and child not in own and not _holds(child, used):
                shutil.rmtree(child)
        if meta is None and not any(directory.iterdir()):
            directory.rmdir()
    if lab_dir.is_dir() and not any(lab_dir.iterdir()):
        lab_dir.rmdir()


# -- the cache of reference states ------------------------------------------------------


@dataclass(frozen=True)
class HostProfile:
    """A script run as root on every host after the components (`lab grade`'s fresh-server):
    part of the state it makes, so its name and its content are part of that state's key."""

    name: str
    script: str
    timeout: float = 180

    def key_parts(self) -> dict[str, str]:
        digest = hashlib.sha256(self.script.encode()).hexdigest()
        return {"profile": self.name, "profile_script": digest}


def cache_dir() -> Path:
    return lab_home() / "cache" / "reference"


def tree_hash(paths: list[Path]) -> str:
    """sha256 over the files under paths (relative names and contents), bytecode left out."""
    digest = hashlib.sha256()
    for root in paths:
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else []
        for path in files:
            rel = path.relative_to(root)
            if "__pycache__" in rel.parts or path.suffix == ".pyc" or path.name.startswith("."):
                continue
            digest.update(f"{root.name}/{rel}\0".encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def key_parts(topology: Topology, provider) -> dict[str, str]:
    """What a reference state depends on, besides its components."""
    if topology.source and Path(topology.source).is_file():
        topo = Path(topology.source).read_bytes()
    else:
        topo = repr(topology).encode()
    return {
        "format": str(CACHE_FORMAT),
        "base": provider.base_id(),
        "code": tree_hash([_package_dir(p) for p in PROVISIONING_CODE] + [topology.app.path]),
        "topology": hashlib.sha256(topo).hexdigest(),
        "lab": topology.name,
    }


def _package_dir(name: str) -> Path:
    return Path(importlib.import_module(name).__file__).parent


def cache_key(parts: dict[str, str], components: list[str]) -> str:
    text = json.dumps({**parts, "components": sorted(components)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def ordered(components) -> list[str]:
    """Component names in the reference order, unknown names refused."""
    from provision import COMPONENTS

    unknown = [c for c in components if c not in COMPONENTS]
    if unknown:
        raise LabError(f"unknown component {unknown[0]!r}; components: {', '.join(COMPONENTS)}")
    return [name for name in COMPONENTS if name in set(components)]


def ensure_reference_state(
    topology: Topology,
    state: LabState,
    provider,
    components,
    progress,
    share: bool = False,
    profile: HostProfile | None = None,
    connect=None,
) -> str:
    """Bring the lab's hosts to "these components of the reference applied" (then profile
    given, if any) and return the state's cache key. connect() opens the connections to the
    hosts (by default a Fleet of the provider's specs; a grading sandbox's can be cut).

    With a provider that has layers (LXC) the hosts are fresh: started from the cached state,
    built on a miss from the largest cached subset (or the bare image) and saved for next time.
    share: labs of the same shape (other names and subnets, nothing else: grading slots, or
    labs brought up with the base design) build a state once, one lab at a time, and the others
    take it over, provisioned again for their own addresses and with their own secrets (the
    database accounts get this lab's passwords). Other providers cannot make fresh hosts: the
    components are provisioned and the profile given on the hosts as they are.
    """
    names = ordered(components)
    key = bring_to_reference_state(
        topology, state, provider, names, progress, share, profile, connect
    )
    from provision.ready import settle  # the hosts have just booted: wait for their services

    settle(topology, provider.specs(), names, progress)
    return key


def bring_to_reference_state(
    topology,
    state: LabState,
    provider,
    names,
    progress,
    share: bool = False,
    profile=None,
    connect=None,
) -> str:
    """ensure_reference_state without the wait: the cache's bookkeeping and the builds."""
    connect = connect or (lambda: Fleet(provider.specs()))
    if profile is not None:
        return _with_profile(topology, state, provider, names, progress, share, profile, connect)
    parts = key_parts(topology, provider) if provider.layers else {"lab": topology.name}
    key = cache_key(parts, names)
    if not provider.layers:
        _provision(topology, state, provider, names, progress, connect)
        return key
    if not parts["base"]:
        raise LabError("the base image is not built yet", hint="run `lab up` first")
    if _restored(parts, key, state, provider, progress):
        return key
    if not names:
        provider.restore_layers({}, progress)
        return key
    if not share:
        return _build(topology, state, provider, names, progress, parts, "", connect)
    form = shape(topology)
    with _build_lock(cache_key({**parts, "lab": "", "topology": form}, names)):
        if _restored(parts, key, state, provider, progress):  # built meanwhile by this lab
            return key
        sibling = _sibling(parts, form, names)
        if sibling is None:  # the others of the shape wait for this build, then take it over
            return _build(topology, state, provider, names, progress, parts, form, connect)
    provider.restore_layers(_layers(sibling), progress)  # beside other labs taking it over
    # its own addresses and its own secrets: the accounts get this lab's passwords
    _provision(topology, state, provider, names, progress, connect, taken_over=True)
    return _save_entry(parts, key, names, sibling, state, provider, progress, form)


def _with_profile(topology, state, provider, names, progress, share, profile, connect) -> str:
    """The components' state with the profile given on top, cached as a state of its own.

    Shared, it is built once: another lab of the shape takes it over, its components
    provisioned again for its own addresses and the profile given again (nothing left to
    install); a profile over no components depends on no address, so it is taken as it is.
    """
    if not provider.layers:
        bring_to_reference_state(topology, state, provider, names, progress, connect=connect)
        give_profile(provider, profile, connect)
        return cache_key({"lab": topology.name, **profile.key_parts()}, names)
    parts = {**key_parts(topology, provider), **profile.key_parts()}
    key = cache_key(parts, names)
    if not parts["base"]:
        raise LabError("the base image is not built yet", hint="run `lab up` first")
    if _restored(parts, key, state, provider, progress):
        return key
    form = shape(topology) if share else ""
    sibling = _sibling(parts, form, names) if form and not names else None
    if sibling is None:
        with _build_lock(cache_key({**parts, "lab": "", "topology": form}, names)):
            if _restored(parts, key, state, provider, progress):  # built meanwhile by this lab
                return key
            sibling = _sibling(parts, form, names) if form else None
            if sibling is None:
                below = bring_to_reference_state(
                    topology, state, provider, names, progress, share, connect=connect
                )
                give_profile(provider, profile, connect)
                parent = _entries(key_parts(topology, provider)).get(below)
                return _save_entry(parts, key, names, parent, state, provider, progress, form)
            if names:
                return _own_copy(
                    topology, state, provider, progress, parts, sibling, profile, connect
                )
    provider.restore_layers(_layers(sibling), progress)
    return sibling["key"]


def _own_copy(topology, state, provider, progress, parts, sibling, profile, connect) -> str:
    """A same-shaped lab's state of components and profile, made this lab's own and saved."""
    names = sibling["components"]
    provider.restore_layers(_layers(sibling), progress)
    _provision(topology, state, provider, names, progress, connect, taken_over=True)
    give_profile(provider, profile, connect)
    key = cache_key(parts, names)
    return _save_entry(parts, key, names, sibling, state, provider, progress, sibling["shape"])


def give_profile(provider, profile: HostProfile, connect=None) -> None:
    """Run the profile's script on every host; one error names each host where it failed."""

    def give(host: str) -> str:
        result = fleet.run(host, as_root(profile.script), timeout=profile.timeout)
        lines = (result.stderr or result.stdout).strip().splitlines()
        return "" if result.exited == 0 else (lines[-1] if lines else f"exit {result.exited}")

    with (connect or (lambda: Fleet(provider.specs())))() as fleet:
        outcomes = fan_out(fleet.names, give)
    failed = {
        host: describe(o.error) if o.error else o.value
        for host, o in outcomes.items()
        if o.error or o.value
    }
    if failed:
        text = "; ".join(f"{host}: {why}" for host, why in failed.items())
        raise HostFailure(f"could not give the hosts the {profile.name} profile: {text}")


def _restored(parts, key: str, state: LabState, provider, progress) -> bool:
    """Whether the hosts now start from the cached state key (False: it is not cached)."""
    entry = _entries(parts).get(key)
    if entry is None:
        return False
    provider.restore_layers(_layers(entry), progress)
    _merge_secrets(state, entry.get("secrets") or {})
    return True


def _build(topology, state, provider, names, progress, parts, form="", connect=None) -> str:
    """Build the state from the largest cached subset of it (or the bare image) and save it."""
    parent = max(
        (e for e in _entries(parts).values() if set(e["components"]) < set(names)),
        key=lambda e: len(e["components"]),
        default=None,
    )
    provider.restore_layers(_layers(parent) if parent else {}, progress)
    if parent:
        _merge_secrets(state, parent.get("secrets") or {})
    missing = [n for n in names if not parent or n not in parent["components"]]
    _provision(topology, state, provider, missing, progress, connect)
    key = cache_key(parts, names)
    return _save_entry(parts, key, names, parent, state, provider, progress, form)


def shape(topology: Topology) -> str:
    """The topology less its name and its network's first three numbers: the same for every
    grading slot of an assignment, so their reference states differ only in addresses."""
    prefix = str(topology.subnet.network_address).rsplit(".", 1)[0] + "."
    text = repr(dataclasses.replace(topology, source=None))
    text = text.replace(f"name='{topology.name}'", "name=''").replace(prefix, "NET.")
    return hashlib.sha256(text.encode()).hexdigest()


def _sibling(parts: dict[str, str], form: str, names: list[str]) -> dict | None:
    """A complete entry of these components built by a lab of the same shape, if any."""
    same = ("format", "base", "code", *PROFILE_PARTS)
    for directory, meta in _listing():
        if (
            meta is not None
            and meta.get("shape") == form
            and all(meta.get(k) == parts.get(k) for k in same)
            and sorted(meta.get("components") or []) == sorted(names)
            and meta.get("key") == directory.name
        ):
            return meta
    return None


@contextmanager
def _build_lock(name: str):
    """One build of a shared state at a time, machine-wide: the next lab waits, then reuses."""
    import fcntl  # Linux only, like the LXC provider that layers need

    cache_dir().mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(cache_dir() / f".build-{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def taken_from(topology: Topology, provider, components) -> str | None:
    """The lab whose build this lab's cached state of these components was made from (taken
    over, provisioned again for this lab), or None: built here, or not cached."""
    if not provider.layers:
        return None
    parts = key_parts(topology, provider)
    entry = _entries(parts).get(cache_key(parts, ordered(components))) or {}
    parent = _meta_if_present(cache_dir() / entry["parent"] / META) if entry.get("parent") else {}
    lab = (parent or {}).get("lab")
    return lab if lab != topology.name else None


def is_cached(topology: Topology, provider, components) -> bool:
    """Whether these components' reference state is cached for this topology (valid only)."""
    return set(components) in [set(c) for c in cached_components(topology, provider)]


def _save_entry(parts, key: str, names, parent, state, provider, progress, form="") -> str:
    directory = _fresh_entry_dir(key, provider)
    layers = provider.save_layer(directory, progress)
    meta = {
        **parts,
        **({"shape": form} if form else {}),
        "key": key,
        "components": names,
        "parent": parent["key"] if parent else None,
        "created": time.time(),
        "layers": {host: [str(p) for p in stack] for host, stack in layers.items()},
        "secrets": _secrets(state),
    }
    write_private(directory / META, json.dumps(meta, indent=2) + "\n")
    prune(parts, provider, keep={key})
    return key


def cached_components(topology: Topology, provider) -> list[list[str]]:
    """The component sets cached for this topology as it is now (valid entries only)."""
    if not provider.layers:
        return []
    return [e["components"] for e in _entries(key_parts(topology, provider)).values()]


def prune(parts: dict[str, str], provider, keep: set[str] = frozenset()) -> list[str]:
    """Remove this lab's stale or unfinished entries that no host or snapshot uses."""
    everything = _listing()
    old = time.time() - 3600  # an entry without meta younger than this may be being built
    candidates = [
        (d, meta)
        for d, meta in everything
        if d.name not in keep
        and (
            (meta is None and _modified(d) < old)
            or (meta is not None and meta.get("lab") == parts["lab"] and _stale(meta, parts))
        )
    ]
    used = {Path(p) for p in provider.layers_in_use()}
    for _, meta in everything:
        if meta is not None and all(d.name != meta.get("key") for d, _ in candidates):
            used |= {Path(p) for stack in (meta.get("layers") or {}).values() for p in stack}
    for snapshot_meta in (lab_home() / "snapshots").glob(f"*/*/{META}"):
        layers = (_meta_if_present(snapshot_meta) or {}).get("layers") or {}
        used |= {Path(p) for stack in layers.values() for p in stack}
    removed = []
    for directory, _ in candidates:
        if not any(p == directory or directory in p.parents for p in used):
            shutil.rmtree(directory, ignore_errors=True)
            removed.append(directory.name)
    return removed


def _stale(meta: dict, parts: dict[str, str]) -> bool:
    """Whether an entry of the lab was made under other parts (an older image, code or
    topology), or with an older script of the same profile: never to be used again."""
    if any(meta.get(k) != v for k, v in parts.items() if k not in PROFILE_PARTS):
        return True
    same_profile = parts.get("profile") and meta.get("profile") == parts["profile"]
    return bool(same_profile) and meta.get("profile_script") != parts["profile_script"]


def _holds(directory: Path, used: set[Path]) -> bool:
    """Whether directory is, or holds, one of the used layers."""
    return any(p == directory or directory in p.parents for p in used)


def _dirs() -> list[Path]:
    root = cache_dir()
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def _entries(parts: dict[str, str]) -> dict[str, dict]:
    """Complete entries made under these parts, by key."""
    found = {}
    for directory, meta in _listing():
        if meta is None or meta.get("key") != directory.name:
            continue
        if all(meta.get(k) == parts.get(k) for k in {*parts, *PROFILE_PARTS}):
            found[directory.name] = meta
    return found


def _listing() -> list[tuple[Path, dict | None]]:
    """Each cache entry with its meta (None while it is being built); an entry that another
    lab's prune removes meanwhile is left out."""
    found = []
    for directory in _dirs():
        meta = _meta_if_present(directory / META)
        if meta is not None or directory.exists():
            found.append((directory, meta))
    return found


def _meta_if_present(path: Path) -> dict | None:
    """A meta.json, or None when there is none (also when it went while being read)."""
    try:
        return _read_json(path) if path.is_file() else None
    except LabError:
        if path.exists():
            raise
        return None


def _modified(directory: Path) -> float:
    try:
        return directory.stat().st_mtime
    except FileNotFoundError:
        return time.time()  # just removed by another lab: not ours to remove


def _fresh_entry_dir(key: str, provider) -> Path:
    """An empty directory for a new entry; an unfinished one in the way is moved aside."""
    directory = cache_dir() / key
    if directory.exists():
        directory.rename(directory.with_name(f"{key}.unfinished-{time.time_ns()}"))
    directory.mkdir(parents=True, mode=0o700)
    return directory


def _layers(meta: dict) -> dict[str, list[Path]]:
    return {host: [Path(p) for p in stack] for host, stack in meta["layers"].items()}


def _provision(
    topology, state, provider, names: list[str], progress, connect=None, taken_over=False
) -> None:
    from provision import COMPONENTS
    from provision.runner import run_components

    if not names:
        return
    components = [COMPONENTS[n] for n in names]
    with (connect or (lambda: Fleet(provider.specs())))() as fleet:
        summary = run_components(topology, state, fleet, components, progress, taken_over)
    if not summary.ok:
        failures = "; ".join(f"{host}: {why}" for host, why in summary.failures.items())
        raise HostFailure(f"building the reference ({', '.join(names)}) failed: {failures}")


def _secrets(state: LabState) -> dict:
    return _read_json(state.secrets_file) if state.secrets_file.is_file() else {}


def _merge_secrets(state: LabState, saved: dict) -> None:
    """The hosts now hold these secrets (database passwords): the lab's state must too."""
    if saved and _secrets(state) != {**_secrets(state), **saved}:
        merged = {**_secrets(state), **saved}
        write_private(state.secrets_file, json.dumps(merged, indent=2, sort_keys=True) + "\n")


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise LabError(f"{path} is unreadable: {exc}") from None
    return data if isinstance(data, dict) else {}
