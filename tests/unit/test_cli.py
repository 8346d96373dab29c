"""Bad input gets one clear line and a non-zero exit code, never a traceback."""

import io
import re
import subprocess
import sys

import pytest

from lab.cli.render import make_console, status_table
from lab.providers.base import HostStatus


def assert_one_clear_error(result, text):
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert text in result.stderr
    assert result.stderr.startswith("error: ")


def test_help_lists_every_command_in_order_with_its_own_help(capsys):
    from lab.cli import app as cli

    with pytest.raises(SystemExit) as done:
        cli.main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    listing = out[out.index("  COMMAND\n") : out.index("options:")]
    listed = re.findall(r"^    (\S+)\s+(.*)$", listing, re.MULTILINE)
    modules = cli.command_modules()
    assert [name for name, _ in listed] == list(modules)
    assert list(modules)[:4] == ["up", "status", "provision", "check"]
    text = " ".join(listing.split())
    for module in modules.values():
        assert " ".join(module.HELP.split()) in text


def test_malformed_topology(run_lab, tmp_path):
    bad = tmp_path / "lab.yml"
    bad.write_text("name: [\n")
    assert_one_clear_error(run_lab("--topology", str(bad), "status"), "cannot read topology")


def test_missing_topology(run_lab, tmp_path):
    assert_one_clear_error(run_lab("--topology", str(tmp_path / "no.yml"), "up"), "not found")


def test_unknown_host_lists_valid_ones(run_lab, tmp_path):
    result = run_lab("ssh", "web-03", env={"LAB_HOME": tmp_path})
    assert_one_clear_error(result, "unknown host 'web-03'; this lab has: lb-01, web-01, web-02")


@pytest.mark.parametrize("command", [["ssh", "web-01"], ["ssh-config"], ["check"], ["provision"]])
def test_commands_on_a_lab_that_is_not_up(run_lab, tmp_path, command):
    assert_one_clear_error(run_lab(*command, env={"LAB_HOME": tmp_path}), "is not up")


def test_status_of_a_lab_that_is_not_up(run_lab, tmp_path):
    result = run_lab("status", env={"LAB_HOME": tmp_path})
    assert result.returncode == 0 and "not up" in result.stdout


def test_status_table_renders_in_80_columns():
    console = make_console(width=80, record=True, file=io.StringIO())
    rows = [HostStatus("web-01", "192.168.56.11", "running", "lxc")]
    console.print(status_table(rows, "webstack"))
    text = console.export_text()
    assert "web-01" in text and "192.168.56.11" in text and "running" in text
    assert max(len(line) for line in text.splitlines()) <= 80


def test_unknown_check_section_is_one_clear_error(run_lab, tmp_path):
    assert_one_clear_error(
        run_lab("check", "cache", env={"LAB_HOME": tmp_path}), "unknown check or section"
    )


def test_hosts_lines_point_the_domain_at_the_load_balancer(run_lab, tmp_path):
    out = run_lab("hosts", env={"LAB_HOME": tmp_path}).stdout
    assert "192.168.56.10\tfoobar.com www.foobar.com" in out
    assert "192.168.56.12\tweb-02" in out


def test_ctrl_c_while_the_commands_are_imported_is_a_quiet_exit(monkeypatch):
    from lab.cli import app as cli

    def interrupted(argv=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupted)
    assert cli.main(["check"]) == 130


def test_snapshot_restore_takes_yes(run_lab, tmp_path):
    assert_one_clear_error(
        run_lab("snapshot", "restore", "x", "--yes", env={"LAB_HOME": tmp_path}), "is not up"
    )


def _snapshot(home, lab_name: str, name: str, meta: str | None = None) -> None:
    directory = home / "snapshots" / lab_name / name
    (directory / "web-01").mkdir(parents=True)
    default = f'{{"name": "{name}", "lab": "{lab_name}", "provider": "lxc", "created": 1.0}}'
    (directory / "meta.json").write_text(default if meta is None else meta)


def test_snapshots_of_labs_that_are_gone_are_listed_and_can_be_deleted(
    tmp_path, monkeypatch, capsys
):
    from types import SimpleNamespace

    from lab.cli import app as cli

    monkeypatch.setenv("LAB_HOME", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "200")

    def lab(*args, **_):
        code = cli.main([*args, "--no-color"])
        out = capsys.readouterr()
        return SimpleNamespace(returncode=code, stdout=out.out, stderr=out.err)

    _snapshot(tmp_path, "old-class", "before-lb")
    _snapshot(tmp_path, "old-class", "broken", meta="{not json")  # a save cut short
    _snapshot(tmp_path, "still-up", "mine")
    (tmp_path / "labs" / "still-up").mkdir(parents=True)
    (tmp_path / "labs" / "still-up" / "state.json").write_text("{}")
    listed = lab("snapshot", "list")
    assert listed.returncode == 0, listed.stderr
    assert "snapshots of labs that no longer exist" in listed.stdout
    rows = [line for line in listed.stdout.splitlines() if "old-class" in line]
    assert len(rows) == 2 and "unreadable" in rows[1], listed.stdout
    assert "still-up" not in listed.stdout  # a lab that exists lists its own
    assert "lab snapshot delete NAME --lab LAB" in listed.stdout
    refused = lab("snapshot", "delete", "mine", "--lab", "still-up")
    assert_one_clear_error(refused, "lab 'still-up' exists")
    gone = lab("snapshot", "delete", "--all", "--lab", "old-class")
    assert gone.returncode == 0, gone.stderr
    assert "'before-lb' of lab 'old-class' deleted" in gone.stdout
    assert not (tmp_path / "snapshots" / "old-class").exists()
    listed = lab("snapshot", "list")
    assert "no longer exist" not in listed.stdout
    assert (tmp_path / "snapshots" / "still-up" / "mine" / "meta.json").is_file()


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_question_without_a_terminal_is_refused_and_names_yes(monkeypatch):
    from types import SimpleNamespace

    from lab.cli.confirm import confirm
    from lab.core.errors import LabError

    asked = SimpleNamespace(args=SimpleNamespace(yes=False), console=make_console())
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n" * 100))  # piped, e.g. from `yes`
    with pytest.raises(LabError, match="work is lost: not without --yes") as refused:
        confirm(asked, "work is lost", "Go on?")
    assert refused.value.hint == "run it again with --yes"
    monkeypatch.setattr("sys.stdin", _Terminal(""))  # Ctrl-D at the question
    with pytest.raises(LabError, match="nothing changed"):
        confirm(asked, "work is lost", "Go on?")
    monkeypatch.setattr("sys.stdin", _Terminal("y\n"))
    confirm(asked, "work is lost", "Go on?")
    confirm(SimpleNamespace(args=SimpleNamespace(yes=True)), "work is lost", "Go on?")


@pytest.mark.parametrize("quiet", [True, False])
def test_paramikos_own_error_lines_never_reach_the_users_stderr(quiet):
    """Ctrl-C during a login made paramiko's thread print a traceback after `error: interrupted`."""
    code = (
        "import logging\n"
        "from lab.cli.app import quiet_library_logs\n"
        + ("quiet_library_logs()\n" if quiet else "")
        + "logging.getLogger('paramiko.transport').error('Error reading SSH protocol banner')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert ("banner" in result.stderr) is not quiet, result.stderr  # without: Python prints it
