"""Run commands on the machine running `lab` (never through a shell) with readable failures."""

from __future__ import annotations

import shutil
import subprocess

from lab.core import platform
from lab.core.errors import LabError


def run(args: list[str], *, input: str | None = None, check: bool = True, timeout: float = 600):
    """Run a command; on failure raise a LabError quoting its last error lines."""
    try:
        result = subprocess.run(
            args, input=input, capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError:
        raise LabError(f"{args[0]} is not installed", hint="run `lab doctor`") from None
    except subprocess.TimeoutExpired:
        raise LabError(f"{' '.join(args[:3])} did not finish within {timeout:.0f} s") from None
    if check and result.returncode != 0:
        raise LabError(f"{' '.join(args[:3])} failed: {last_lines(result.stderr or result.stdout)}")
    return result


def last_lines(text: str, count: int = 3) -> str:
    """The last non-empty lines of a command's output, joined on one line."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return " | ".join(lines[-count:]) or "(no output)"


def require_root(what: str) -> None:
    """Refuse clearly when not root."""
    if not platform.is_root():
        raise LabError(f"{what} needs root; run it with sudo")


def require_tools(*tools: str, package_hint: str) -> None:
    """Refuse clearly when a command-line tool is missing."""
    missing = [tool for tool in tools if not shutil.which(tool)]
    if missing:
        raise LabError(f"missing {', '.join(missing)}", hint=f"install it: {package_hint}")
