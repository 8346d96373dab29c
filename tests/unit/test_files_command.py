"""`lab files app DIR` writes the shipped code base from any install, and exercise 03's page
gives its commands in an order that works: user, files, settings, then the service."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from lab.cli import app as cli
from lab.cli.commands import files
from lab.core import resources
from lab.course import exercises
from provision.app import APP_DIR, APP_USER, application_files

REPO = Path(__file__).resolve().parents[2]


def written(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob("*") if p.is_file()
    }


def test_it_writes_the_code_base_the_lab_deploys(tmp_path, capsys):
    target = tmp_path / "new" / "app-files"
    assert cli.main(["files", "app", str(target), "--no-color"]) == 0
    assert written(target) == application_files(resources.app_dir())
    assert {"app.py", "static/index.html"} <= set(written(target))
    assert not list(target.rglob("__pycache__"))
    assert f"{target}: {len(written(target))} files" in capsys.readouterr().out


def test_files_are_readable_by_all_whatever_the_umask(tmp_path):
    import os

    old = os.umask(0o077)
    try:
        files.write({"static/a.css": b"x", "app.py": b"y"}, tmp_path / "out")
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "out").rglob("*")}
    assert modes == {"a.css": 0o644, "app.py": 0o644, "static": 0o755}
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o755


def test_it_refuses_to_overwrite_without_force(tmp_path, capsys):
    target = tmp_path / "app-files"
    assert cli.main(["files", "app", str(target)]) == 0
    (target / "app.py").write_text("my own work\n")
    (target / "static" / "style.css").unlink()
    capsys.readouterr()
    assert cli.main(["files", "app", str(target)]) == 2
    err = capsys.readouterr().err
    assert f"{target / 'app.py'} and 2 more already there: not overwritten" in err
    assert "--force" in err and "Traceback" not in err
    assert (target / "app.py").read_text() == "my own work\n"
    assert not (target / "static" / "style.css").exists(), "nothing written when it refuses"
    assert cli.main(["files", "app", str(target), "--force"]) == 0
    assert written(target) == application_files(resources.app_dir())


def test_a_link_in_the_way_is_replaced_not_written_through(tmp_path):
    outside = tmp_path / "elsewhere.py"
    outside.write_text("keep me\n")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "app.py").symlink_to(outside)
    files.write({"app.py": b"new"}, tmp_path / "out", force=True)
    assert outside.read_text() == "keep me\n"
    assert (tmp_path / "out" / "app.py").read_bytes() == b"new"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["files", "nope", "DIR"], "error: unknown files 'nope'; the lab ships: app"),
        (["files", "app", "{file}"], "error: {file} is not a directory"),
        (["files", "app", "{file}/below"], "error: cannot write {file}/below: Not a directory"),
    ],
)
def test_bad_input_is_one_clear_line(tmp_path, capsys, argv, message):
    file = tmp_path / "a-file"
    file.write_text("")
    argv = [word.replace("{file}", str(file)) for word in argv]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [message.replace("{file}", str(file))]


def test_an_install_without_the_files_says_so(tmp_path, monkeypatch, capsys):
    (tmp_path / "_bundled" / "app").mkdir(parents=True)
    monkeypatch.setattr(resources, "BUNDLE_DIR", tmp_path / "_bundled")
    assert cli.main(["files", "app", str(tmp_path / "out")]) == 2
    assert "this install of the lab is incomplete" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_it_reads_the_install_bundle_when_there_is_one(tmp_path, monkeypatch):
    """An installed lab (pipx, a wheel) has no clone: its app/ is in lab/_bundled."""
    bundle = tmp_path / "_bundled"
    (bundle / "app" / "static").mkdir(parents=True)
    (bundle / "app" / "app.py").write_text("bundled\n")
    (bundle / "app" / "static" / "index.html").write_text("<p>bundled</p>\n")
    (bundle / "app" / "__pycache__").mkdir()
    (bundle / "app" / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"\0")
    monkeypatch.setattr(resources, "BUNDLE_DIR", bundle)
    assert cli.main(["files", "app", str(tmp_path / "out")]) == 0
    assert written(tmp_path / "out") == {
        "app.py": b"bundled\n",
        "static/index.html": b"<p>bundled</p>\n",
    }


# -- exercise 03's page -------------------------------------------------------------------

FENCE = re.compile(r"```[a-z]*\n(.*?)```", re.S)
INLINE = re.compile(r"`([^`\n]+)`")


def page_commands() -> list[str]:
    """The shell commands of exercise 03's page, in page order, one per && or line."""
    text = exercises.find("03").path.read_text()
    steps = text[: text.index("**Check yourself.**")]
    found = []
    for match in re.finditer(r"```sh[^\n]*\n(.*?)```|`([^`\n]+)`", steps, re.S):
        block, inline = match.groups()
        for line in (block or inline).splitlines():
            line = re.sub(r"\s+#.*$", "", line.strip())
            found += [part.strip() for part in re.split(r"&&(?=(?:[^']*'[^']*')*[^']*$)", line)]
    return [c for c in found if c]


def position(commands: list[str], pattern: str) -> int:
    hits = [i for i, command in enumerate(commands) if re.search(pattern, command)]
    assert hits, f"no command matches {pattern!r} in {commands}"
    return hits[0]


def test_the_page_creates_what_each_command_needs_before_it():
    commands = page_commands()
    user = position(commands, rf"useradd --system --user-group .*\b{APP_USER}$")
    files_written = position(commands, r"^lab files app app-files$")
    copy = position(commands, r"^tar -C app-files -cf - \. \| sudo lab ssh ")
    etc = position(commands, r"^sudo mkdir -p /etc/webstack$")
    env = position(commands, r"^sudo touch /etc/webstack/app\.env$")
    owner = position(commands, rf"^sudo chown root:{APP_USER} /etc/webstack/app\.env$")
    mode = position(commands, r"^sudo chmod 0640 /etc/webstack/app\.env$")
    edit = position(commands, r"^sudoedit /etc/webstack/app\.env$")
    start = position(commands, r"systemctl enable --now webstack-app")
    assert files_written < copy  # the directory the copy reads exists
    assert user < owner  # the group exists before a file is given to it
    assert etc < env < owner and env < mode < edit < start
    assert copy < start
    remote = shlex.split(commands[copy].split(" -- ", 1)[1])[0]
    assert remote.index(f"mkdir -p {APP_DIR}") < remote.index(f"tar -C {APP_DIR} ")


def test_the_pages_copy_lands_the_code_base_unchanged(tmp_path, capsys):
    """The page's pipeline run here, its remote half on this machine under tmp_path."""
    if not shutil.which("tar"):
        pytest.skip("no tar")
    commands = page_commands()
    copy = commands[position(commands, r"^tar -C app-files -cf - \. \| sudo lab ssh ")]
    local, remote = copy.split(" | sudo lab ssh ", 1)
    remote = shlex.split(remote.split(" -- ", 1)[1])[0]
    remote = remote.replace("sudo ", "").replace(APP_DIR, str(tmp_path / "srv"))
    assert cli.main(["files", "app", str(tmp_path / "app-files")]) == 0
    done = subprocess.run(
        f"{local} | sh -c {shlex.quote(remote)}", shell=True, cwd=tmp_path, capture_output=True
    )
    assert done.returncode == 0, done.stderr
    assert written(tmp_path / "srv") == application_files(resources.app_dir())
