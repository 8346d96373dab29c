"""Two labs on one machine at once: what one lab removes or needs while another works."""

from __future__ import annotations

import json
import os

from lab.providers import aptcache, lxcnet
from provision import snapshots
from tests.helpers import SlotProvider


def test_the_inotify_limit_is_raised_for_many_containers_and_never_lowered(tmp_path):
    limit = tmp_path / "max_user_instances"
    limit.write_text("128\n")
    lxcnet.ensure_inotify_instances(limit)
    assert int(limit.read_text()) == lxcnet.MIN_INOTIFY_INSTANCES
    limit.write_text("1048576\n")
    lxcnet.ensure_inotify_instances(limit)
    assert limit.read_text() == "1048576\n"
    lxcnet.ensure_inotify_instances(tmp_path / "absent")  # no /proc: nothing to do


def test_an_apt_cache_is_seeded_from_a_sibling_whose_files_go_meanwhile(tmp_path, monkeypatch):
    sibling = tmp_path / "other-web-01"
    for part in aptcache.PARTS:
        (sibling / part).mkdir(parents=True)
    for name in ("nginx.deb", "gone.deb"):
        (sibling / "archives" / name).write_bytes(b"deb")
    for name in (SUITE + "_InRelease", SUITE + "_main_binary-amd64_Packages"):
        (sibling / "lists" / name).write_text("lists")
    link = os.link

    def link_unless_gone(source, target):
        if source.name == "gone.deb":  # listed, then removed by the other lab's apt
            raise FileNotFoundError(source)
        link(source, target)

    monkeypatch.setattr(os, "link", link_unless_gone)
    cache = aptcache.host_cache(tmp_path, "mine-web-01", "web-01")
    assert sorted(p.name for p in (cache / "archives").iterdir()) == ["nginx.deb"]
    assert (cache / "lists" / f"{SUITE}_main_binary-amd64_Packages").read_text() == "lists"


SUITE = "deb.debian.org_debian_dists_bookworm"


def test_lists_copied_while_the_other_labs_apt_rewrote_them_are_not_taken(tmp_path, monkeypatch):
    """A sibling's lists without a suite's Packages (its apt-get update halfway): a host
    seeded so found no python3.11 at all. Taken again, then the image's own lists."""
    sibling, image = tmp_path / "other-web-01", tmp_path / "image-lists"
    for part in aptcache.PARTS:
        (sibling / part).mkdir(parents=True)
    (sibling / "lists" / f"{SUITE}_InRelease").write_text("new")  # its Packages not yet there
    image.mkdir()
    for name in (f"{SUITE}_InRelease", f"{SUITE}_main_binary-amd64_Packages"):
        (image / name).write_text("image")
    monkeypatch.setattr(aptcache, "LIST_WAIT", 0)
    cache = aptcache.host_cache(tmp_path, "mine-web-01", "web-01", image)
    assert {p.read_text() for p in (cache / "lists").iterdir()} == {"image"}
    assert aptcache.whole([p.name for p in (cache / "lists").iterdir()])
    assert not aptcache.whole([f"{SUITE}_InRelease"]) and not aptcache.whole([])
    # a suite gone altogether, InRelease and Packages (seen in a cold CI run): the image's
    # lists say which suites there are
    security = "deb.debian.org_debian-security_dists_bookworm-security"
    copied = [f"{security}_InRelease", f"{security}_main_binary-amd64_Packages"]
    assert aptcache.whole(copied) and not aptcache.whole(copied, {SUITE, security})


class NoLayers:
    def layers_in_use(self):
        return set()


def test_the_reference_cache_skips_entries_another_lab_removes_while_it_reads(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("LAB_HOME", str(tmp_path))
    parts = {"lab": "mine", "base": "image@1"}
    kept = snapshots.cache_dir() / "k1"
    kept.mkdir(parents=True)
    (kept / snapshots.META).write_text(json.dumps({**parts, "key": "k1", "components": []}))
    removed = snapshots.cache_dir() / "k0"  # listed, then removed by the other lab's prune
    monkeypatch.setattr(snapshots, "_dirs", lambda: [removed, kept])
    assert list(snapshots._entries(parts)) == ["k1"]
    gone_snapshot = tmp_path / "snapshots" / "other" / "s1" / snapshots.META
    gone_snapshot.parent.mkdir(parents=True)
    os.symlink(tmp_path / "deleted.json", gone_snapshot)  # seen by the glob, then gone
    assert snapshots.prune({**parts, "base": "image@2"}, NoLayers()) == ["k1"]


def test_grading_slots_side_by_side_build_a_given_state_once(tmp_path, monkeypatch):
    """Two slots of one assignment with a cold cache: the first builds while the second waits,
    then the second takes the state over and provisions it again for its own addresses."""
    import threading
    import time

    from lab.core.state import LabState
    from lab.core.topology import parse, variant

    monkeypatch.setenv("LAB_HOME", str(tmp_path))
    runs, lock = [], threading.Lock()

    def provision(topology, state, provider, names, progress, connect=None, taken_over=False):
        with lock:
            runs.append((topology.name, "start", provider.restored[-1]))
        time.sleep(0.1)  # long enough for the other slot to run into the build
        with lock:
            runs.append((topology.name, "end", None))

    monkeypatch.setattr(snapshots, "_provision", provision)
    slots = [parse(variant(f"hg-g23{n}", 230 + n)) for n in (1, 2)]
    providers = [SlotProvider() for _ in slots]
    keys = {}

    def bring(topology, provider):
        state = LabState(topology.name, tmp_path)
        state.dir.mkdir(parents=True)
        keys[topology.name] = snapshots.bring_to_reference_state(
            topology, state, provider, ["app", "web"], None, share=True
        )

    pairs = list(zip(slots, providers, strict=True))
    threads = [threading.Thread(target=bring, args=pair) for pair in pairs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [step for _, step, _ in runs] == ["start", "end", "start", "end"], "one at a time"
    (first, _, bare), (second, _, taken) = runs[0], runs[2]
    assert bare == {} and first != second, "the first slot built from the bare image"
    assert taken == {"web-01": [snapshots.cache_dir() / keys[first] / "web-01"]}, taken
    metas = [json.loads(p.read_text()) for p in snapshots.cache_dir().glob(f"*/{snapshots.META}")]
    assert {m["lab"] for m in metas} == {first, second}
    assert len({m["shape"] for m in metas}) == 1 and keys[first] != keys[second]
    for topology, provider in pairs:  # warm now: each slot restores its own
        before = len(runs)
        bring_again = LabState(topology.name, tmp_path)
        snapshots.bring_to_reference_state(
            topology, bring_again, provider, ["web", "app"], None, share=True
        )
        assert len(runs) == before


def test_labs_that_differ_in_more_than_addresses_do_not_share(tmp_path):
    from lab.core.topology import parse, variant

    one, two = parse(variant("hg-g231", 231)), parse(variant("hg-g232", 232))
    assert snapshots.shape(one) == snapshots.shape(two)
    other = variant("hg-g233", 233)
    other["sandbox"] = {"memory_mib": 512}
    assert snapshots.shape(parse(other)) != snapshots.shape(one)
