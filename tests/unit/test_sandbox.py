"""The sandbox of labs that run untrusted code: its settings and the container limits."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lab.core.errors import LabError
from lab.core.topology import PACKAGED, Sandbox, parse
from lab.providers.lxc import cgroup_limits


def with_sandbox(spec) -> dict:
    data = yaml.safe_load(PACKAGED.read_text())
    data["sandbox"] = spec
    return data


def test_a_lab_without_sandbox_has_none():
    assert parse(yaml.safe_load(PACKAGED.read_text())).sandbox is None


def test_sandbox_defaults_and_values():
    assert parse(with_sandbox({})).sandbox == Sandbox()
    assert parse(with_sandbox({"memory_mib": 512, "cpus": 0.5})).sandbox == Sandbox(512, 1024, 0.5)
    assert Sandbox().disk_mib == 4096
    assert parse(with_sandbox({"disk_mib": 300})).sandbox.disk_mib == 300


@pytest.mark.parametrize(
    "spec, message",
    [
        ("big", "expected a mapping"),
        ({"disk": 1}, "unknown key 'disk'"),
        ({"processes": 3}, "sandbox.processes: expected a number of at least 64"),
        ({"memory_mib": True}, "sandbox.memory_mib"),
        ({"disk_mib": 8}, "sandbox.disk_mib: expected a number of at least 64"),
    ],
)
def test_bad_sandbox_settings_are_named(spec, message):
    with pytest.raises(LabError, match=message):
        parse(with_sandbox(spec))


def test_cgroup_limits_follow_the_machines_hierarchy():
    v1 = cgroup_limits(Sandbox(512, 300, 0.5), v2=False)
    assert "lxc.cgroup.memory.limit_in_bytes = 536870912" in v1
    assert "lxc.cgroup.pids.max = 300" in v1
    assert "lxc.cgroup.cpu.cfs_quota_us = 50000" in v1
    v2 = cgroup_limits(Sandbox(512, 300, 2), v2=True)
    assert v2 == [
        "lxc.cgroup2.memory.max = 536870912",
        "lxc.cgroup2.pids.max = 300",
        "lxc.cgroup2.cpu.max = 200000 100000",
    ]


def test_a_grading_lab_is_fenced_like_any_lab_over_ipv4_and_ipv6():
    from lab.grading.assignment import Limits
    from lab.grading.sandbox import SandboxLab, Slot
    from lab.providers.lxcnet import LabNetwork, nft_ruleset

    lab = SandboxLab(Slot(150, handle=None), Limits())
    assert type(lab.provider.network) is LabNetwork  # the same bridge, fence and IPv6 setting
    rules = nft_ruleset(lab.topology, "10.255.255.53")
    assert rules.startswith("table inet webstack_lab_grade150 {")
    assert 'iifname "wsl-grade150" counter name "refused_inside" drop' in rules


def test_a_layer_moved_off_a_hosts_own_disk_is_copied_exactly(tmp_path):
    """save_layer moves a sandboxed host's upper dir into the reference cache: another file
    system, so a rename fails (EXDEV) and the tree is copied (whiteouts too) and removed."""
    import os
    import shutil
    import stat

    from lab.providers.lxc import _move_tree

    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs /dev/shm on a file system of its own")
    source = Path(shm / f"lab-move-{os.getpid()}")
    try:
        (source / "etc").mkdir(parents=True)
        (source / "etc" / "motd").write_text("hello")
        (source / "etc" / "motd").chmod(0o640)
        if os.geteuid() == 0:
            os.mknod(source / "etc" / "gone", stat.S_IFCHR | 0o000, os.makedev(0, 0))  # whiteout
        _move_tree(source, tmp_path / "layer")
        assert not source.exists()
        moved = tmp_path / "layer" / "etc"
        assert (moved / "motd").read_text() == "hello"
        assert stat.S_IMODE((moved / "motd").stat().st_mode) == 0o640
        if os.geteuid() == 0:
            assert stat.S_ISCHR((moved / "gone").lstat().st_mode)
    finally:
        shutil.rmtree(source, ignore_errors=True)


def test_a_grading_host_cannot_read_the_machines_kernel_log_and_a_lab_host_is_unchanged(
    tmp_path, monkeypatch
):
    """CAP_SYSLOG dropped in a sandboxed host's container config (dmesg then fails, with the
    machine's kernel.dmesg_restrict=1); a lab of one's own keeps the config it had."""
    from lab.core.state import LabState
    from lab.providers.lxc import LxcProvider

    monkeypatch.setenv("LAB_HOME", str(tmp_path))

    def config(data) -> str:
        topology = parse(data)
        provider = LxcProvider(topology, LabState(topology.name))
        host = topology.hosts[0]
        path = provider._dir(provider.container(host)) / "config"
        path.parent.mkdir(parents=True)
        path.write_text("lxc.include = /usr/share/lxc/config/debian.common.conf\n")
        provider._write_config(host, provider._marker(host))
        return path.read_text()

    sandboxed = config(with_sandbox({"disk_mib": 300}))
    assert "lxc.cap.drop = syslog" in sandboxed.splitlines()
    own = config({**yaml.safe_load(PACKAGED.read_text()), "name": "mine"})
    assert "lxc.cap.drop" not in own and "lxc.mount.entry" in own
