"""Build the archived submissions (erin.tar.gz, frank.zip) from the folders under src/.

Learning platforms bulk-download one archive per student. The archives are byte-for-byte
reproducible (fixed timestamps and owners, sorted entries), so a regenerated archive has the
same content hash as the committed one. Run: python make_archives.py [OUTPUT_DIR]
"""

from __future__ import annotations

import gzip
import io
import sys
import tarfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "src"
EPOCH = 1700000000  # 2023-11-14: a fixed modification time for every entry
ZIP_DATE = (2023, 11, 14, 22, 13, 20)


def entries(folder: Path) -> list[Path]:
    """Every file and directory under folder, sorted, relative to it."""
    return sorted(path.relative_to(folder) for path in folder.rglob("*"))


def mode(path: Path) -> int:
    """Permission bits kept as students' scripts have them: executable or not."""
    if path.is_dir():
        return 0o755
    return 0o755 if path.stat().st_mode & 0o111 else 0o644


def make_tar_gz(folder: Path, target: Path) -> None:
    """folder's contents at the top of a .tar.gz (no wrapping directory)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for rel in entries(folder):
            path = folder / rel
            info = tarfile.TarInfo(rel.as_posix())
            info.mtime, info.mode, info.uid, info.gid = EPOCH, mode(path), 1000, 1000
            info.uname = info.gname = "student"
            if path.is_dir():
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                data = path.read_bytes()
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    with target.open("wb") as out, gzip.GzipFile(fileobj=out, mode="wb", mtime=EPOCH) as gz:
        gz.write(raw.getvalue())


def make_zip(folder: Path, target: Path) -> None:
    """folder's contents at the top of a .zip, with Unix permission bits."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for rel in entries(folder):
            path = folder / rel
            name = rel.as_posix() + ("/" if path.is_dir() else "")
            info = zipfile.ZipInfo(name, ZIP_DATE)
            info.create_system = 3  # Unix: external_attr holds the mode
            info.external_attr = ((0o040000 if path.is_dir() else 0o100000) | mode(path)) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, b"" if path.is_dir() else path.read_bytes())


ARCHIVES = {"erin.tar.gz": ("erin", make_tar_gz), "frank.zip": ("frank", make_zip)}


def build(output: Path = HERE) -> list[Path]:
    """Write every archive into output; returns their paths."""
    output.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (student, make) in ARCHIVES.items():
        make(SOURCE / student, output / name)
        written.append(output / name)
    return written


if __name__ == "__main__":
    for path in build(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE):
        print(path)
