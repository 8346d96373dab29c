"""The sandbox of labs that run untrusted code: its settings and the container limits."""

from __future__ import annotations

import pytest
import yaml

from lab.errors import LabError
from lab.providers.lxc import cgroup_limits
from lab.topology import PACKAGED, Sandbox, parse


def with_sandbox(spec) -> dict:
    data = yaml.safe_load(PACKAGED.read_text())
    data["sandbox"] = spec
    return data


def test_a_lab_without_sandbox_has_none():
    assert parse(yaml.safe_load(PACKAGED.read_text())).sandbox is None


def test_sandbox_defaults_and_values():
    assert parse(with_sandbox({})).sandbox == Sandbox()
    assert parse(with_sandbox({"memory_mib": 512, "cpus": 0.5})).sandbox == Sandbox(512, 1024, 0.5)


@pytest.mark.parametrize(
    "spec, message",
    [
        ("big", "expected a mapping"),
        ({"disk": 1}, "unknown key 'disk'"),
        ({"processes": 3}, "sandbox.processes: expected a number of at least 64"),
        ({"memory_mib": True}, "sandbox.memory_mib"),
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
