"""Provisioning steps on a real host: a write that fails fails its step and leaves nothing."""

from __future__ import annotations

import pytest

from lab import providers
from lab.core import topology
from lab.core.state import LabState
from lab.remote.connection import Fleet
from provision.engine import HostRun, StepFailed

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("lxc")]

HOST = "web-01"
LEFTOVERS = "ls -a /tmp | grep -c '^.webstack-' || true"  # uploads not yet installed


@pytest.fixture
def host(lab):
    topo = topology.load(lab.topology)
    with Fleet(providers.select(topo, LabState(topo.name)).specs()) as fleet:
        run = HostRun(HOST, lab.address(HOST), fleet[HOST], component="test")
        yield run
        run.sh("rm -rf /tmp/engine-test")


def test_a_file_is_written_once(host):
    assert host.file("/tmp/engine-test/a.conf", "one\n", mode="0640")
    assert not host.file("/tmp/engine-test/a.conf", "one\n", mode="0640")
    assert host.sh("stat -c %a /tmp/engine-test/a.conf; cat /tmp/engine-test/a.conf").stdout == (
        "640\none\n"
    )
    assert [c.what for c in host.changes] == ["wrote /tmp/engine-test/a.conf"]


def test_a_path_under_a_regular_file_fails_the_step(host):
    before = host.sh(LEFTOVERS).stdout
    with pytest.raises(StepFailed) as failure:
        host.file("/etc/hostname/webstack.conf", "x\n")
    assert failure.value.host == HOST and failure.value.step == "test"
    assert "/etc/hostname" in failure.value.detail
    assert host.changes == []
    assert host.sh(LEFTOVERS).stdout == before


def test_a_failing_install_fails_the_step(host):
    before = host.sh(LEFTOVERS).stdout
    with pytest.raises(StepFailed) as failure:
        host.file("/tmp/engine-test/b.conf", "x\n", owner="no-such-user")
    assert "no-such-user" in failure.value.detail
    assert host.changes == []
    assert host.sh(LEFTOVERS).stdout == before
    assert host.sh("[ -e /tmp/engine-test/b.conf ] && echo present || true").stdout == ""
