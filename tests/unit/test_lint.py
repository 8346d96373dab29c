"""The code stays ruff-clean (lint and format) and its functions short, in the test suite."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("args", [["check", "."], ["format", "--check", "."]])
def test_ruff(args):
    # ruff from this interpreter's environment: `.venv/bin/python -m pytest` puts no bin on PATH
    result = subprocess.run(
        [sys.executable, "-m", "ruff", *args], cwd=ROOT, capture_output=True, text=True
    )
    assert "No module named ruff" not in result.stderr, "ruff is a test dependency: .[test]"
    assert result.returncode == 0, result.stdout + result.stderr


MAX_LINES = 60  # the project's rule for functions in lab/, checks/ and provision/


def long_functions(root: Path, packages=("lab", "checks", "provision")) -> list[str]:
    """Every function under root's packages longer than MAX_LINES: path:line name (lines)."""
    found = []
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    lines = node.end_lineno - node.lineno + 1
                    if lines > MAX_LINES:
                        where = path.relative_to(root)
                        found.append(f"{where}:{node.lineno} {node.name} ({lines} lines)")
    return found


def test_no_function_over_sixty_lines():
    too_long = long_functions(ROOT)
    assert not too_long, "split these functions: " + "; ".join(too_long)


def test_a_function_over_sixty_lines_is_named(tmp_path):
    body = "".join(f"        x{n} = {n}\n" for n in range(MAX_LINES - 1))
    (tmp_path / "checks").mkdir()
    source = f"def short():\n    pass\n\n\nclass C:\n    def sixty(self):\n{body}"
    (tmp_path / "checks" / "m.py").write_text(source)
    assert long_functions(tmp_path) == []
    (tmp_path / "checks" / "m.py").write_text(source + "        x = 0\n")
    assert long_functions(tmp_path) == ["checks/m.py:6 sixty (61 lines)"]
