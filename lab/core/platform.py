"""The machine running `lab`: its operating system, whether it runs as root, where data lives."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO

APP_DIR = "webstack-lab"
SYSTEM_HOME = Path("/var/lib") / APP_DIR


def system(platform: str | None = None) -> str:
    """'linux', 'macos', 'windows' or another POSIX name (from sys.platform)."""
    platform = platform or sys.platform
    if platform.startswith("linux"):
        return "linux"
    if platform == "darwin":
        return "macos"
    if platform in ("win32", "cygwin"):
        return "windows"
    return platform


def is_root() -> bool:
    """True for root on POSIX; never on Windows, which has no effective user id."""
    geteuid = getattr(os, "geteuid", None)
    return geteuid is not None and geteuid() == 0


def data_home(
    platform: str | None = None,
    environ: Mapping[str, str] | None = None,
    home: Path | None = None,
    root: bool | None = None,
) -> Path:
    """Where the lab keeps what it creates on this kind of machine, for this user."""
    environ = os.environ if environ is None else environ
    home = home or Path.home()
    kind = system(platform)
    if kind == "windows":
        return Path(environ.get("LOCALAPPDATA") or home / "AppData" / "Local") / APP_DIR
    if kind == "macos":
        return home / "Library" / "Application Support" / APP_DIR
    if is_root() if root is None else root:
        return SYSTEM_HOME
    xdg = environ.get("XDG_DATA_HOME", "")
    return (Path(xdg) if os.path.isabs(xdg) else home / ".local" / "share") / APP_DIR


def lock(handle: IO, wait: bool = False) -> bool:
    """Take an exclusive lock on an open file; False when it is held and wait is False."""
    if system() == "windows":
        return _lock_windows(handle, wait)
    import fcntl

    try:
        fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    return True


def _lock_windows(handle: IO, wait: bool) -> bool:
    """msvcrt's byte-range lock on the file's first byte (released when the file closes)."""
    import msvcrt

    while True:
        try:
            handle.seek(0)
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            if not wait:
                return False
            time.sleep(0.2)


# The oldest Python the lab is tested on: Debian 12's own (CI's venv is built on it).
PYTHON_FLOOR = (3, 11, 2)
PYTHON_HINT = (
    "use a distribution whose python3 is 3.11.2 or newer (Debian 12, Ubuntu 24.04), or install "
    "a Python 3.11.2+ and rebuild the venv with it: sudo PYTHON=/path/to/python3.11 "
    "scripts/setup.sh (pipx: pipx install --python /path/to/python3.11 .)"
)


def python_support(version: tuple[int, ...] | None = None) -> tuple[str, bool, str]:
    """(what, ok, fix) for the Python running the lab: `lab doctor`'s first line."""
    version = tuple(version or sys.version_info[:3])
    shown = ".".join(map(str, version[:3]))
    floor = ".".join(map(str, PYTHON_FLOOR))
    if version[:3] >= PYTHON_FLOOR:
        return f"Python {shown} (supported: {floor} or newer)", True, ""
    return f"Python {shown} (older than {floor}, the oldest supported)", False, PYTHON_HINT
