"""A class's submissions: folders, archives (.zip, .tar.gz) or git repositories, one per student.

Each is unpacked into a work folder of its own; its files are found where the assignment says
they may sit; its content hash says whether it changed since it was last graded.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import subprocess
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import yaml

from lab.core.errors import LabError
from lab.grading.model import file_stem

ARCHIVES = (".tar.gz", ".tgz", ".tar", ".zip")
MAX_BYTES = 50 * 2**20  # what one submission may unpack to
MAX_FILES = 5000
CLONE_SECONDS = 120
SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


class Unusable(Exception):
    """This student's submission cannot be graded (one line, kept in their report)."""


@dataclass(frozen=True)
class Submission:
    """Where one student's work comes from."""

    student: str  # the name as given: the folder or archive name (no extension), or the roster's
    kind: str  # folder, archive or git
    source: str  # a path, or a git URL
    ref: str = ""  # git only: a branch, tag or commit

    @property
    def origin(self) -> str:
        return f"{self.source}@{self.ref}" if self.ref else self.source

    @property
    def stem(self) -> str:
        """The student's file name: safe, and distinct for names that clean up alike."""
        return file_stem(self.student)


def student_name(raw: str) -> str:
    """A name safe for file names and HTML ids, from a folder or archive name."""
    name = SAFE_NAME.sub("_", raw).strip("._-")[:64]
    return name or "student"


def given_name(raw: str) -> str:
    """A folder or archive name as written, as text: bytes that are not UTF-8 become U+FFFD."""
    return raw.encode("utf-8", "surrogateescape").decode("utf-8", "replace").strip() or "student"


def discover(path: Path) -> list[Submission]:
    """The submissions in a folder (one folder or archive per student) or a roster file."""
    if path.is_file() and path.suffix in (".yml", ".yaml"):
        return roster(path)
    if not path.is_dir():
        raise LabError(f"no submissions at {path}", hint="give a folder or a roster .yml file")
    found: dict[str, Submission] = {}
    for entry in sorted(path.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            submission = Submission(given_name(entry.name), "folder", str(entry))
        elif entry.name.lower().endswith(ARCHIVES):
            stem = entry.name[: -len(next(s for s in ARCHIVES if entry.name.lower().endswith(s)))]
            submission = Submission(given_name(stem), "archive", str(entry))
        else:
            continue
        if submission.student in found:
            first = Path(found[submission.student].source).name
            raise LabError(
                f"two submissions for {submission.student!r} in {path}: {first} and {entry.name}",
                hint="keep one of them (a folder and an archive of the same name are one student)",
            )
        found[submission.student] = submission
    if not found:
        raise LabError(
            f"{path} holds no submissions",
            hint="one folder or .zip/.tar.gz archive per student, or a roster .yml",
        )
    return list(found.values())


def roster(path: Path) -> list[Submission]:
    """A roster file: students: {NAME: {git: URL, ref: REF} or {path: FOLDER_OR_ARCHIVE}}."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise LabError(f"{path}: cannot read the roster: {str(exc).splitlines()[0]}") from None
    students = data.get("students") if isinstance(data, dict) else None
    if not isinstance(students, dict) or not students:
        raise LabError(f"{path}: expected `students:` with one entry per student")
    found = []
    for raw, entry in students.items():
        name = str(raw)
        if not isinstance(entry, dict) or not ({"git", "path"} & set(entry)):
            raise LabError(f"{path}: students.{raw}: expected git (and ref) or path")
        if "git" in entry:
            found.append(Submission(name, "git", str(entry["git"]), str(entry.get("ref", ""))))
        else:
            local = (path.parent / str(entry["path"])).resolve()
            kind = "folder" if local.is_dir() else "archive"
            found.append(Submission(name, kind, str(local)))
    return found


def unpack(submission: Submission, dest: Path) -> Path:
    """Put the submission's files in dest (emptied first); raise Unusable with one line."""
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    source = Path(submission.source)
    if submission.kind == "git":
        clone(submission, dest)
    elif submission.kind == "folder":
        if not source.is_dir():
            raise Unusable(f"no folder {source}")
        copy_folder(source, dest)
    elif source.name.lower().endswith(".zip"):
        extract_zip(source, dest)
    else:
        extract_tar(source, dest)
    if not any(p.is_file() for p in dest.rglob("*")):
        raise Unusable("the submission is empty")
    return top_folder(dest)


def copy_folder(source: Path, dest: Path) -> None:
    total, count = 0, 0
    for item in sorted(source.rglob("*")):
        rel = item.relative_to(source)
        if ".git" in rel.parts or item.is_symlink():
            continue
        if item.is_dir():
            (dest / rel).mkdir(parents=True, exist_ok=True)
        elif item.is_file():
            total, count = total + item.stat().st_size, count + 1
            _within_limits(total, count)
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(item, dest / rel)


def extract_zip(source: Path, dest: Path) -> None:
    try:
        with zipfile.ZipFile(source) as archive:
            members = [m for m in archive.infolist() if not m.is_dir()]
            _within_limits(sum(m.file_size for m in members), len(members))
            for member in members:
                mode = member.external_attr >> 16
                if stat.S_IFMT(mode) not in (0, stat.S_IFREG):
                    continue  # symlinks and other special entries are left out
                with archive.open(member) as data:
                    _write_member(dest, member.filename, data, mode)
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError) as exc:
        raise Unusable(f"unreadable archive {source.name}: {exc}") from None


def extract_tar(source: Path, dest: Path) -> None:
    """Regular files only, written by hand: no links, devices, owners or setuid bits.

    `extractall(filter="data")` would do this from Python 3.11.4 on; Debian 12's 3.11.2 lacks it.
    """
    try:
        with tarfile.open(source) as archive:
            members = [m for m in archive.getmembers() if m.isreg()]
            _within_limits(sum(m.size for m in members), len(members))
            for member in members:
                data = archive.extractfile(member)
                if data is not None:
                    _write_member(dest, member.name, data, member.mode)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise Unusable(f"unreadable archive {source.name}: {exc}") from None


def _write_member(dest: Path, name: str, data: IO[bytes], mode: int) -> None:
    """One archive member as a plain file under dest (0755 if it was executable, else 0644);
    absolute or escaping names are left out."""
    target = _safe_target(dest, name)
    if target is None:
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_symlink() or target.is_dir():
        return
    with open(target, "wb") as out:
        shutil.copyfileobj(data, out)
    target.chmod(0o755 if mode & 0o111 else 0o644)


def clone(submission: Submission, dest: Path) -> None:
    """git clone (and checkout of the ref) without prompts, hooks or a terminal."""
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true"}
    commands = [["git", "clone", "--quiet", "--no-checkout", "--", submission.source, str(dest)]]
    ref = submission.ref or "HEAD"
    commands.append(["git", "-C", str(dest), "checkout", "--quiet", "--detach", ref, "--"])
    for command in commands:
        try:
            result = subprocess.run(
                command, capture_output=True, text=True, env=env, timeout=CLONE_SECONDS
            )
        except subprocess.TimeoutExpired:
            raise Unusable(f"git clone {submission.source} took over {CLONE_SECONDS} s") from None
        if result.returncode != 0:
            why = (result.stderr.strip().splitlines() or ["failed"])[-1]
            raise Unusable(f"cannot clone {submission.origin}: {why}")
    shutil.rmtree(dest / ".git", ignore_errors=True)


def top_folder(dest: Path) -> Path:
    """Where the student's work starts: an archive's single wrapping folder is stepped into."""
    entries = [p for p in dest.iterdir() if not p.name.startswith(".") and p.name != "__MACOSX"]
    while len(entries) == 1 and entries[0].is_dir():
        dest = entries[0]
        entries = [p for p in dest.iterdir() if not p.name.startswith(".")]
    return dest


def find_files(root: Path, names: list[str], folders: tuple[str, ...]) -> dict[str, Path]:
    """Each wanted file, at the top of root or in one of the assignment's folders."""
    found = {}
    for name in names:
        for folder in folders:
            candidate = root / folder / name if folder else root / name
            if candidate.is_file():
                found[name] = candidate
                break
    return found


def content_hash(root: Path) -> str:
    """sha256 over every file's relative path and bytes: the same work hashes the same."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and ".git" not in p.parts):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def source_hash(submission: Submission) -> str:
    """The content hash of a folder or archive as handed in ("" for git: clone it first)."""
    source = Path(submission.source)
    if submission.kind == "folder" and source.is_dir():
        return content_hash(source)
    if submission.kind == "archive" and source.is_file():
        return hashlib.sha256(source.read_bytes()).hexdigest()
    return ""


def _safe_target(dest: Path, name: str) -> Path | None:
    parts = Path(name.replace("\\", "/")).parts
    if not parts or Path(name).is_absolute() or ".." in parts:
        return None
    target = dest.joinpath(*parts)
    return target if target.resolve().is_relative_to(dest.resolve()) else None


def _within_limits(total: int, count: int) -> None:
    if total > MAX_BYTES or count > MAX_FILES:
        raise Unusable(
            f"the submission is too large ({count} files, {total / 2**20:.0f} MB; "
            f"at most {MAX_FILES} files and {MAX_BYTES // 2**20} MB)"
        )
