"""The embedded provider: systemd system containers (LXC) cloned from the lab's Debian image."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from lab.core import platform
from lab.core.errors import HostFailure, LabError
from lab.core.state import lab_home, write_private
from lab.core.system import require_root, require_tools, run
from lab.core.topology import Host
from lab.core.wait import Deadline, until
from lab.providers.aptcache import host_cache
from lab.providers.base import HostStatus
from lab.providers.lxcimage import LAB_USER, BaseImage, lab_user_ids, write_into
from lab.providers.lxcnet import LabNetwork, conflicting_routes, upstream_resolver
from lab.remote.connection import HostSpec, fan_out, wait_for_ssh

TOOLS = (
    "lxc-create",
    "lxc-copy",
    "lxc-start",
    "lxc-info",
    "lxc-destroy",
    "debootstrap",
    "rsync",
    "nft",
    "ip",
)
PACKAGES = "apt-get install lxc lxc-templates debootstrap rsync nftables iproute2 openssh-client"
DISK_TOOLS = ("mkfs.ext4", "losetup", "mount", "umount")  # a sandboxed host's own file system
DISK_IMAGE = "disk.img"  # in the container's directory, loop-mounted on its overlay directory
LISTS = "var/lib/apt/lists"
# a snapshot is saved as one more layer under a host up to this many (the overlay's layers are
# listed in its mount options, which the kernel limits to a page); beyond, it is copied
MAX_LAYERS = 24
DEBIAN_TEMPLATE = Path("/usr/share/lxc/templates/lxc-debian")


def cgroup_v2() -> bool:
    """Whether this machine mounts the unified cgroup hierarchy (else v1 controllers)."""
    return Path("/sys/fs/cgroup/cgroup.controllers").is_file()


def cgroup_limits(sandbox, v2: bool) -> list[str]:
    """Container config lines limiting memory, processes and CPU per host."""
    memory, quota = sandbox.memory_mib * 2**20, int(sandbox.cpus * 100_000)
    if v2:
        return [
            f"lxc.cgroup2.memory.max = {memory}",
            f"lxc.cgroup2.pids.max = {sandbox.processes}",
            f"lxc.cgroup2.cpu.max = {quota} 100000",
        ]
    return [
        f"lxc.cgroup.memory.limit_in_bytes = {memory}",
        f"lxc.cgroup.pids.max = {sandbox.processes}",
        "lxc.cgroup.cpu.cfs_period_us = 100000",
        f"lxc.cgroup.cpu.cfs_quota_us = {quota}",
    ]


def sandbox_config(sandbox, v2: bool) -> list[str]:
    """Container config lines of a host that runs untrusted code: its limits, and no reading
    the machine's kernel log (without CAP_SYSLOG, dmesg fails where kernel.dmesg_restrict=1)."""
    return [*cgroup_limits(sandbox, v2), "lxc.cap.drop = syslog"]


def kernel_log_restricted() -> bool:
    """Whether this machine lets only CAP_SYSLOG read its kernel log (kernel.dmesg_restrict)."""
    try:
        return Path("/proc/sys/kernel/dmesg_restrict").read_text().strip() == "1"
    except OSError:
        return False


def boot_timeout() -> float:
    return float(os.environ.get("LAB_BOOT_TIMEOUT", "90"))


class LxcProvider:
    """Hosts as LXC containers on a bridge of the lab's own, with NAT to the package mirror."""

    name = "lxc"

    def __init__(self, topology, state):
        self.topology = topology
        self.state = state
        self.lxcpath = lab_home() / "containers"
        self.image = BaseImage(self.lxcpath)
        self.network = LabNetwork(topology, state)
        self.cache = lab_home() / "cache" / "apt"
        self._state_lock = threading.Lock()

    # -- naming -------------------------------------------------------------------------
    def container(self, host: Host) -> str:
        return f"{self.topology.name}-{host.name}"

    def _dir(self, name: str) -> Path:
        return self.lxcpath / name

    def _marker(self, host: Host) -> str:
        return f"# webstack-lab lab={self.topology.name} host={host.name}"

    def _is_ours(self, name: str, marker: str) -> bool:
        try:
            return (self._dir(name) / "config").read_text().startswith(marker)
        except OSError:
            return False

    # -- provider interface -------------------------------------------------------------
    def up(self, progress) -> None:
        require_root("lab up with the lxc provider")
        require_tools(*TOOLS, package_hint=PACKAGES)
        if not DEBIAN_TEMPLATE.is_file():
            raise LabError("LXC's Debian template is missing", hint="apt-get install lxc-templates")
        if self.topology.sandbox:
            require_tools(*DISK_TOOLS, package_hint="apt-get install e2fsprogs mount")
        resolver = upstream_resolver()
        self.state.save(provider=self.name, topology=str(self.topology.source or ""))
        self.state.ensure_key()
        with progress.step("base image (Debian 12)") as step:
            built = self.image.ensure(step.update)
            step.done("built" if built else "cached")
        with progress.step(f"lab network {self.topology.subnet}") as step:
            self.network.ensure(resolver)
            step.done(self.network.bridge)
        with progress.step("hosts") as step:
            self._fan_out(lambda host: self._ensure_host(host, resolver, step.update))
            self._write_known_hosts()
            step.done(", ".join(self.topology.names))
        with progress.step("SSH on every host") as step:
            deadline = Deadline(boot_timeout())
            self._fan_out(lambda host: self._wait_for_boot(host, deadline, step.update))
            step.done("ready")

    def status(self) -> list[HostStatus]:
        return [
            HostStatus(host.name, host.address, self._state_of(host), self.name)
            for host in self.topology.hosts
        ]

    def destroy(self, progress, purge: bool = False) -> None:
        require_root("lab destroy with the lxc provider")
        with progress.step("containers") as step:
            removed = self._fan_out(self._remove_host)
            step.done(", ".join(name for name in removed if name) or "none")
        with progress.step("lab network") as step:
            self.network.remove()
            step.done("removed")
        if purge:
            with progress.step("download cache and image") as step:
                for host in self.topology.hosts:
                    shutil.rmtree(self.cache / self.container(host), ignore_errors=True)
                others = [p for p in (self.state.dir.parent).glob("*") if p != self.state.dir]
                if not others:
                    self.image.remove()
                step.done("removed" if not others else "cache removed; image kept for other labs")
        self.state.remove()

    def specs(self) -> list[HostSpec]:
        return [self._spec(host) for host in self.topology.hosts]

    def doctor(self) -> list[tuple[str, bool, str]]:
        missing = [tool for tool in TOOLS if not shutil.which(tool)]
        home = lab_home()
        home_existing = next(p for p in (home, *home.parents) if p.exists())
        free_gb = shutil.disk_usage(home_existing).free / 2**30
        conflicts = (
            conflicting_routes(self.topology.subnet, self.network.bridge)
            if shutil.which("ip")
            else []
        )
        return [
            ("running as root", platform.is_root(), "run lab with sudo"),
            (
                f"tools: {', '.join(TOOLS)}",
                not missing,
                f"missing {', '.join(missing)}: {PACKAGES}",
            ),
            ("LXC's Debian template", DEBIAN_TEMPLATE.is_file(), "apt-get install lxc-templates"),
            (
                "overlayfs in the kernel",
                "overlay" in Path("/proc/filesystems").read_text(),
                "load the overlay module (modprobe overlay)",
            ),
            (
                f"{self.topology.subnet} free on this machine",
                not conflicts,
                f"already routed ({', '.join(conflicts[:2])}); set network.subnet in lab.yml",
            ),
            (
                f"disk: {free_gb:.0f} GB free in {home_existing}",
                free_gb >= 3,
                "the image and three hosts need about 3 GB",
            ),
            (
                "base image: " + ("cached" if self.image.ready else "built by the first `lab up`"),
                True,
                "",
            ),
        ]

    # -- hosts --------------------------------------------------------------------------
    def _spec(self, host: Host) -> HostSpec:
        return HostSpec(
            host.name, host.address, 22, LAB_USER, self.state.key_file, self.state.known_hosts
        )

    def _state_of(self, host: Host) -> str:
        name = self.container(host)
        if not self._is_ours(name, self._marker(host)):
            return "absent"
        result = run(["lxc-info", "-P", str(self.lxcpath), "-n", name, "-s", "-H"], check=False)
        return result.stdout.strip().lower() or "unknown"

    def _fan_out(self, func) -> list:
        """Run func for every host in parallel; raise one HostFailure naming each failed host."""
        outcomes = fan_out(self.topology.hosts, func, key=lambda host: host.name).values()
        unexpected = [o.error for o in outcomes if o.error and not isinstance(o.error, LabError)]
        if unexpected:
            raise unexpected[0]
        failures = [f"{o.host}: {o.error}" for o in outcomes if o.error]
        if failures:
            raise HostFailure("; ".join(failures))
        return [o.value for o in outcomes]

    def _ensure_host(self, host: Host, resolver: str, update) -> None:
        name, marker = self.container(host), self._marker(host)
        if not self._is_ours(name, marker):
            if self._dir(name).exists():
                if name not in self.state.load().get("containers", []):
                    raise LabError(f"container {name} exists and was not made by this lab")
                update(f"{host.name}: removing an unfinished container")
                self._release_disk(name)
                self._lxc("lxc-destroy", name, check=False)
                shutil.rmtree(self._dir(name), ignore_errors=True)
            update(f"{host.name}: cloning the image")
            self._record_container(name)
            self._lxc("lxc-copy", self.image.name, "-N", name, "-s", "-B", "overlayfs")
            if self.topology.sandbox:
                self._make_disk(name, self.topology.sandbox.disk_mib)
            self._give_identity(host, resolver)
            self._write_config(host, marker)
        elif self._disk_image(name).is_file() and not os.path.ismount(self._disk_mount(name)):
            self._mount_disk(name)  # the machine restarted: the host's own disk again
        if self._state_of(host) != "running":
            update(f"{host.name}: starting")
            self._lxc("lxc-start", name, "-d")

    def _wait_for_boot(self, host: Host, deadline: Deadline, update) -> None:
        """Wait for the host's SSH; a boot still stalled at the deadline is started again once."""
        running = self._running(host)
        try:
            wait_for_ssh(self._spec(host), deadline, running)
            return
        except LabError:
            if not running():
                raise
            name = self.container(host)
            state = self._attach(name, "systemctl", "is-system-running").stdout.strip()
            if state not in ("initializing", "starting"):
                raise
        jobs = self._attach(name, "systemctl", "list-jobs", "--no-pager")
        record = self.state.dir / f"boot-stalled-{host.name}.log"
        record.write_text(f"{time.ctime()}: {state}\n{jobs.stdout}{jobs.stderr}")
        update(f"{host.name}: the boot stalled ({record.name}); starting it again")
        self._lxc("lxc-stop", name, "-k", check=False)
        self._lxc("lxc-start", name, "-d")
        wait_for_ssh(self._spec(host), Deadline(boot_timeout()), running)

    def _running(self, host: Host) -> Callable[[], bool]:
        """Whether the host's container still runs (a boot to wait for), as LXC says."""
        return lambda: self._state_of(host) not in ("stopped", "absent")

    def _attach(self, name: str, *command: str):
        return self._lxc("lxc-attach", name, "--", *command, check=False)

    def _record_container(self, name: str) -> None:
        with self._state_lock:
            recorded = self.state.load().get("containers", [])
            if name not in recorded:
                self.state.save(containers=[*recorded, name])

    def _lxc(self, tool: str, name: str, *args: str, check: bool = True):
        return run([tool, "-P", str(self.lxcpath), "-n", name, *args], check=check)

    def _upper_dir(self, name: str) -> Path:
        """The clone's own writable layer (overlay upper dir)."""
        return Path(self._rootfs_value(name).rsplit(":", 1)[-1])

    def _give_identity(self, host: Host, resolver: str) -> None:
        """Hostname, hosts file, resolver, own SSH host key and the lab's login key."""
        upper, lower = self._upper_dir(self.container(host)), self.image.rootfs
        host_key = self._host_key(host)
        others = "".join(f"{h.address}\t{h.name}\n" for h in self.topology.hosts)
        files = {
            "etc/hostname": (f"{host.name}\n", 0o644, (0, 0)),
            "etc/hosts": (f"127.0.0.1\tlocalhost\n127.0.1.1\t{host.name}\n{others}", 0o644, (0, 0)),
            "etc/resolv.conf": (f"nameserver {resolver}\n", 0o644, (0, 0)),
            "etc/ssh/ssh_host_ed25519_key": (host_key.read_text(), 0o600, (0, 0)),
            "etc/ssh/ssh_host_ed25519_key.pub": (
                host_key.with_suffix(".pub").read_text(),
                0o644,
                (0, 0),
            ),
            f"home/{LAB_USER}/.ssh/authorized_keys": (
                self.state.public_key + "\n",
                0o600,
                lab_user_ids(lower),
            ),
        }
        for rel, (data, mode, owner) in files.items():
            write_into(upper, lower, rel, data, mode, owner)

    def _host_key(self, host: Host) -> Path:
        key = self.state.dir / "hostkeys" / host.name
        if not key.is_file():
            key.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            key.with_suffix(".pub").unlink(missing_ok=True)
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", host.name, "-f", str(key)],
                check=True,
                capture_output=True,
            )
        return key

    def _write_known_hosts(self) -> None:
        lines = []
        for host in self.topology.hosts:
            kind, blob = self._host_key(host).with_suffix(".pub").read_text().split()[:2]
            lines.append(f"{host.address},{host.name} {kind} {blob}\n")
        write_private(self.state.known_hosts, "".join(lines))

    def _write_config(self, host: Host, marker: str) -> None:
        config = self._dir(self.container(host)) / "config"
        kept = [
            line
            for line in config.read_text().splitlines()
            if line.strip()
            and not line.startswith("#")
            and not line.startswith(("lxc.net.", "lxc.uts.name", "lxc.start.auto"))
        ]
        mac = hashlib.sha256(f"{self.topology.name}/{host.name}".encode()).hexdigest()
        ours = [
            f"lxc.uts.name = {host.name}",
            "lxc.start.auto = 0",
            "lxc.net.0.type = veth",
            f"lxc.net.0.link = {self.network.bridge}",
            "lxc.net.0.flags = up",
            "lxc.net.0.name = eth0",
            f"lxc.net.0.hwaddr = 00:16:3e:{mac[0:2]}:{mac[2:4]}:{mac[4:6]}",
            f"lxc.net.0.ipv4.address = {host.address}/{self.topology.prefixlen}",
            f"lxc.net.0.ipv4.gateway = {self.topology.gateway}",
        ]
        if self.topology.sandbox:  # untrusted code gets limits and no cache shared with labs
            ours += sandbox_config(self.topology.sandbox, cgroup_v2())
        else:
            cache = host_cache(
                self.cache, self.container(host), host.name, self.image.rootfs / LISTS
            )
            ours += [
                f"lxc.mount.entry = {cache}/{part} {target} none bind,create=dir 0 0"
                for part, target in (("archives", "var/cache/apt/archives"), ("lists", LISTS))
            ]
        config.write_text("\n".join([marker, *kept, *ours]) + "\n")

    def _remove_host(self, host: Host) -> str | None:
        name = self.container(host)
        if not self._is_ours(name, self._marker(host)) and name not in self.state.load().get(
            "containers", []
        ):
            return None
        if not self._dir(name).exists():
            return None
        self._lxc("lxc-stop", name, "-k", check=False)
        self._release_disk(name)
        if (self._dir(name) / "config").is_file() and self._lowers(name):
            self._set_rootfs(name, [])  # lxc-destroy reads "overlay:LOWER:UPPER" only
        self._lxc("lxc-destroy", name)
        return name

    # -- a sandboxed host's own disk: its writable layer on a file system of a fixed size ---
    def _disk_image(self, name: str) -> Path:
        return self._dir(name) / DISK_IMAGE

    def _disk_mount(self, name: str) -> Path:
        """Where the clone's upper and work dirs live (LXC's overlay/delta and overlay/work)."""
        return self._dir(name) / "overlay"

    def _make_disk(self, name: str, mib: int) -> None:
        """Move the clone's overlay dir onto an ext4 file system of mib MiB (a sparse file,
        loop-mounted in its place): what the host writes can never take more of the machine."""
        mount, image = self._disk_mount(name), self._disk_image(name)
        staged = mount.with_name("overlay.clone")
        os.replace(mount, staged)
        mount.mkdir(mode=0o755)
        with open(image, "wb") as handle:
            handle.truncate(mib * 2**20)
        image.chmod(0o600)
        run(["mkfs.ext4", "-q", "-F", "-m", "0", str(image)])  # -m 0: root in the host is root
        self._mount_disk(name)
        run(["cp", "-a", f"{staged}/.", str(mount)])
        shutil.rmtree(staged)

    def _mount_disk(self, name: str) -> None:
        run(["mount", "-o", "loop", str(self._disk_image(name)), str(self._disk_mount(name))])

    def _release_disk(self, name: str) -> None:
        """Unmount the host's own disk, free its loop device and delete its image (a stopped
        host's, or one left mounted by a crashed run); nothing to do for a host without one."""
        mount, image = self._disk_mount(name), self._disk_image(name)
        if os.path.ismount(mount):
            unmounted = until(
                lambda: run(["umount", str(mount)], check=False).returncode == 0, 15, 0.5
            )
            if not unmounted:  # a trash removal may still be running in it
                run(["umount", "-l", str(mount)], check=False)
        if image.exists():
            devices = run(["losetup", "-n", "-O", "NAME", "-j", str(image)], check=False)
            for device in devices.stdout.split():
                run(["losetup", "-d", device], check=False)
            image.unlink()

    def stop_now(self, host: Host) -> None:
        """Stop the host at once, without a shutdown: whatever runs there ends now."""
        self._lxc("lxc-stop", self.container(host), "-k", check=False)

    def disk_full(self, host: Host) -> bool:
        """Whether a sandboxed host's own disk has no room left (blocks or inodes)."""
        mount = self._disk_mount(self.container(host))
        if not os.path.ismount(mount):
            return False
        disk = os.statvfs(mount)
        return disk.f_bavail * disk.f_frsize < 2**20 or disk.f_favail == 0

    # -- snapshots: a host's own changes are its overlay upper dir -----------------------
    layers = True  # hosts can start from read-only layers (the reference-state cache)

    def base_id(self) -> str:
        """What fresh hosts start from: the image's recipe and when it was built."""
        if not self.image.ready:
            return ""
        return f"{self.image.marker.read_text().strip()}@{self.image.marker.stat().st_mtime_ns}"

    def snapshot_save(self, name: str, directory: Path, progress) -> dict:
        """Freeze each host's upper dir into directory as a read-only layer and go on from it
        (a rename, whatever the hosts hold); returns each host's layers, top first. A host
        already on MAX_LAYERS layers has its upper dir copied instead (the stack stays)."""
        self._require_hosts("lab snapshot save")
        layer = directory / f"layer-{time.time_ns()}"
        deep = any(len(self._lowers(self.container(h))) >= MAX_LAYERS for h in self.topology.hosts)

        def copy(host: Host) -> None:
            container = self.container(host)
            self._lxc("lxc-stop", container, check=False)
            try:
                _copy_tree(self._upper_dir(container), directory / host.name)
            finally:
                self._lxc("lxc-start", container, "-d")

        with progress.step(f"snapshot {name}") as step:
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            if deep:
                self._fan_out(copy)
                self._wait_ssh()
                stacks = {h.name: self._lowers(self.container(h)) for h in self.topology.hosts}
            else:
                stacks = self._freeze(layer)
            step.done(", ".join(self.topology.names))
        return {host: [str(p) for p in stack] for host, stack in stacks.items()}

    def snapshot_restore(self, name: str, directory: Path, layers: dict, progress) -> None:
        """Start each host with an empty upper dir on the snapshot's layers (a snapshot saved
        as a copy: on a copy of it over its layers)."""
        self._require_hosts("lab snapshot restore")
        stacks = {h.name: [Path(p) for p in layers.get(h.name, [])] for h in self.topology.hosts}
        frozen = all(stack and directory in stack[0].parents for stack in stacks.values())
        missing = [
            h for h, stack in stacks.items() if not (stack[0] if frozen else directory / h).is_dir()
        ]
        if missing:
            raise LabError(f"snapshot {name} has no copy of {', '.join(missing)}")

        def fill(host: Host, upper: Path) -> None:
            if frozen:
                upper.mkdir(mode=0o755)
            else:
                _copy_tree(directory / host.name, upper)

        with progress.step(f"restore {name}") as step:
            self._restart_on(fill, stacks)
            step.done(", ".join(self.topology.names))

    def snapshot_delete(self, name: str, directory: Path) -> None:
        """Nothing lives outside directory for LXC snapshots."""

    def restore_layers(self, layers: dict[str, list[Path]], progress) -> None:
        """Fresh hosts: an empty upper dir over read-only layers (top first), SSH ready."""
        self._require_hosts("lab exercise start")
        resolver = upstream_resolver()

        def fresh(host: Host, upper: Path) -> None:
            upper.mkdir(mode=0o755)
            self._give_identity(host, resolver)

        with progress.step("fresh hosts") as step:
            self._restart_on(fresh, layers)
            step.done(", ".join(self.topology.names))

    def save_layer(self, directory: Path, progress) -> dict[str, list[Path]]:
        """Stop each host, move its upper dir to directory/HOST as a new read-only layer on top
        of its current ones, start it again on them; returns each host's layers, top first."""
        with progress.step("saving the reference state") as step:
            stacks = self._freeze(directory)
            step.done(str(directory))
        return stacks

    def _freeze(self, directory: Path) -> dict[str, list[Path]]:
        """save_layer's work: each host's upper dir becomes directory/HOST, under a new one."""
        stacks: dict[str, list[Path]] = {}

        def save(host: Host) -> None:
            container = self.container(host)
            self._lxc("lxc-stop", container, check=False)
            upper = self._upper_dir(container)
            _move_tree(upper, directory / host.name)
            upper.mkdir(mode=0o755)
            stacks[host.name] = [directory / host.name, *self._lowers(container)]
            self._set_rootfs(container, stacks[host.name])
            self._renew_keys(host, upper)
            self._lxc("lxc-start", container, "-d")

        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._fan_out(save)
        self._write_known_hosts()
        self._wait_ssh()
        return stacks

    def layers_in_use(self) -> set[Path]:
        """Every read-only layer a container of any lab on this machine starts from."""
        used = set()
        for config in self.lxcpath.glob("*/config"):
            for line in config.read_text().splitlines():
                key, _, value = line.partition("=")
                if key.strip() == "lxc.rootfs.path":
                    used.update(Path(p) for p in value.strip().split(":")[1:-1])
        return used

    def _require_hosts(self, what: str) -> None:
        require_root(what)
        absent = [s.name for s in self.status() if s.state == "absent"]
        if absent:
            raise LabError(f"{', '.join(absent)} do not exist", hint="run `lab up` first")

    def _restart_on(self, fill, layers: dict[str, list[Path]]) -> None:
        """Kill each host, give it a new upper dir (filled by fill) over layers, start it."""
        trash: list[Path] = []

        def restart(host: Host) -> None:
            container = self.container(host)
            self._lxc("lxc-stop", container, "-k", check=False)
            upper = self._upper_dir(container)
            old = upper.with_name(f"trash-{time.time_ns()}")
            if upper.exists():
                os.replace(upper, old)
                trash.append(old)
            fill(host, upper)
            self._set_rootfs(container, layers.get(host.name, []))
            self._renew_keys(host, upper)
            self._lxc("lxc-start", container, "-d")

        self._fan_out(restart)
        self._write_known_hosts()
        if trash:  # removed in the background: never in the way of the hosts' boot
            subprocess.Popen(
                ["rm", "-rf", "--one-file-system", *map(str, trash)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        self._wait_ssh()

    def _wait_ssh(self) -> None:
        """Every host accepts SSH (a stalled boot is started again once, as in `up`)."""
        deadline = Deadline(boot_timeout())
        self._fan_out(lambda host: self._wait_for_boot(host, deadline, lambda _text: None))

    def _renew_keys(self, host: Host, upper: Path) -> None:
        """The lab's current login key and this host's key, whatever the layers below hold."""
        host_key = self._host_key(host)
        owner = lab_user_ids(self.image.rootfs)
        files = {
            "etc/ssh/ssh_host_ed25519_key": (host_key.read_text(), 0o600, (0, 0)),
            "etc/ssh/ssh_host_ed25519_key.pub": (
                host_key.with_suffix(".pub").read_text(),
                0o644,
                (0, 0),
            ),
            f"home/{LAB_USER}/.ssh/authorized_keys": (self.state.public_key + "\n", 0o600, owner),
        }
        for rel, (data, mode, ids) in files.items():
            write_into(upper, self.image.rootfs, rel, data, mode, ids)

    def _rootfs_parts(self, name: str) -> list[str]:
        return str(self._rootfs_value(name)).split(":")

    def _rootfs_value(self, name: str) -> str:
        for line in (self._dir(name) / "config").read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "lxc.rootfs.path":
                return value.strip()
        raise LabError(f"container {name} has no rootfs in its config")

    def _lowers(self, name: str) -> list[Path]:
        """The read-only layers between the image and the host's upper dir, top first."""
        return [Path(p) for p in self._rootfs_parts(name)[1:-2]]

    def _set_rootfs(self, name: str, lowers: list[Path]) -> None:
        """Point the container at lowers (top first) over the image, its upper dir unchanged."""
        if any(":" in str(p) for p in lowers):
            raise LabError(f"a layer path may not contain ':' ({lowers})")
        parts = ["overlay", *map(str, lowers), str(self.image.rootfs), str(self._upper_dir(name))]
        config = self._dir(name) / "config"
        lines = [
            f"lxc.rootfs.path = {':'.join(parts)}"
            if line.partition("=")[0].strip() == "lxc.rootfs.path"
            else line
            for line in config.read_text().splitlines()
        ]
        config.write_text("\n".join(lines) + "\n")


def _move_tree(source: Path, target: Path) -> None:
    """Rename source to target; from another file system (a sandboxed host's own disk), copy
    it exactly and remove the source."""
    try:
        os.replace(source, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        _copy_tree(source, target)
        shutil.rmtree(source)


def _copy_tree(source: Path, target: Path) -> None:
    """Copy a directory tree exactly: owners, modes, xattrs, and overlay whiteouts (0/0 devices)."""
    if target.exists():
        shutil.rmtree(target)
    run(["cp", "-a", "--reflink=auto", str(source), str(target)])
