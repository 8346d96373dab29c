"""Exercises, hints, cache keys and snapshot bookkeeping: the logic without hosts."""

from __future__ import annotations

import io
import json
import re
from types import SimpleNamespace

import pytest
import yaml
from rich.console import Console

from checks import CATALOGUE
from checks.base import Report, Status
from lab.cli.commands import exercise as command
from lab.cli.render import exercises as exercises_view
from lab.core.errors import ExitCode, LabError
from lab.core.state import LabState
from lab.core.topology import variant
from lab.course import exercises
from provision import COMPONENTS, snapshots
from tests.helpers import SlotProvider, judge, recorded


@pytest.fixture
def topology():
    from lab.core.topology import parse

    return parse(variant("unit-ex", 99))


def test_every_graded_check_belongs_to_exactly_one_exercise():
    graded = [c for e in exercises.all_exercises() for c in exercises.check_ids(e)]
    assert sorted(graded) == sorted(CATALOGUE), "each check is graded by one exercise"
    assert all(c in COMPONENTS for w in exercises.WORK.values() for c in w.components)
    applied = [c for w in exercises.WORK.values() for c in w.components]
    assert sorted(applied) == sorted(COMPONENTS), "each component is one exercise's solution"


def test_the_fixes_of_the_designs_issues_start_from_the_base_design():
    base = ("web", "app", "database", "lb", "dns")
    for number, work in exercises.WORK.items():
        if work.extra:
            assert exercises.starting_components(exercises.find(number)) == base


def test_a_check_is_graded_no_earlier_than_what_it_needs():
    exercise_of = {c: n for n, w in exercises.WORK.items() for c in w.checks}
    for check_id, number in exercise_of.items():
        for need in CATALOGUE[check_id].needs:
            assert exercise_of[need] <= number, f"{check_id} ({number}) needs {need}"


def test_starting_points_are_the_earlier_exercises_solutions():
    find = exercises.find
    assert exercises.starting_components(find("01")) == ()
    assert exercises.starting_components(find("02")) == ()
    assert exercises.starting_components(find("03")) == ("web",)
    assert exercises.starting_components(find("05")) == ("web", "app", "database")
    assert exercises.starting_components(find("07")) == ("web", "app", "database", "lb", "dns")


def test_every_check_has_a_hint_ladder_from_a_nudge_to_the_exact_line(topology):
    data = yaml.safe_load(command.HINTS.read_text())
    assert sorted(k for k in data if "/" not in k) == sorted(CATALOGUE)
    cases = [k.split("/", 1) for k in data if "/" in k]  # CHECK/CASE: one failure's own ladder
    assert all(check_id in CATALOGUE for check_id, _ in cases)
    for check_id, case in [*((c, "") for c in CATALOGUE), *cases]:
        ladder = command.hint_ladder(check_id, topology, case=case)
        assert len(ladder) >= 3, check_id
        assert len(set(ladder)) == len(ladder), f"{check_id}: a rung repeats"
        assert not any(re.search(r"@\w+@", rung) for rung in ladder), f"{check_id}: {ladder}"
    assert "192.168.99.12" in " ".join(command.hint_ladder("lb.round-robin", topology))


def test_the_hint_follows_the_failure_the_evidence_names(topology, tmp_path):
    """Exercise 04's dead end: a replica loaded with a dump but never told to read its grant
    tables. The evidence (recorded) names the case, and its ladder leads to FLUSH PRIVILEGES."""
    observation = recorded("app.database-accounts-not-loaded")
    check = CATALOGUE["app.database"]()
    verdict = judge("app.database", observation)
    failing = check.result(Status.FAIL, verdict.evidence, 0.1, verdict.hint, verdict.case)
    general = command.hint_ladder("app.database", topology)
    own = command.hint_ladder("app.database", topology, case=failing.case)
    assert own != general and "FLUSH PRIVILEGES" in own[-1] and "FLUSH" not in " ".join(general)
    assert "http://192.168.99.12/" in own[-1]  # the replica's address, from the topology
    assert command.hint_ladder("app.database", topology, case="unknown") == general

    state = LabState("unit-ex", tmp_path)
    state.save(provider="lxc")
    out = io.StringIO()
    lab = SimpleNamespace(
        state=state, topology=topology, console=Console(file=out, width=1000, color_system=None)
    )
    report = Report("unit-ex", (failing,), 0.1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(command, "grade", lambda lab, exercise, *by: report)
        for _ in range(3):
            assert command.hint(lab, exercises.find("04")) == ExitCode.FAILED
    shown = out.getvalue()
    assert "web-02: GET /api/guestbook answered HTTP 500" in shown
    assert "Access denied for user 'webstack_read'@'localhost'" in shown
    assert [f"hint {n}/3: {own[n - 1]}" in shown for n in (1, 2, 3)] == [True] * 3
    assert command.load_progress(lab)["hints"] == {"app.database/accounts-not-loaded": 3}
    # a host's words are shown as they are, never read as markup
    said = "webstack-app.service logged: [2026-12-06] [ERROR] [/bold] Exception on /api/guestbook"
    report = Report("unit-ex", (check.result(Status.FAIL, said),), 0.1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(command, "grade", lambda lab, exercise, *by: report)
        command.hint(lab, exercises.find("04"))
    assert said in out.getvalue()


def test_the_cache_key_changes_with_every_part_and_not_with_order():
    parts = {"format": "1", "base": "img@1", "code": "c", "topology": "t", "lab": "x"}
    key = snapshots.cache_key(parts, ["web", "app"])
    assert key == snapshots.cache_key(parts, ["app", "web"])
    for field in parts:
        assert snapshots.cache_key({**parts, field: "other"}, ["web", "app"]) != key
    assert snapshots.cache_key(parts, ["web"]) != key


def test_the_code_hash_follows_the_files(tmp_path):
    (tmp_path / "a.py").write_text("one")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "a.pyc").write_text("noise")
    first = snapshots.tree_hash([tmp_path])
    (tmp_path / "__pycache__" / "a.pyc").write_text("other noise")
    assert snapshots.tree_hash([tmp_path]) == first
    (tmp_path / "a.py").write_text("two")
    assert snapshots.tree_hash([tmp_path]) != first


def test_components_are_put_in_the_reference_order_and_unknown_ones_refused():
    assert snapshots.ordered(["web", "database", "app"]) == ["database", "app", "web"]
    with pytest.raises(LabError, match="unknown component 'nginx'"):
        snapshots.ordered(["nginx"])


def test_a_warm_cache_restores_and_a_stale_one_is_never_used(tmp_path, monkeypatch, topology):
    monkeypatch.setenv("LAB_HOME", str(tmp_path))
    provisioned = []
    monkeypatch.setattr(
        snapshots,
        "_provision",
        lambda t, s, p, names, progress, connect=None, taken_over=False: provisioned.append(names),
    )
    state, provider = LabState("unit-ex", tmp_path), SlotProvider()
    state.dir.mkdir(parents=True)
    state.secret("db_read_password")
    key = snapshots.bring_to_reference_state(topology, state, provider, ["web"], None)
    assert provisioned == [["web"]] and provider.restored == [{}]
    again = snapshots.bring_to_reference_state(topology, state, provider, ["web"], None)
    assert again == key and provisioned == [["web"]], "a warm start provisions nothing"
    assert provider.restored[-1] == {"web-01": [tmp_path / "cache/reference" / key / "web-01"]}
    bigger = snapshots.bring_to_reference_state(topology, state, provider, ["web", "app"], None)
    assert provisioned[-1] == ["app"], "built on the largest cached subset"
    monkeypatch.setattr(provider, "base_id", lambda: "image@2")  # the image was rebuilt
    fresh = snapshots.bring_to_reference_state(topology, state, provider, ["web"], None)
    assert fresh != key and provisioned[-1] == ["web"]
    left = {p.name for p in (tmp_path / "cache/reference").iterdir()}
    assert key not in left and bigger not in left and fresh in left, "stale entries pruned"


def test_a_stale_entry_a_host_still_uses_is_kept(tmp_path, monkeypatch, topology):
    monkeypatch.setenv("LAB_HOME", str(tmp_path))
    monkeypatch.setattr(snapshots, "_provision", lambda *args, **kwargs: None)
    state, provider = LabState("unit-ex", tmp_path), SlotProvider()
    state.dir.mkdir(parents=True)
    key = snapshots.bring_to_reference_state(topology, state, provider, ["web"], None)
    provider.in_use = {tmp_path / "cache/reference" / key / "web-01"}
    monkeypatch.setattr(provider, "base_id", lambda: "image@2")
    snapshots.bring_to_reference_state(topology, state, provider, ["web"], None)
    assert (tmp_path / "cache/reference" / key).is_dir()


def test_snapshot_names_are_checked():
    assert snapshots.check_name("before-lb.1") == "before-lb.1"
    for bad in ("", "../x", "a b", "-x", "x" * 70):
        with pytest.raises(LabError, match="invalid snapshot name"):
            snapshots.check_name(bad)


def test_the_ssh_provider_says_snapshots_are_not_supported(topology, tmp_path):
    from lab.providers.ssh import SshProvider

    provider = SshProvider(topology, LabState("unit-ex", tmp_path))
    with pytest.raises(LabError, match="not supported with the ssh provider") as caught:
        provider.snapshot_save("x", tmp_path, None)
    assert caught.value.exit_code == 2


def test_the_progress_table_shows_last_results():
    console = Console(file=io.StringIO(), width=120, color_system=None)
    at = "2026-12-06T10:00:00+00:00"
    record = {
        "checks": {
            "web.nginx": {"status": "pass", "at": at},
            "web.served-by": {"status": "pass", "at": at},
            "web.static": {"status": "fail", "at": at},
        }
    }
    console.print(exercises_view.progress_table(exercises.all_exercises(), record))
    text = console.file.getvalue()
    assert "✓ web.nginx" in text and "✗ web.static" in text
    row_02 = next(line for line in text.splitlines() if "│ 02" in line)
    assert "done" in row_02
    assert "not graded" in text


def test_confirmation_is_refused_without_a_terminal(monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    lab = SimpleNamespace(args=SimpleNamespace(yes=False))
    with pytest.raises(LabError, match="has changes: not without --yes"):
        command.confirm(lab, "lab 'x' has changes", "Throw them away?")
    command.confirm(SimpleNamespace(args=SimpleNamespace(yes=True)), "x", "y?")


def test_progress_is_kept_per_lab(tmp_path):
    state = LabState("unit-ex", tmp_path)
    state.save(provider="lxc")
    lab = SimpleNamespace(state=state)
    command.save_progress(lab, {"hints": {"web.nginx": 2}})
    assert command.load_progress(lab) == {"hints": {"web.nginx": 2}}
    assert json.loads((state.dir / command.PROGRESS).read_text())["hints"]["web.nginx"] == 2
    assert command.load_progress(SimpleNamespace(state=LabState("other", tmp_path))) == {}


def test_an_exercise_the_hosts_cannot_hold_is_refused_before_anything_changes(topology):
    """Exercise 11 (a second balancer) on the three-host lab: one clear line, the four-host
    topology's command as the hint; on lab-ha.yml's hosts it goes ahead."""
    from lab.core import resources
    from lab.core.topology import parse

    eleven = exercises.find("11")
    with pytest.raises(LabError) as refused:
        command.require_topology(SimpleNamespace(topology=topology), eleven)
    assert "second load balancer" in str(refused.value)
    assert "lab-ha.yml exercise start 11" in refused.value.hint
    four = parse(variant("unit-ha", 98, resources.topology_file("lab-ha.yml")))
    command.require_topology(SimpleNamespace(topology=four), eleven)
    for number in ("05", "08", "09", "10"):
        command.require_topology(SimpleNamespace(topology=topology), exercises.find(number))


def _frozen(home, name: str, stamp: int) -> dict:
    """A snapshot saved as a layer (the LXC provider's way): its meta and its layer's files."""
    layer = home / "snapshots" / "unit-ex" / name / f"layer-{stamp}" / "web-01"
    layer.mkdir(parents=True)
    return {"web-01": [str(layer), str(home / "cache/reference/k/web-01")]}


def test_a_snapshot_layer_a_host_runs_on_stays_until_it_does_not(tmp_path, monkeypatch):
    """Replaced or deleted, a snapshot's layer stays while a host starts from it; the next
    save, delete or destroy removes it. A snapshot saved as copies is never swept."""
    monkeypatch.setenv("LAB_HOME", str(tmp_path))
    state, provider = LabState("unit-ex", tmp_path), SlotProvider()
    state.dir.mkdir(parents=True)
    (state.dir / "state.json").write_text("{}")
    stamps = iter([1, 2])
    provider.snapshot_save = lambda name, directory, progress: _frozen(tmp_path, name, next(stamps))
    provider.snapshot_delete = lambda name, directory: None
    first = tmp_path / "snapshots/unit-ex/risky/layer-1"
    snapshots.save_snapshot(state, provider, "risky", None)
    provider.in_use = {first / "web-01"}  # the hosts go on from the snapshot's layer
    snapshots.save_snapshot(state, provider, "risky", None, replace=True)
    assert first.is_dir(), "a layer the hosts run on was removed"
    copies = tmp_path / "snapshots/unit-ex/copied"
    (copies / "web-01").mkdir(parents=True)
    (copies / "meta.json").write_text('{"name": "copied", "layers": {"web-01": []}}')
    provider.in_use = set()
    snapshots.sweep(snapshots.snapshots_dir("unit-ex"), provider)
    assert not first.exists() and (tmp_path / "snapshots/unit-ex/risky/layer-2").is_dir()
    assert (copies / "web-01").is_dir()
    provider.in_use = {tmp_path / "snapshots/unit-ex/risky/layer-2/web-01"}
    snapshots.delete_snapshot(state, provider, "risky")
    assert [s.name for s in snapshots.list_snapshots("unit-ex")] == ["copied"]
    assert (tmp_path / "snapshots/unit-ex/risky/layer-2/web-01").is_dir()
    provider.in_use = set()
    snapshots.sweep(snapshots.snapshots_dir("unit-ex"), provider)
    assert not (tmp_path / "snapshots/unit-ex/risky").exists()
    snapshots.delete_snapshot(state, provider, "copied")
    assert not (tmp_path / "snapshots/unit-ex").exists()
