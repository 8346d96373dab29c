"""Platform detection, per-platform data paths, locking and provider choice on laptops."""

from __future__ import annotations

import ast
import os
import sys
import types
from pathlib import Path, PurePosixPath

import pytest

from lab import providers
from lab.core import platform, state
from lab.core.errors import LabError

ROOT = Path(__file__).resolve().parents[2]
HOME = Path("/home/student")
POSIX_ONLY = {"fcntl", "termios", "pwd", "grp", "resource", "tty", "pty"}


@pytest.mark.parametrize(
    ("sys_platform", "expected"),
    [("linux", "linux"), ("linux2", "linux"), ("darwin", "macos"), ("win32", "windows")],
)
def test_the_system_is_named_from_sys_platform(monkeypatch, sys_platform, expected):
    assert platform.system(sys_platform) == expected
    monkeypatch.setattr(sys, "platform", sys_platform)
    assert platform.system() == expected


def test_windows_without_an_effective_user_id_is_not_root(monkeypatch):
    monkeypatch.delattr(os, "geteuid", raising=False)
    assert platform.is_root() is False


@pytest.mark.parametrize(("euid", "root"), [(0, True), (1000, False)])
def test_root_is_the_effective_user_id_zero(monkeypatch, euid, root):
    monkeypatch.setattr(os, "geteuid", lambda: euid, raising=False)
    assert platform.is_root() is root


def test_windows_keeps_data_under_local_app_data():
    environ = {"LOCALAPPDATA": r"C:\Users\student\AppData\Local"}
    path = platform.data_home("win32", environ, HOME, root=False)
    assert path == Path(r"C:\Users\student\AppData\Local") / "webstack-lab"


def test_windows_without_local_app_data_falls_back_to_the_profile():
    path = platform.data_home("win32", {}, HOME, root=False)
    assert path == HOME / "AppData" / "Local" / "webstack-lab"


@pytest.mark.parametrize("root", [False, True])
def test_macos_keeps_data_in_application_support(root):
    path = platform.data_home("darwin", {}, HOME, root=root)
    assert path == HOME / "Library" / "Application Support" / "webstack-lab"


def test_linux_root_keeps_data_in_var_lib():
    assert platform.data_home("linux", {}, HOME, root=True) == Path("/var/lib/webstack-lab")


def test_linux_users_keep_data_in_their_xdg_data_home():
    assert platform.data_home("linux", {}, HOME, root=False) == HOME / ".local/share/webstack-lab"
    xdg = {"XDG_DATA_HOME": "/data/student"}
    assert platform.data_home("linux", xdg, HOME, root=False) == Path("/data/student/webstack-lab")
    relative = {"XDG_DATA_HOME": "relative/ignored"}
    assert platform.data_home("linux", relative, HOME, root=False) == (
        HOME / ".local/share/webstack-lab"
    )


def test_lab_home_follows_the_platform_unless_lab_home_is_set(monkeypatch, tmp_path):
    monkeypatch.delenv("LAB_HOME", raising=False)
    monkeypatch.delattr(os, "geteuid", raising=False)
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path))
    assert state.lab_home() == tmp_path / "webstack-lab"
    assert state.LabState("webstack").dir == tmp_path / "webstack-lab" / "labs" / "webstack"
    monkeypatch.setenv("LAB_HOME", str(tmp_path / "elsewhere"))
    assert state.lab_home() == tmp_path / "elsewhere"


def test_a_lab_lock_is_exclusive_on_posix(tmp_path):
    lab = state.LabState("locked", home=tmp_path)
    busy = pytest.raises(LabError, match="another lab command is changing lab")
    with lab.lock(), busy, lab.lock():
        pass
    with lab.lock():  # released again
        pass


def test_windows_locks_with_msvcrt_and_waits_when_asked(monkeypatch, tmp_path):
    calls = []

    def locking(fd, mode, length):
        calls.append((mode, length))
        if len(calls) < 3:
            raise OSError("locked by another process")

    fake = types.SimpleNamespace(LK_NBLCK=2, locking=locking)
    monkeypatch.setitem(sys.modules, "msvcrt", fake)
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setattr(platform.time, "sleep", lambda seconds: None)
    with open(tmp_path / ".lock", "w") as handle:
        assert platform.lock(handle) is False
        assert platform.lock(handle, wait=True) is True
    assert calls == [(2, 1)] * 3


def _machine(monkeypatch, sys_platform: str, tools: set[str], root: bool | None) -> None:
    """Pretend to be a machine: its platform, which tools are installed, and the user."""
    monkeypatch.setattr(sys, "platform", sys_platform)
    monkeypatch.setattr(providers.shutil, "which", lambda tool: tool if tool in tools else None)
    if root is None:
        monkeypatch.delattr(os, "geteuid", raising=False)
    else:
        monkeypatch.setattr(os, "geteuid", lambda: 0 if root else 1000, raising=False)


@pytest.mark.parametrize(
    ("sys_platform", "tools", "root", "expected", "why"),
    [
        ("win32", {"vagrant"}, None, "vagrant", "LXC runs only on Linux"),
        ("darwin", {"vagrant"}, False, "vagrant", "LXC runs only on Linux"),
        ("linux", {"vagrant"}, False, "vagrant", "LXC is not"),
        ("linux", {"vagrant", "lxc-start"}, False, "vagrant", "needs no root"),
        ("linux", {"vagrant", "lxc-start"}, True, "lxc", "LXC is installed"),
        ("linux", {"lxc-start"}, False, "lxc", "LXC is installed"),
    ],
)
def test_laptops_get_vagrant_and_root_on_linux_gets_lxc(
    monkeypatch, sys_platform, tools, root, expected, why
):
    _machine(monkeypatch, sys_platform, tools, root)
    assert providers.choose(None, None, "auto") == expected
    assert why in providers.reason(None, None, "auto")


@pytest.mark.parametrize(("sys_platform", "hint"), [("win32", "VirtualBox"), ("linux", "LXC")])
def test_a_machine_without_a_provider_is_told_what_to_install(monkeypatch, sys_platform, hint):
    _machine(monkeypatch, sys_platform, set(), None)
    with pytest.raises(LabError, match="no provider available") as failure:
        providers.choose(None, None, "auto")
    assert hint in failure.value.hint


def _python_files() -> list[Path]:
    packages = ("lab", "checks", "provision")
    return [path for package in packages for path in sorted((ROOT / package).rglob("*.py"))]


def test_every_module_imports_on_windows():
    """No module imports a POSIX-only module at its top level (Windows lacks them)."""
    found = []
    for path in _python_files():
        for node in ast.parse(path.read_text()).body:
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            found += [
                f"{path.relative_to(ROOT)}: {name}"
                for name in names
                if name.split(".")[0] in POSIX_ONLY
            ]
    assert not found


def test_only_the_platform_module_asks_for_the_user_id():
    """os.geteuid and friends crash on Windows: lab.platform.is_root() asks for everyone."""
    linux_only = {PurePosixPath("lab/providers/lxc.py")}  # LXC itself, chosen only on Linux
    found = []
    for path in _python_files():
        relative = PurePosixPath(path.relative_to(ROOT).as_posix())
        if relative == PurePosixPath("lab/core/platform.py") or relative in linux_only:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in ("geteuid", "getuid"):
                found.append(f"{relative}:{node.lineno}")
    assert not found


@pytest.mark.parametrize(
    ("version", "ok"),
    [((3, 11, 2), True), ((3, 12, 3), True), ((3, 11, 1), False), ((3, 10, 12), False)],
)
def test_doctor_says_whether_the_python_is_supported(version, ok):
    what, supported, fix = platform.python_support(version)
    assert supported is ok and ".".join(map(str, version)) in what
    assert ("python3.11" in fix) is not ok


def test_the_suite_runs_on_the_oldest_supported_python_in_ci():
    """CI builds its venv on Debian 12's own Python (the README's setup): code that needs a
    newer one fails there. Elsewhere the floor is only checked to be Debian 12's."""
    assert platform.PYTHON_FLOOR == (3, 11, 2)
    if os.environ.get("CI") == "true":
        assert sys.version_info[:3] == platform.PYTHON_FLOOR, sys.version
        assert Path(sys._base_executable).resolve() == Path("/usr/bin/python3").resolve()
