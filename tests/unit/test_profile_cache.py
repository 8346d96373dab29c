"""A grading profile (fresh-server) in the reference-state cache: built once, never stale."""

from __future__ import annotations

import json

import pytest

from lab.core.state import LabState
from lab.core.topology import parse, variant
from lab.grading import profile as grading_profile
from provision import snapshots
from tests.helpers import SlotProvider

FRESH = snapshots.HostProfile("fresh-server", "apt-get install -y ufw\n")


@pytest.fixture
def work(tmp_path, monkeypatch):
    """The cache in tmp_path; what was provisioned and which profiles were given, per lab."""
    monkeypatch.setenv("LAB_HOME", str(tmp_path))
    done = []
    monkeypatch.setattr(
        snapshots,
        "_provision",
        lambda topology, state, provider, names, progress, connect=None, taken_over=False: (
            done.append((topology.name, "provision", tuple(names))) if names else None
        ),
    )
    monkeypatch.setattr(
        snapshots,
        "give_profile",
        lambda provider, profile, connect=None: done.append(
            (provider.lab, "profile", profile.key_parts()["profile_script"][:8])
        ),
    )
    return done


def slot(tmp_path, octet: int):
    topology = parse(variant(f"hg-p{octet}", octet))
    state = LabState(topology.name, tmp_path)
    state.dir.mkdir(parents=True, exist_ok=True)
    provider = SlotProvider()
    provider.lab = topology.name
    return topology, state, provider


def bring(lab, names, profile=FRESH, share=True):
    topology, state, provider = lab
    return snapshots.bring_to_reference_state(
        topology, state, provider, names, None, share=share, profile=profile
    )


def entries():
    return [json.loads(p.read_text()) for p in snapshots.cache_dir().glob(f"*/{snapshots.META}")]


def test_the_profile_and_its_script_are_in_the_key():
    parts = {"format": "1", "base": "image@1", "code": "c", "topology": "t", "lab": "l"}
    plain = snapshots.cache_key(parts, ["web"])
    fresh = snapshots.cache_key({**parts, **FRESH.key_parts()}, ["web"])
    edited = snapshots.HostProfile(FRESH.name, FRESH.script + "ufw --force disable\n")
    assert fresh != plain, "a profile's state is not the components' state"
    assert snapshots.cache_key({**parts, **edited.key_parts()}, ["web"]) != fresh
    renamed = snapshots.HostProfile("other", FRESH.script)
    assert snapshots.cache_key({**parts, **renamed.key_parts()}, ["web"]) != fresh
    same = snapshots.HostProfile(FRESH.name, str(FRESH.script))
    assert snapshots.cache_key({**parts, **same.key_parts()}, ["web"]) == fresh


def test_the_fresh_server_profile_is_keyed_by_its_own_script():
    assert grading_profile.host_profile("lab") is None
    given = grading_profile.host_profile("fresh-server")
    assert given.name == "fresh-server" and given.script == grading_profile.FRESH_SERVER


def test_a_profile_over_no_components_is_built_once_and_taken_by_every_slot(tmp_path, work):
    first, second = slot(tmp_path, 241), slot(tmp_path, 242)
    key = bring(first, [])
    assert work == [("hg-p241", "profile", work[0][2])], "built once, on the bare image"
    assert first[2].restored == [{}]
    assert bring(second, []) == key and len(work) == 1, "the second slot gives no profile"
    assert second[2].restored == [{"web-01": [snapshots.cache_dir() / key / "web-01"]}]
    assert bring(first, []) == key and len(work) == 1, "and the first restores its own"
    assert [(m["components"], m["profile"]) for m in entries()] == [([], "fresh-server")]


def test_a_profile_over_given_components_is_restored_and_rebuilt_when_its_script_changes(
    tmp_path, work
):
    lab = slot(tmp_path, 241)
    key = bring(lab, ["web"], share=False)
    assert [step for _, step, _ in work] == ["provision", "profile"]
    metas = {m["key"]: m for m in entries()}
    components = metas[key]["parent"]
    assert components in metas and "profile" not in metas[components]
    assert bring(lab, ["web"], share=False) == key and len(work) == 2, "restored, nothing run"
    edited = snapshots.HostProfile(FRESH.name, FRESH.script + "true\n")
    newer = bring(lab, ["web"], profile=edited, share=False)
    assert newer != key and work[-1][1] == "profile" and len(work) == 3, "no old state reused"
    assert lab[2].restored[-1] == {"web-01": [snapshots.cache_dir() / components / "web-01"]}
    assert key not in {m["key"] for m in entries()}, "the old script's state is removed"


def test_the_components_alone_never_restore_a_state_with_a_profile(tmp_path, work):
    lab = slot(tmp_path, 241)
    with_profile = bring(lab, ["web"], share=False)
    plain = bring(lab, ["web"], profile=None, share=False)
    assert plain != with_profile and len(work) == 2, "the components' own state, restored"
    assert lab[2].restored[-1] == {"web-01": [snapshots.cache_dir() / plain / "web-01"]}
    assert snapshots.cached_components(lab[0], lab[2]) == [["web"]]
    bring(lab, ["web", "app"], profile=None, share=False)
    assert work[-1] == ("hg-p241", "provision", ("app",)), "built on the plain web state"
    assert lab[2].restored[-1] == {"web-01": [snapshots.cache_dir() / plain / "web-01"]}


def test_another_slot_takes_a_profile_over_components_and_gives_it_again(tmp_path, work):
    first, second = slot(tmp_path, 241), slot(tmp_path, 242)
    built = bring(first, ["web"])
    taken = bring(second, ["web"])
    assert taken != built
    assert work[2:] == [("hg-p242", "provision", ("web",)), ("hg-p242", "profile", work[1][2])]
    assert second[2].restored[0]["web-01"][0] == snapshots.cache_dir() / built / "web-01"
    assert bring(second, ["web"]) == taken and len(work) == 4, "then restored as its own"


class NoLayers:
    name, layers = "ssh", False

    def __init__(self, lab):
        self.lab = lab


def test_hosts_without_layers_are_given_the_profile_as_they_are(tmp_path, work):
    topology = parse(variant("hg-p243", 243))
    state = LabState(topology.name, tmp_path)
    snapshots.bring_to_reference_state(
        topology, state, NoLayers(topology.name), ["web"], None, profile=FRESH
    )
    assert [step for _, step, _ in work] == ["provision", "profile"]
    assert not snapshots.cache_dir().exists()


def test_a_lab_taking_over_a_same_shaped_build_keeps_its_own_secrets(tmp_path, monkeypatch):
    """The base design shared by labs of one shape: the second lab starts from the first's
    state, provisioned again, and every password it holds is its own, never the first's."""
    monkeypatch.setenv("LAB_HOME", str(tmp_path))
    provisioned = []

    def provision(topology, state, provider, names, progress, connect=None, taken_over=False):
        for name in ("db_read_password", "db_write_password", "db_replication_password"):
            state.secret(name)  # what provisioning asks for, made by the lab on first use
        provisioned.append((topology.name, tuple(names), taken_over))

    monkeypatch.setattr(snapshots, "_provision", provision)
    first, second = slot(tmp_path, 243), slot(tmp_path, 244)
    names = ["database", "app", "web", "lb", "dns"]
    built = bring(first, names, profile=None)
    taken = bring(second, names, profile=None)
    # the second lab's provisioning knows the hosts hold another lab's state (its database
    # logs go: they hold the first lab's passwords)
    assert provisioned == [("hg-p243", tuple(names), False), ("hg-p244", tuple(names), True)]
    assert second[2].restored[0] == {"web-01": [snapshots.cache_dir() / built / "web-01"]}
    mine = json.loads(second[1].secrets_file.read_text())
    theirs = json.loads(first[1].secrets_file.read_text())
    assert set(mine) == set(theirs) and not set(mine.values()) & set(theirs.values())
    saved = {m["key"]: m for m in entries()}
    assert saved[taken]["secrets"] == mine and saved[taken]["parent"] == built
    assert snapshots.taken_from(*second[::2], names) == "hg-p243"  # what `lab up` says
    assert snapshots.taken_from(*first[::2], names) is None
    assert bring(second, names, profile=None) == taken  # its own entry from now on
    assert json.loads(second[1].secrets_file.read_text()) == mine
