"""Two labs on one machine at once: what one lab removes or needs while another works."""

from __future__ import annotations

import json
import os

from lab.providers import aptcache, lxcnet
from provision import snapshots


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
    (sibling / "lists" / "Packages").write_text("lists")
    link = os.link

    def link_unless_gone(source, target):
        if source.name == "gone.deb":  # listed, then removed by the other lab's apt
            raise FileNotFoundError(source)
        link(source, target)

    monkeypatch.setattr(os, "link", link_unless_gone)
    cache = aptcache.host_cache(tmp_path, "mine-web-01", "web-01")
    assert sorted(p.name for p in (cache / "archives").iterdir()) == ["nginx.deb"]
    assert (cache / "lists" / "Packages").read_text() == "lists"


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
