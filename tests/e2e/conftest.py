"""Real hosts for end-to-end tests: a lab of its own, brought up once and always destroyed."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from lab.core import resources
from lab.core.state import LabState
from lab.core.topology import variant
from lab.core.wait import until
from lab.facts.haproxy import runtime_api
from lab.remote.quoting import quote
from tests.e2e import forked


def write_topology(directory: Path, name: str, third_octet: int, source: str = "lab.yml") -> Path:
    """A packaged topology (lab.yml, lab-ha.yml) under another name and subnet: tests never
    touch a user's lab."""
    path = directory / f"{name}.yml"
    data = variant(name, third_octet, resources.topology_file(source))
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


class LabRunner:
    """Runs the real `lab` command against one test topology."""

    def __init__(self, topology: Path):
        self.topology = topology
        self.data = yaml.safe_load(topology.read_text())

    @property
    def name(self) -> str:
        return self.data["name"]

    def address(self, host: str) -> str:
        return self.data["hosts"][host]["address"]

    @property
    def hosts(self) -> list[str]:
        return list(self.data["hosts"])

    def env(self, **extra) -> dict:
        shapes = {"LAB_STRICT_SHAPES": "1"}  # every observation held to its type
        return {**os.environ, **shapes, "LAB_TOPOLOGY": str(self.topology), **extra}

    def __call__(self, *args, check=True, timeout=900, **env) -> subprocess.CompletedProcess:
        """Run `lab ARGS` (extra environment variables as keywords), in a process of its own
        forked from this one (tests.e2e.forked: the same main(), without Python's start)."""
        result = forked.run([str(arg) for arg in args], self.env(**env), timeout)
        if check and result.returncode != 0:
            raise AssertionError(
                f"lab {' '.join(args)} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
            )
        assert "Traceback" not in result.stderr, result.stderr
        return result

    def ssh(self, host: str, command: str, check=True) -> str:
        """command's output on host, through OpenSSH with the lab's own client configuration,
        as `lab ssh HOST -- CMD` runs it (which writes that configuration when it is missing)."""
        config = LabState(self.name).ssh_config_file
        if not config.is_file():
            return self("ssh", host, "--", command, check=check).stdout
        result = subprocess.run(
            ["ssh", "-F", str(config), host, command],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=900,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"ssh {host} {command} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
            )
        return result.stdout


# Tests using these shared fixtures must sit in this xdist group: one worker owns each lab.
FIXTURE_GROUPS = {"provisioned_lab": "reference", "variants_lab": "variants", "lab": "lxc"}


def write_inventory(path: Path, servers: LabRunner, **port_overrides) -> Path:
    """An ssh provider inventory of another lab's hosts (reached with that lab's key as its
    user `lab`; a port per host can be given, e.g. a wrong one)."""
    key = f"/var/lib/webstack-lab/labs/{servers.name}/id_ed25519"
    hosts = {
        h: {"user": "lab", "key": key, "port": port_overrides.get(h, 22)} for h in servers.hosts
    }
    path.write_text(yaml.safe_dump({"hosts": hosts}))
    return path


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every end-to-end test names its lab's group, so that no two workers share a lab."""
    here = Path(__file__).parent
    for item in items:
        if here not in item.path.parents:
            continue
        mark = item.get_closest_marker("xdist_group")
        group = mark.args[0] if mark and mark.args else None
        if group is None:
            raise pytest.UsageError(
                f"{item.nodeid}: end-to-end tests need pytest.mark.xdist_group(LAB) in their "
                "pytestmark (one group per lab, see tests/conftest.py)"
            )
        for fixture, owner in FIXTURE_GROUPS.items():
            if fixture in getattr(item, "fixturenames", ()) and group != owner:
                raise pytest.UsageError(
                    f"{item.nodeid} uses {fixture}: its group must be {owner!r}, not {group!r}"
                )


def require_lab_prerequisites() -> None:
    """End-to-end tests fail loudly, never skip, when the machine cannot run them."""
    assert os.geteuid() == 0, "end-to-end tests need root (LXC containers)"
    missing = [t for t in ("lxc-start", "lxc-copy", "debootstrap", "nft") if not shutil.which(t)]
    assert not missing, f"end-to-end tests need {missing}: run .ci/run or apt-get install lxc"


@pytest.fixture(scope="session")
def topology_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("topologies")


@pytest.fixture(scope="module")
def lab(topology_dir):
    """A running lab named e2e on 192.168.57.0/24, destroyed afterwards even when tests fail."""
    require_lab_prerequisites()
    runner = LabRunner(write_topology(topology_dir, "e2e", 57))
    try:
        runner("up")
        yield runner
    finally:
        runner("destroy", check=False)


def lab_name_from(variable: str, default: str) -> tuple[str, int]:
    """A shared lab's name and third octet: default unless the variable says NAME:OCTET."""
    raw = os.environ.get(variable, default)
    name, _, octet = raw.partition(":")
    if not name or not octet.isdigit() or not 0 < int(octet) < 255:
        raise pytest.UsageError(f"{variable}={raw!r}: expected NAME:OCTET, e.g. {default}")
    return name, int(octet)


def reference_lab_name() -> tuple[str, int]:
    """The shared reference lab: e2e-web on 62 unless LAB_E2E_REFERENCE says NAME:OCTET."""
    return lab_name_from("LAB_E2E_REFERENCE", "e2e-web:62")


def exercises_lab(directory: Path) -> LabRunner:
    """The exercises group's lab: e2e-ex on 67 unless LAB_E2E_EXERCISES says NAME:OCTET."""
    return LabRunner(write_topology(directory, *lab_name_from("LAB_E2E_EXERCISES", "e2e-ex:67")))


def shared_lab(tmp_path_factory, name: str, octet: int):
    """A lab with the whole reference infrastructure, for one group's tests; destroyed after."""
    require_lab_prerequisites()
    runner = LabRunner(write_topology(tmp_path_factory.mktemp(name), name, octet))
    try:
        runner("up", "--provision")
        yield runner
    finally:
        runner("destroy", check=False)


@pytest.fixture(scope="session")
def provisioned_lab(tmp_path_factory):
    """A lab with the whole reference infrastructure (name e2e-web, 192.168.62.0/24; another
    name and third octet with LAB_E2E_REFERENCE=NAME:OCTET, e.g. to run beside the suite)."""
    yield from shared_lab(tmp_path_factory, *reference_lab_name())


@pytest.fixture(scope="session")
def variants_lab(tmp_path_factory):
    """The variants group's reference lab, so that it runs beside the reference group's: e2e-var
    on 192.168.63.0/24 unless LAB_E2E_VARIANTS says NAME:OCTET."""
    yield from shared_lab(tmp_path_factory, *lab_name_from("LAB_E2E_VARIANTS", "e2e-var:63"))


SUMMARY_LINE = re.compile(r"^\s*(\d+) changed(?:, \d+ host\(s\) failed)?\s*$", re.MULTILINE)


def changed_count(output: str) -> int:
    """The total on `lab provision`'s summary line ("N changed"), which must appear once."""
    totals = SUMMARY_LINE.findall(output)
    assert len(totals) == 1, f"expected one 'N changed' summary line in:\n{output}"
    return int(totals[0])


def lab_secret(runner: LabRunner, name: str) -> str:
    """A generated secret of the lab under test (read from its 0600 state file)."""
    path = Path("/var/lib/webstack-lab/labs") / runner.name / "secrets.json"
    return json.loads(path.read_text())[name]


def wait_until(predicate, timeout: float, interval: float = 0.2):
    """Poll predicate until it returns something truthy; fail after timeout seconds."""
    value = until(predicate, timeout, interval)
    if not value:
        raise AssertionError(f"condition not reached within {timeout} s")
    return value


@contextlib.contextmanager
def lab_with(tmp_path_factory, name: str, third_octet: int, *components: str):
    """A lab of its own with the base design and these components built; always destroyed."""
    require_lab_prerequisites()
    runner = LabRunner(write_topology(tmp_path_factory.mktemp(name), name, third_octet))
    try:
        runner("up", "--provision")
        for component in components:
            runner("provision", component)
        yield runner
    finally:
        runner("destroy", check=False)


def check_json(lab: LabRunner, *what: str) -> dict:
    """`lab check WHAT --json`, which must have run (passed or not)."""
    result = lab("check", *what, "--json", check=False)
    assert result.returncode in (0, 1), result.stderr
    return json.loads(result.stdout)


def assert_exercise_walk(lab: LabRunner, number: str) -> None:
    """`lab exercise start N` fails its checks, hints come, and `solve` passes them."""
    lab("exercise", "start", number, "--yes")
    before = lab("exercise", "check", number, check=False)
    assert before.returncode == 1, before.stdout
    assert "hint 1/" in lab("exercise", "hint", number, check=False).stdout
    lab("exercise", "solve", number, "--yes")
    after = lab("exercise", "check", number, check=False)
    assert after.returncode == 0, after.stdout


def haproxy_servers_down(lab) -> int:
    """How many servers HAProxy's runtime API shows DOWN on lb-01."""
    show = runtime_api("show stat", "/run/haproxy/admin.sock")
    rows = [line.split(",") for line in lab.ssh("lb-01", f"sudo sh -c {quote(show)}").splitlines()]
    return sum(1 for row in rows if len(row) > 17 and row[1] not in ("FRONTEND", "BACKEND")
               and row[17].startswith("DOWN"))  # fmt: skip


def by_id(report: dict) -> dict[str, dict]:
    return {c["id"]: c for c in report["checks"]}


def assert_base_design_passes(lab: LabRunner) -> dict:
    """A plain `lab check` scores the base design's 105 points (failures named when not)."""
    base = check_json(lab)
    failures = [(c["id"], c["evidence"]) for c in base["checks"] if c["status"] != "pass"]
    assert (base["score"], base["max_score"]) == (105, 105), failures
    return base
