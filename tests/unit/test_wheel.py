"""A wheel built from the clone carries lab.yml, the Vagrantfile, docs/ and app/, and runs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.long  # builds a wheel and installs it in a new venv: about 20 s

ROOT = Path(__file__).resolve().parents[2]
SKIP = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", "tests", "bench"
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel pip builds from a copy of the clone (the clone itself stays clean)."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "src"
    shutil.copytree(ROOT, source, ignore=SKIP)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(source), "-w", str(tmp)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    return next(tmp.glob("webstack_lab-*.whl"))


def test_the_wheel_carries_what_lab_reads_at_run_time(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    bundle = "lab/_bundled/"
    assert {f"{bundle}lab.yml", f"{bundle}lab-ha.yml", f"{bundle}Vagrantfile"} <= names
    assert f"{bundle}app/app.py" in names
    pages = {f"{bundle}docs/exercises/{page.name}" for page in ROOT.glob("docs/exercises/*.md")}
    assert pages and pages <= names
    app_files = {f"{bundle}{path.relative_to(ROOT).as_posix()}" for path in _files(ROOT / "app")}
    assert app_files <= names
    templates = {
        path.relative_to(ROOT).as_posix()
        for package in ("lab", "provision")
        for path in (ROOT / package).rglob("templates/**/*")
        if path.is_file()
    }
    assert templates and templates <= names
    top_level = {name.split("/")[0] for name in names if ".dist-info/" not in name}
    assert top_level == {"lab", "checks", "provision"}, "three names in site-packages, no more"


def _files(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*") if p.is_file() and "__pycache__" not in p.parts]


def _contents(directory: Path) -> dict[str, bytes]:
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in _files(directory)}


def test_the_installed_lab_finds_its_topology_docs_and_exercises(wheel, tmp_path):
    target = tmp_path / "venv"
    venv.create(target, with_pip=False)
    python = target / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", wheel],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert installed.returncode == 0, installed.stderr[-2000:]
    # Dependencies come from this interpreter's site-packages: a plain path entry, so its
    # editable-install hooks (.pth files there) stay off and only the wheel provides `lab`.
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    lab = python.with_name("lab")
    home = tmp_path / "home"
    env = {**os.environ, "LAB_HOME": str(home), "NO_COLOR": "1"}
    env.pop("LAB_TOPOLOGY", None)

    def run(*args):
        result = subprocess.run(
            [lab, *args], capture_output=True, text=True, env=env, cwd=home.parent, timeout=120
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    assert "usage: lab" in run("--help")
    assert "servers.reachable" in run("check", "--list")
    page = next(ROOT.glob("docs/exercises/02-*.md")).read_text()
    assert page.splitlines()[0].lstrip("# ") in run("exercise", "02")
    run("files", "app", str(tmp_path / "app-files"))  # no clone here: the wheel's own copy
    assert _contents(tmp_path / "app-files") == _contents(ROOT / "app")
    status = json.loads(run("status", "--json"))
    packaged = Path(status["topology"])
    assert packaged.parts[-3:] == ("lab", "_bundled", "lab.yml")
    assert packaged.is_relative_to(target)
    assert status["up"] is False
    code = (
        "from lab.core import resources as r; print(r.app_dir(), r.docs_dir(), r.vagrantfile_dir())"
    )
    where = subprocess.run(
        [python, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path
    ).stdout.split()
    assert len(where) == 3
    assert all(Path(p).is_relative_to(target) and Path(p).is_dir() for p in where), where
    assert (Path(where[2]) / "Vagrantfile").is_file()


def test_files_beside_the_code_are_found_through_lab_resources():
    """A path climbing out of a package from __file__ breaks in an installed wheel."""
    climbing = []
    for package in ("lab", "checks", "provision"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if "__file__" in line and ("parent.parent" in line or ".parents[" in line):
                    climbing.append(f"{path.relative_to(ROOT)}:{number}")
    assert climbing == []  # lab/core/resources.py climbs from the package, not from __file__
