"""Fault scenarios: the registry, the summary arithmetic on timelines, the marker, the CLI."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from rich.console import Console

from lab.cli.app import main
from lab.cli.render import THEME
from lab.cli.render.faults import live_view, scenario_list, summary_view
from lab.core.errors import LabError
from lab.core.state import LabState
from lab.faults import SCENARIOS, find
from lab.faults.runner import Frame, Marker
from lab.faults.timeline import (
    BalancerView,
    ReplicaView,
    Request,
    caught_up_after,
    detected_at,
    per_second,
    recovered_at,
    summarize,
)
from lab.faults.watch import count_sql


def ok(at, served="web-02", took=0.01, write=False):
    return Request(at, took, 201 if write else 200, served, write)


def lost(at, write=False):
    return Request(at, 3.0, 0, "", write)


# -- the registry ------------------------------------------------------------------------------
ROOT = Path(__file__).resolve().parents[2]
DOCUMENTED = re.findall(r"^### ([a-z0-9-]+):", (ROOT / "docs" / "faults.md").read_text(), re.M)


class Recorder:
    """The hands a scenario acts through (SSH and the machine), recording what it asks."""

    def __init__(self, calls: list, answers: dict[str, str] | None = None):
        self.calls, self.answers = calls, answers or {}

    def balancers(self) -> list[str]:
        return ["lb-01"]

    def sh(self, host, command, sudo=False, timeout=None):
        self.calls.append(("sh", host))
        return next((a for start, a in self.answers.items() if command.startswith(start)), "")

    def __getattr__(self, name):  # the machine: stop, start, nft, nft_remove, reset_connections
        return lambda host, *args: self.calls.append((name, host))


@pytest.fixture
def context(monkeypatch):
    """A Context on lab.yml whose SSH and machine record each call: (context, calls)."""
    from lab.core.topology import load
    from lab.faults import scenarios

    monkeypatch.setattr(scenarios, "wait_for_ssh", lambda spec, deadline: None)
    master = {"master": {"pid": 4242, "name": "gunicorn"}}
    monkeypatch.setattr(scenarios.probes, "application", lambda live, host: master)
    calls: list = []
    answers = {"ps -o unit=": "guestbook.service\n", "ps -o uid=": "105\n"}
    live, machine = Recorder(calls, answers), Recorder(calls)
    topology = load(ROOT / "lab.yml")
    return scenarios.Context(topology, live, machine, dict.fromkeys(topology.names)), calls


def test_the_docs_describe_every_scenario_in_the_registrys_order():
    assert list(SCENARIOS) == DOCUMENTED


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_a_scenario_breaks_and_restores_the_same_host_twice_over(name, context):
    """Its plan survives the state file; restore undoes inflict on the host it broke, twice."""
    ctx, calls = context
    scenario = SCENARIOS[name]
    plan = json.loads(json.dumps(scenario.prepare(ctx)))
    calls.clear()
    scenario.inflict(ctx, plan)
    broken = {host for _, host in calls}
    calls.clear()
    scenario.restore(ctx, plan)
    scenario.restore(ctx, plan)
    assert len(broken) == 1 and {host for _, host in calls} == broken, calls
    if scenario.target:  # the web server HAProxy should take out is the one it breaks
        assert broken == {scenario.target}
    if scenario.stops:
        assert broken == {ctx.host(scenario.stops)}
    if not scenario.machine:  # over SSH alone, on any provider
        assert {kind for kind, _ in calls} == {"sh"}
    assert "restore" in scenario.does, "does says how the fault is undone"


def test_targets_and_writes():
    targets = {name: s.target for name, s in SCENARIOS.items()}
    assert targets["web-01-down"] == targets["app-01"] == "web-01"
    assert targets["web-02-nginx"] == targets["slow-web-02"] == "web-02"
    assert targets["lb-01-down"] is targets["primary-down"] is None
    assert {n for n, s in SCENARIOS.items() if s.writes} == {"primary-down", "replication-cut"}
    assert {n for n, s in SCENARIOS.items() if s.stops} == {"web-01-down", "lb-01-down"}


def test_unknown_scenario_is_one_line_listing_the_known_ones():
    with pytest.raises(LabError) as caught:
        find("web-03-down")
    assert str(caught.value).startswith("unknown scenario 'web-03-down'; scenarios: web-01-down")


# -- summary arithmetic ------------------------------------------------------------------------
def test_detection_is_the_first_view_without_the_target_up_after_the_fault_began():
    views = [
        BalancerView(-0.5, {"web-01": "DOWN", "web-02": "UP"}),  # before: not counted
        BalancerView(0.5, {"web-01": "UP", "web-02": "UP"}),
        BalancerView(1.0, {}, note="stats socket did not answer"),
        BalancerView(1.5, {"web-01": "UP 1/2", "web-02": "UP"}),  # going down: still in
        BalancerView(2.04, {"web-01": "DOWN", "web-02": "UP"}),
        BalancerView(2.5, {"web-01": "DOWN", "web-02": "UP"}),
    ]
    assert detected_at(views, "web-01") == 2.0
    assert detected_at(views, "web-02") is None  # never noticed
    assert detected_at(views, None) is None  # nothing to notice


def test_recovery_is_the_first_success_after_the_last_failure():
    requests = [lost(-0.2), ok(0.1), lost(0.3), ok(0.4), lost(1.25), ok(1.32), ok(2.0)]
    assert recovered_at(requests) == 1.3
    assert recovered_at([ok(0.0), ok(1.0), lost(-1.0)]) == 0.0  # nothing failed in the fault
    assert recovered_at([ok(0.1), lost(2.0)]) is None  # never came back


def test_recovery_of_writes_is_a_write_that_succeeds_not_a_read_beside_them():
    # the primary down: reads go on, writes fail until it is back
    requests = [ok(0.2), lost(0.5, write=True), ok(1.0), lost(1.9, write=True), ok(2.0)]
    assert recovered_at([*requests, ok(2.3, write=True)]) == 2.3
    assert recovered_at(requests) is None  # no write came back


def test_recovery_orders_requests_by_when_they_were_sent():
    # a slow request sent early finishes last: it is not the "last failure"
    requests = [ok(2.0), lost(0.5), ok(0.6)]
    assert recovered_at(requests) == 0.6


def test_catch_up_counts_from_the_restore():
    views = [
        ReplicaView(1.0, "Yes", "Yes", 0, 0),
        ReplicaView(3.0, "Connecting", "Yes", None, 7),
        ReplicaView(8.2, "Yes", "Yes", 0, 3),
        ReplicaView(8.9, "Yes", "Yes", 0, 0),
    ]
    assert caught_up_after(views, 8.0) == 0.9
    assert caught_up_after(views[:3], 8.0) is None


def test_per_second_buckets_only_the_fault_and_after():
    buckets = per_second([lost(-0.5), ok(0.0), lost(0.99), ok(1.0), ok(2.5)])
    assert buckets == [
        {"second": 0, "requests": 2, "succeeded": 1},
        {"second": 1, "requests": 1, "succeeded": 1},
        {"second": 2, "requests": 1, "succeeded": 1},
    ]


def test_summary_of_a_server_going_down():
    requests = [ok(t / 10, "web-01" if t % 2 else "web-02") for t in range(-5, 0)]
    requests += [lost(0.1), ok(0.2), lost(0.3), ok(0.4), lost(1.9), ok(2.0), ok(2.1)]
    requests += [ok(4.0 + t / 10) for t in range(10)]  # sent after the restore at 4.0
    views = [BalancerView(t / 2, {"web-01": "UP" if t < 4 else "DOWN"}) for t in range(10)]
    summary = summarize("web-01-down", 4.0, "web-01", requests, views, [])
    assert (summary.during.requests, summary.during.succeeded, summary.during.failed) == (7, 4, 3)
    assert summary.seconds_to_detect == 2.0
    assert summary.seconds_to_recover == 2.0
    assert summary.served == {"web-02": 4}
    assert summary.latency_ms == {"web-02": 10.0}
    assert summary.replica_behind_max is None and summary.seconds_to_catch_up is None
    record = summary.as_dict()
    for key in ("scenario", "requests", "succeeded", "failed"):
        assert key in record
    assert record["seconds_to_detect"] == 2.0 and record["seconds_to_recover"] == 2.0
    json.dumps(record)  # one JSON object


def test_summary_counts_reads_and_writes_apart():
    requests = [ok(0.1), ok(0.2), lost(0.3, write=True), ok(0.4), lost(0.5, write=True)]
    requests += [ok(5.0, write=True)]  # after the restore: writes came back
    summary = summarize("primary-down", 5.0, None, requests, [], [])
    assert summary.reads.as_dict() == {"requests": 3, "succeeded": 3, "failed": 0}
    assert summary.writes.as_dict() == {"requests": 2, "succeeded": 0, "failed": 2}
    assert summary.seconds_to_detect is None
    assert summary.seconds_to_recover == 5.0


def test_counts_start_when_the_fault_holds():
    requests = [ok(-0.1), ok(0.1), ok(0.3), lost(0.5), lost(1.0), ok(9.0)]
    summary = summarize("lb-01-down", 8.0, None, requests, [], [], in_place=0.4)
    assert summary.during.as_dict() == {"requests": 2, "succeeded": 0, "failed": 2}
    record = summary.as_dict()
    assert record["in_place"] == 0.4
    assert record["outside_the_fault"]["sent_before_it_held"] == {
        "requests": 2,
        "succeeded": 2,
        "failed": 0,
    }
    assert summary.seconds_to_recover == 9.0


def test_a_request_answered_only_after_the_restore_is_not_a_success_of_the_fault():
    """lb-01 down for 8 s: a SYN sent at 6.5 is retried until lb-01 is back, and answered."""
    retried = [ok(6.5, took=1.8), ok(7.0, took=1.2)]
    summary = summarize("lb-01-down", 8.0, None, [lost(1.0), *retried, ok(7.9)], [], [])
    assert summary.during.as_dict() == {"requests": 2, "succeeded": 1, "failed": 1}
    assert summary.late.as_dict() == {"requests": 2, "succeeded": 2, "failed": 0}
    assert summary.served == {"web-02": 1}
    words = " ".join(render(summary_view(summary)).replace("│", " ").split())
    assert "0 sent while the fault was put in place, 2 answered only after the" in words


def test_a_write_is_ok_only_when_created():
    assert not Request(0, 0.1, 200, "web-01", write=True).ok
    assert Request(0, 0.1, 201, "web-01", write=True).ok
    assert not Request(0, 0.1, 503, "web-01").ok


def test_summary_of_a_replica_falling_behind():
    views = [
        ReplicaView(0.5, "Yes", "Yes", 0, 0),
        ReplicaView(2.0, "Connecting", "Yes", None, 4),
        ReplicaView(6.0, "Connecting", "Yes", None, 12),
        ReplicaView(8.5, "Yes", "Yes", 0, 0),
    ]
    summary = summarize("replication-cut", 8.0, None, [ok(1.0)], [], views)
    assert summary.replica_behind_max == 12
    assert summary.seconds_to_catch_up == 0.5


# -- the marker and the views -----------------------------------------------------------------
def test_marker_round_trip(tmp_path):
    marker = Marker(LabState("m", home=tmp_path))
    assert marker.load() is None
    marker.save({"scenario": "app-01", "plan": {"host": "web-01", "unit": "x.service"}})
    assert marker.load()["plan"]["unit"] == "x.service"
    assert oct(marker.path.stat().st_mode & 0o777) == "0o600"
    marker.clear()
    assert marker.load() is None


def render(renderable) -> str:
    console = Console(file=io.StringIO(), width=100, theme=THEME)
    console.print(renderable)
    return console.file.getvalue()


def test_live_view_shows_traffic_servers_balancer_and_replica():
    frame = Frame(
        "web-01-down",
        "fault",
        3.0,
        8.0,
        [ok(2.1), ok(2.5, "web-01"), lost(2.7), ok(0.5)],
        BalancerView(2.9, {"web-01": "DOWN", "web-02": "UP"}),
        ReplicaView(2.5, "Connecting", "Yes", None, 2, "error reconnecting"),
    )
    text = render(live_view(frame))
    assert "3 of 8 s" in text
    assert "3 req/s, 2 ok, 1 failed" in text
    assert "4 requests, 3 ok, 1 failed" in text
    assert "web-01 1, web-02 1" in text
    assert "web-01 DOWN, web-02 UP" in text
    assert "IO Connecting, SQL Yes" in text and "missing 2 entries" in text


def test_summary_view_and_list():
    summary = summarize("lb-01-down", 8.0, None, [lost(0.5), ok(9.0)], [], [])
    text = render(summary_view(summary))
    assert "1 sent, 0 succeeded, 1 lost" in text
    assert "not applicable" in text and "9.0 s" in text
    listing = render(scenario_list())
    assert [listing.index(name) for name in DOCUMENTED] == sorted(map(listing.index, DOCUMENTED))


def test_count_sql_quotes_names_and_prefix():
    sql = count_sql("app.guest`book.message", "lab-fault-ab12-")
    assert sql == (
        "SELECT COUNT(*) FROM `app`.`guest``book` WHERE `message` LIKE 'lab-fault-ab12-%'"
    )


# -- the command ------------------------------------------------------------------------------
@pytest.fixture
def fault(tmp_path, monkeypatch, capsys):
    """`lab fault ARGS` in this process: (exit code, stdout, stderr)."""
    monkeypatch.setenv("LAB_HOME", str(tmp_path))
    monkeypatch.delenv("LAB_TOPOLOGY", raising=False)

    def run(*args):
        code = main(["fault", *args])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def test_cli_bad_input_is_one_line_and_exit_2(fault):
    for args, text in (
        (["web-03-down"], "error: unknown scenario 'web-03-down'; scenarios: web-01-down"),
        (["app-01", "--seconds", "0"], "error: --seconds must be more than 0"),
        (["app-01", "--seconds", "5"], "is not up"),
        ([], "error: name a scenario"),
    ):
        code, _, err = fault(*args)
        assert code == 2, args
        assert text in err and "Traceback" not in err


def test_cli_list(fault):
    code, out, _ = fault("--list")
    assert code == 0
    assert [out.index(name) for name in DOCUMENTED] == sorted(map(out.index, DOCUMENTED))


def test_docs_page_has_a_section_for_every_scenario():
    page = (ROOT / "docs" / "faults.md").read_text()
    for name in SCENARIOS:
        assert f"### {name}:" in page and f"lab fault {name}" in page, name
