"""The suite runs in parallel: pytest-xdist workers, one lab's tests (an xdist_group) per worker.

`python -m pytest` starts LAB_TEST_WORKERS workers (default 4) with `--dist loadgroup`; `-n N`
chooses another count, `-n 0` or `-p no:xdist` runs everything in one process. The options are
set here rather than in addopts so that the suite also runs without pytest-xdist.
"""

from __future__ import annotations

import os

import pytest

DEFAULT_WORKERS = 4  # on the 2-core CI machine: 23:17 for the suite, against 24:50 with three

# Seconds of each lab's tests on the 2-core CI machine, rounded from a four-worker CI run (the
# run's closing "seconds per worker and group" gives new figures); the heaviest groups are
# handed out first so that the workers finish close together. A group not listed (a new lab)
# counts as NEW_GROUP_SECONDS, the e2e budget; tests in no group come last and fill the gaps.
GROUP_SECONDS = {
    "grade": 1260,
    "variants": 1060,
    "reference": 940,
    "exercises": 760,  # with the walk through 01-06
    "monitoring": 340,
    "vagrant": 300,
    "firewall": 270,
    "ha": 190,
    "lxc": 110,
    "https": 80,
}
NEW_GROUP_SECONDS = 240


def worker_count() -> int:
    """LAB_TEST_WORKERS, else DEFAULT_WORKERS; one clear error for anything but a count."""
    raw = os.environ.get("LAB_TEST_WORKERS", str(DEFAULT_WORKERS))
    if not raw.isdigit():
        raise pytest.UsageError(f"LAB_TEST_WORKERS={raw!r}: expected a number of workers (0: none)")
    return int(raw)


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    """Default to parallel groups unless -n/--dist, --pdb or -p no:xdist says otherwise."""
    if not config.pluginmanager.has_plugin("xdist") or hasattr(config, "workerinput"):
        return
    if config.option.numprocesses is None and not config.option.usepdb:
        config.option.numprocesses = worker_count()
    if config.option.numprocesses and config.option.dist == "no":
        config.option.dist = "loadgroup"
        config.option.loadscopereorder = False  # pytest_collection_modifyitems orders groups


@pytest.hookimpl(optionalhook=True)  # an xdist hook: unknown when it is not installed
def pytest_configure_node(node) -> None:
    """Workers parse only the command line: tell them the distribution mode chosen above."""
    node.workerinput["lab_dist"] = node.config.option.dist


def pytest_configure(config: pytest.Config) -> None:
    workerinput = getattr(config, "workerinput", None)
    if workerinput and workerinput.get("lab_dist") == "loadgroup":
        config.option.loadgroup = True  # xdist then names each test's group in its node id


def require_group_ids(items: list[pytest.Item]) -> None:
    """xdist groups by a suffix it adds to node ids; a pytest that drops it would let two
    workers bring up the same lab (pytest-xdist#1386, pytest 9.2): refuse to run then."""
    lost = [i.nodeid for i in items if group_of(i) and not i.nodeid.endswith(f"@{group_of(i)}")]
    if lost:
        raise pytest.UsageError(
            f"pytest-xdist did not group {lost[0]} (this pytest drops --dist loadgroup's node "
            "ids): pip install -e '.[test]' for the pinned pytest, or run with -n 0"
        )


def group_of(item: pytest.Item) -> str | None:
    mark = item.get_closest_marker("xdist_group")
    if mark is None:
        return None
    return str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Heaviest group first, each group's tests together in their own order, then the rest;
    `slow` tests only with LAB_SLOW=1 (or `-m slow`)."""
    if not os.environ.get("LAB_SLOW") and "slow" not in (config.option.markexpr or ""):
        slow = [item for item in items if item.get_closest_marker("slow")]
        if slow:
            config.hook.pytest_deselected(items=slow)
            items[:] = [item for item in items if not item.get_closest_marker("slow")]
    if getattr(config.option, "loadgroup", False):
        require_group_ids(items)

    def heaviest_first(item: pytest.Item) -> tuple[int, str]:
        group = group_of(item)
        if group is None:
            return (0, "")
        return (-GROUP_SECONDS.get(group, NEW_GROUP_SECONDS), group)

    items.sort(key=heaviest_first)  # stable: the order inside a group is kept


SECONDS_BY_WORKER: dict[str, dict[str, float]] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """On the controller: add each test's time to its worker and group."""
    node = getattr(report, "node", None)
    if node is None:
        return
    group = report.nodeid.rpartition("@")[2] if "@" in report.nodeid else "no group"
    groups = SECONDS_BY_WORKER.setdefault(node.gateway.id, {})
    groups[group] = groups.get(group, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter) -> None:
    """Each worker's busy seconds by group: the figures GROUP_SECONDS is kept up to date from."""
    if not SECONDS_BY_WORKER:
        return
    terminalreporter.section("seconds per worker and group")
    for worker, groups in sorted(SECONDS_BY_WORKER.items()):
        parts = ", ".join(f"{g} {s:.0f}" for g, s in sorted(groups.items(), key=lambda i: -i[1]))
        terminalreporter.write_line(f"{worker}: {sum(groups.values()):.0f} s ({parts})")
