"""The CLI acts like familiar tools: global options anywhere, completion, NO_COLOR, JSON, init."""

from __future__ import annotations

import argparse
import io
import ipaddress
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from checks import CATALOGUE
from checks.base import SECTIONS
from lab.cli import app as cli
from lab.cli.commands import init
from lab.cli.render import make_console
from lab.core import topology
from lab.core.errors import LabError
from lab.core.state import LabState
from lab.course.exercises import all_exercises
from lab.providers.base import HostStatus

LAB = Path(sys.executable).with_name("lab")


def subparsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """Every (sub)command parser under parser, with its command path."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*path, name), sub
                yield from subparsers(sub, (*path, name))


def options(parser: argparse.ArgumentParser) -> set[str]:
    return {option for action in parser._actions for option in action.option_strings}


def test_every_command_takes_the_global_options():
    found = list(subparsers(cli.build_parser()))
    assert {path[0] for path, _ in found} == set(cli.command_modules())
    for path, sub in found:
        assert {"--topology", "--no-color"} <= options(sub), path


def test_commands_added_later_and_nested_take_them_too():
    parser = cli.LabParser(prog="lab", top_level=True)
    nested = parser.add_subparsers(dest="cmd").add_parser("exercise")
    nested.add_subparsers(dest="action").add_parser("start").add_argument("number")
    args = parser.parse_args(["exercise", "start", "05", "--topology", "F", "--no-color"])
    assert (args.number, args.topology, args.no_color) == ("05", "F", True)


@pytest.mark.parametrize(
    ("argv", "topology_file", "no_color"),
    [
        (["check", "--topology", "F"], "F", False),
        (["--topology", "F", "check"], "F", False),
        (["--topology", "A", "check", "--topology", "B"], "B", False),
        (["check", "--list", "--no-color"], None, True),
        (["--no-color", "status"], None, True),
        (["status"], None, False),
    ],
)
def test_global_options_anywhere_on_the_line(argv, topology_file, no_color):
    args = cli.build_parser().parse_args(argv)
    assert (args.topology, args.no_color) == (topology_file, no_color)


def _printed(monkeypatch, no_color_env: str | None, **kwargs) -> str:
    if no_color_env is None:
        monkeypatch.delenv("NO_COLOR", raising=False)
    else:
        monkeypatch.setenv("NO_COLOR", no_color_env)
    out = io.StringIO()
    console = make_console(file=out, force_terminal=True, **kwargs)
    console.print("[fail]failed[/] [ok]passed[/]")
    return out.getvalue()


def test_colour_on_a_terminal_unless_no_color(monkeypatch):
    red = "\x1b[1;31m"
    assert red in _printed(monkeypatch, None)
    assert red in _printed(monkeypatch, "")  # NO_COLOR counts only when non-empty
    for text in (_printed(monkeypatch, "1"), _printed(monkeypatch, None, no_color=True)):
        assert "failed" in text
        assert "31m" not in text
        assert "32m" not in text


def test_no_color_reaches_every_console(monkeypatch, capsys, tmp_path):
    made = []
    real = cli.render.make_console

    def spy(**kwargs):
        made.append(kwargs.get("no_color"))
        return real(**kwargs)

    monkeypatch.setattr(cli.render, "make_console", spy)
    monkeypatch.setenv("LAB_HOME", str(tmp_path))
    assert cli.main(["status", "--no-color"]) == 0
    assert made == [True, True]


def _status_json(capsys, argv) -> dict:
    assert cli.main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_status_json_when_the_lab_is_not_up(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("LAB_HOME", str(tmp_path))
    status = _status_json(capsys, ["status", "--json", "--topology", str(topology.PACKAGED)])
    assert status["lab"] == "webstack"
    assert status["up"] is False
    assert status["provider"] is None
    assert [(h["name"], h["address"], h["state"]) for h in status["hosts"]] == [
        ("lb-01", "192.168.56.10", "absent"),
        ("web-01", "192.168.56.11", "absent"),
        ("web-02", "192.168.56.12", "absent"),
    ]


def test_status_json_when_the_lab_is_up(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("LAB_HOME", str(tmp_path))
    LabState("webstack").save(provider="lxc")

    class Running:
        name = "lxc"

        def __init__(self, topology, state):
            self.topology = topology

        def status(self):
            return [HostStatus(h.name, h.address, "running", "lxc") for h in self.topology.hosts]

    monkeypatch.setattr(cli.providers, "load", lambda name, topo, state: Running(topo, state))
    status = _status_json(capsys, ["--topology", str(topology.PACKAGED), "status", "--json"])
    assert (status["up"], status["provider"]) == (True, "lxc")
    assert {h["state"] for h in status["hosts"]} == {"running"}
    assert status["hosts"][0] == {
        "name": "lb-01",
        "address": "192.168.56.10",
        "state": "running",
        "provider": "lxc",
    }


# -- completion: bash's own completion function, on partial lines ---------------------------


def complete(lines: list[str], tmp_path: Path, capsys) -> list[set[str]]:
    """The candidates bash offers for each partial line (cursor at its end), found in parallel."""
    assert cli.main(["completion", "bash"]) == 0
    (tmp_path / "lab.bash").write_text(capsys.readouterr().out)
    body = [f"source {tmp_path / 'lab.bash'}"]
    for number, line in enumerate(lines):
        words = line.split(" ")
        body.append(
            f"( COMP_LINE='{line}'; COMP_POINT={len(line)}; COMP_TYPE=9; "
            f"COMP_WORDS=({' '.join(repr(w) for w in words)}); COMP_CWORD={len(words) - 1}; "
            f'_python_argcomplete lab; printf "%s\\n" "${{COMPREPLY[@]}}" > {number}.out ) &'
        )
    body.append("wait")
    env = {**os.environ, "PATH": f"{LAB.parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("LAB_TOPOLOGY", None)
    result = subprocess.run(
        ["bash", "-c", "\n".join(body)], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    outputs = [(tmp_path / f"{number}.out").read_text() for number in range(len(lines))]
    return [{word for word in out.splitlines() if word} for out in outputs]


@pytest.mark.skipif(not shutil.which("bash"), reason="bash is not installed")
def test_bash_completes_commands_hosts_checks_and_exercises(tmp_path, capsys):
    other = tmp_path / "other.yml"
    data = yaml.safe_load(topology.PACKAGED.read_text())
    data["hosts"]["db-01"] = {"address": "192.168.56.20", "roles": []}
    other.write_text(yaml.safe_dump(data))
    commands, hosts, checks, exercises = complete(
        ["lab s", f"lab --topology {other} ssh ", "lab check --no-color d", "lab exercise 0"],
        tmp_path,
        capsys,
    )
    every_command = list(cli.command_modules())
    assert commands == {name for name in every_command if name.startswith("s")}
    assert {"ssh", "ssh-config", "status"} <= commands
    assert hosts == {"lb-01", "web-01", "web-02", "db-01"}  # from the topology on the line
    assert checks == {c for c in [*CATALOGUE, *SECTIONS] if c.startswith("d")}
    assert {"db.replication", "dns.www", "database", "domain"} <= checks
    assert exercises == {e.number for e in all_exercises() if e.number.startswith("0")}
    assert len(exercises) >= 7


def test_completion_prints_code_for_each_shell(capsys):
    for shell in ("bash", "zsh", "fish", "powershell"):
        assert cli.main(["completion", shell]) == 0
        assert "lab" in capsys.readouterr().out


# -- lab init --------------------------------------------------------------------------------


def test_free_subnet_skips_taken_networks_and_routes_in_use():
    taken = [ipaddress.IPv4Network("192.168.56.0/24")]
    routes = {ipaddress.IPv4Network("192.168.57.0/24")}
    assert str(init.free_subnet(taken, lambda subnet: subnet in routes)) == "192.168.58.0/24"
    with pytest.raises(LabError, match="no free"):
        init.free_subnet(taken, lambda subnet: True)


def test_free_name_prefers_the_directory_then_webstack_n():
    assert init.free_name("second", {"webstack"}) == "second"
    assert init.free_name("Second Lab!", {"webstack"}) == "webstack2"
    assert init.free_name("webstack", {"webstack", "webstack2"}) == "webstack3"


def _init(monkeypatch, tmp_path, *argv) -> int:
    monkeypatch.setenv("LAB_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(init, "in_use", lambda subnet: str(subnet) == "192.168.57.0/24")
    return cli.main(["init", *argv, "--topology", str(topology.PACKAGED)])


def test_init_writes_a_second_lab_beside_the_first(monkeypatch, tmp_path, capsys):
    assert _init(monkeypatch, tmp_path, str(tmp_path / "second")) == 0
    written = tmp_path / "second" / "lab.yml"
    second = topology.load(written)
    first = topology.load(topology.PACKAGED)
    assert second.name == "second"
    assert str(second.subnet) == "192.168.58.0/24"
    assert [h.address for h in second.hosts] == ["192.168.58.10", "192.168.58.11", "192.168.58.12"]
    assert [(h.name, h.roles) for h in second.hosts] == [(h.name, h.roles) for h in first.hosts]
    assert written.read_text().startswith("# A webstack lab of its own")
    assert "wrote" in capsys.readouterr().out

    assert _init(monkeypatch, tmp_path, str(tmp_path / "second")) == 2
    assert "already exists; not overwriting" in capsys.readouterr().err
    assert topology.load(written).name == "second"


def test_init_refuses_a_name_in_use_and_a_bad_subnet(monkeypatch, tmp_path, capsys):
    (tmp_path / "home" / "labs" / "taken").mkdir(parents=True)
    assert _init(monkeypatch, tmp_path, str(tmp_path / "a"), "--name", "taken") == 2
    assert "lab name 'taken' is taken" in capsys.readouterr().err
    assert _init(monkeypatch, tmp_path, str(tmp_path / "b"), "--subnet", "192.168.56.0/24") == 2
    assert "overlaps" in capsys.readouterr().err
    assert _init(monkeypatch, tmp_path, str(tmp_path / "c"), "--subnet", "10.0.0.1/24") == 2
    assert "--subnet '10.0.0.1/24'" in capsys.readouterr().err
    assert not any((tmp_path / d / "lab.yml").exists() for d in "abc")
