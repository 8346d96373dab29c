"""Per-host apt caches on the machine running the lab, so a rebuilt lab downloads nothing again."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

PARTS = ("archives", "lists")


def host_cache(root: Path, key: str, host: str) -> Path:
    """The cache dir of one host (archives/ and lists/, bind-mounted into it).

    A new one is seeded from the fullest cache of a same-named host of another lab: packages
    are hard links (apt never rewrites a .deb), package lists are copies.
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
        for item in (source / "lists").iterdir():
            if item.is_file() and item.name != "lock":
                _seed(shutil.copy2, item, cache / "lists" / item.name)
    return cache


def _seed(copy, source: Path, target: Path) -> None:
    """Copy one file of a sibling's cache; that lab's apt may remove or replace it meanwhile."""
    with contextlib.suppress(FileNotFoundError, FileExistsError):  # gone, or already seeded
        copy(source, target)
