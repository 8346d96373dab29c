"""`lab completion SHELL`: the shell code that makes TAB complete lab's commands and arguments.

Completion runs through argcomplete: the shell calls `lab` itself, which answers from its parser.
`attach` gives every argument, in every command present or future, its candidates by the
argument's name (dest): host(s), what/check(s), exercise(s), component(s); the positional
arguments of the `exercise` command complete exercises.
"""

from __future__ import annotations

import argparse
import sys

import argcomplete
from argcomplete.completers import FilesCompleter

from lab.core.errors import ExitCode, LabError

HELP = "print the shell code that makes TAB complete lab's commands and arguments"
SHELLS = ("bash", "zsh", "fish", "powershell")
ORDER = 120  # its place in `lab --help`


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("shell", choices=SHELLS, help="the shell to complete in")


def run(lab) -> ExitCode:
    sys.stdout.write(argcomplete.shellcode(["lab"], shell=lab.args.shell))
    return ExitCode.OK


def hosts(prefix: str = "", parsed_args=None, **_) -> list[str]:
    """The hosts of the topology the line names (--topology), else the one lab would use."""
    from lab.core import topology

    try:
        found = topology.find_topology_file(getattr(parsed_args, "topology", None))
        return topology.load(found).names
    except LabError:
        return []


def checks(prefix: str = "", **_) -> list[str]:
    """Check ids and sections, as `lab check` takes them."""
    from checks import CATALOGUE
    from checks.base import SECTIONS

    return [*CATALOGUE, *SECTIONS]


def exercises(prefix: str = "", **_) -> list[str]:
    """Exercise numbers and names."""
    from lab.course.exercises import all_exercises

    found = all_exercises()
    return [exercise.number for exercise in found] + [exercise.slug for exercise in found]


def components(prefix: str = "", **_) -> list[str]:
    """The reference build's components."""
    from provision import COMPONENTS

    return list(COMPONENTS)


BY_DEST = {
    "host": hosts,
    "hosts": hosts,
    "what": checks,
    "check": checks,
    "checks": checks,
    "exercise": exercises,
    "exercises": exercises,
    "components": components,
    "topology": FilesCompleter(("yml", "yaml")),
}


def attach(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> None:
    """Give each argument of parser and its subcommands its completer (see the module doc)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                attach(sub, (*path, name))
        elif action.choices is None and not hasattr(action, "completer"):
            completer = BY_DEST.get(action.dest)
            if completer is None and "exercise" in path[:1] and not action.option_strings:
                completer = exercises
            if completer is not None:
                action.completer = completer
