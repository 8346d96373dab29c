"""Per-host apt caches on the machine running the lab, so a rebuilt lab downloads nothing again."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from pathlib import Path

PARTS = ("archives", "lists")


def host_cache(root: Path, key: str, host: str, fallback_lists: Path | None = None) -> Path:
    """The cache dir of one host (archives/ and lists/, bind-mounted into it).

    A new one is seeded from the fullest cache of a same-named host of another lab: packages
    are hard links (apt never rewrites a .deb), package lists are copies, taken whole (a copy
    made while that lab's apt rewrote them may lack a suite's Packages: taken again, and after
    a few tries fallback_lists, the image's own, are taken instead).
    """
    cache = root / key
    if (cache / "archives").is_dir():
        return cache
    siblings = [p for p in root.glob(f"*-{host}") if p != cache and (p / "archives").is_dir()]
    for part in PARTS:
        (cache / part).mkdir(parents=True, exist_ok=True)
    if siblings:
        source = max(siblings, key=lambda p: sum(1 for _ in (p / "archives").glob("*.deb")))
        for deb in (source / "archives").glob("*.deb"):
            _seed(os.link, deb, cache / "archives" / deb.name)
        lists = [source / "lists"] * LIST_TRIES + ([fallback_lists] if fallback_lists else [])
        wanted = suites(_names(fallback_lists)) if fallback_lists else set()
        for tries, origin in enumerate(lists):
            if tries and origin == source / "lists":
                time.sleep(LIST_WAIT)  # that lab's apt-get update ends within moments
            if _seed_lists(origin, cache / "lists", wanted):
                break
    return cache


LIST_TRIES, LIST_WAIT = 5, 1.0


def suites(names) -> set[str]:
    """The suites apt lists (file names) hold an InRelease of."""
    return {n.removesuffix("_InRelease") for n in names if n.endswith("_InRelease")}


def whole(names: list[str], wanted: set[str] = frozenset()) -> bool:
    """Whether apt lists (file names) hold an InRelease and a Packages file for every suite
    they name and every wanted one (the image's): the lists of a host whose apt was not halfway
    through rewriting them (apt takes a suite's files away and puts the new ones in place)."""
    every = suites(names) | set(wanted)
    return bool(every) and all(
        f"{suite}_InRelease" in names
        and any(n.startswith(f"{suite}_") and "_Packages" in n for n in names)
        for suite in every
    )


def _names(directory: Path | None) -> list[str]:
    """The file names in directory ([] when there is none)."""
    try:
        return [p.name for p in directory.iterdir()] if directory else []
    except FileNotFoundError:
        return []


def _seed_lists(source: Path, target: Path, wanted: set[str] = frozenset()) -> bool:
    """Copy source's apt lists into target (emptied first) when the copy is whole."""
    for old in target.iterdir():
        old.unlink()
    with contextlib.suppress(FileNotFoundError):
        for item in source.iterdir():
            if item.is_file() and item.name != "lock":
                _seed(shutil.copy2, item, target / item.name)
    return whole(_names(target), wanted)


def _seed(copy, source: Path, target: Path) -> None:
    """Copy one file of a sibling's cache; that lab's apt may remove or replace it meanwhile."""
    with contextlib.suppress(FileNotFoundError, FileExistsError):  # gone, or already seeded
        copy(source, target)
