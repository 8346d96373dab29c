"""`lab files app DIR`: write files the lab ships into a directory, from any install."""

from __future__ import annotations

import argparse
from pathlib import Path

from argcomplete.completers import DirectoriesCompleter
from rich.markup import escape

from lab.core import resources
from lab.core.errors import ExitCode, LabError

HELP = "write files the lab ships into a directory: lab files app DIR (the application's code)"
SHIPPED = {  # name → (where the install keeps it, what it is)
    "app": (resources.app_dir, "the application's code base (exercise 03)"),
}
ORDER = 210  # its place in `lab --help`


def arguments(parser: argparse.ArgumentParser) -> None:
    what = parser.add_argument("shipped", metavar="WHAT", help=f"one of: {', '.join(SHIPPED)}")
    what.completer = lambda **_: list(SHIPPED)
    where = parser.add_argument(
        "directory", metavar="DIR", help="where to write them (made if missing)"
    )
    where.completer = DirectoriesCompleter()
    parser.add_argument("--force", action="store_true", help="overwrite files already there")


def files_of(name: str) -> dict[str, bytes]:
    """What the lab ships under name, relative path → content: exactly what it deploys."""
    from provision.app import application_files

    if name not in SHIPPED:
        raise LabError(f"unknown files {name!r}; the lab ships: {', '.join(SHIPPED)}")
    found = application_files(SHIPPED[name][0]())
    if not found:
        raise LabError(f"no files in {SHIPPED[name][0]()}: this install of the lab is incomplete")
    return found


def write(files: dict[str, bytes], directory: Path, force: bool = False) -> list[Path]:
    """Write files under directory; refuse, before writing any, to overwrite without force."""
    if directory.exists() and not directory.is_dir():
        raise LabError(f"{directory} is not a directory")
    targets = [directory / rel for rel in files]
    present = [path for path in targets if path.exists() or path.is_symlink()]
    if present and not force:
        more = f" and {len(present) - 1} more" if len(present) > 1 else ""
        raise LabError(
            f"{present[0]}{more} already there: not overwritten",
            hint="--force overwrites them, or name another directory",
        )
    for path in present:
        if path.is_dir() and not path.is_symlink():
            raise LabError(f"{path} is a directory, where the lab has a file")
    try:
        for path, content in zip(targets, files.values(), strict=True):
            for parent in reversed(path.relative_to(directory).parents):
                if not (directory / parent).is_dir():  # made here: readable by all, as deployed
                    (directory / parent).mkdir(parents=True)
                    (directory / parent).chmod(0o755)
            path.unlink(missing_ok=True)  # a link is replaced, not written through
            path.write_bytes(content)
            path.chmod(0o644)  # whatever the umask: the application's user must read it
    except OSError as exc:
        raise LabError(f"cannot write {exc.filename or directory}: {exc.strerror or exc}") from None
    return targets


def run(lab) -> ExitCode:
    name, directory = lab.args.shipped, Path(lab.args.directory)
    files = files_of(name)
    write(files, directory, lab.args.force)
    lab.console.print(
        f"[ok]✓[/] {escape(str(directory))}: {len(files)} files, {SHIPPED[name][1]}"
        f" ({escape(', '.join(files))})",
        soft_wrap=True,  # the path stays whole, to copy
    )
    return ExitCode.OK
