"""The code stays ruff-clean (lint and format), as part of the test suite."""

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
