"""Fixtures the unit tests share."""

from __future__ import annotations

import io
import subprocess

import pytest

from checks.base import Check


@pytest.fixture
def own_registry(monkeypatch) -> dict[str, type[Check]]:
    """A copy of Check.registry for one test: the checks it defines are gone after it."""
    monkeypatch.setattr(Check, "registry", dict(Check.registry))
    return Check.registry


@pytest.fixture
def define_check(own_registry):
    """Make a check for one test from its id, section, observe and judge (texts filled in)."""

    def define(check_id: str, section: str, observe, judge, **attrs) -> type[Check]:
        texts = {"title": check_id, "requirement": "-", "points": 5, "hint": "-"}
        body = {"id": check_id, "section": section, "observe": observe, "judge": judge}
        return type(check_id, (Check,), {**texts, **body, **attrs})

    return define


@pytest.fixture
def run_lab(monkeypatch, capsys):
    """`lab ARGS` through the CLI's main() in this process, with env added to the environment,
    in cwd and with no terminal on its input: a CompletedProcess of its exit code, output and
    error output, as `python -m lab` gives them (test_forked_runner compares main() in a process
    of its own with `python -m lab`; test_docs and test_cli_polish start the real ones)."""
    from lab.cli import app as cli

    def run(*args: str, env: dict | None = None, cwd=None) -> subprocess.CompletedProcess:
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, str(value))
        if cwd is not None:
            monkeypatch.chdir(cwd)
        monkeypatch.setattr("sys.stdin", io.StringIO(""))  # as from /dev/null
        capsys.readouterr()
        try:
            code = cli.main(list(args))
        except SystemExit as exit_:  # argparse: a usage error, --help
            code = exit_.code
        out = capsys.readouterr()
        return subprocess.CompletedProcess(["lab", *args], code, out.out, out.err)

    return run
