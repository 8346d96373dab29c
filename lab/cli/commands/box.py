"""`lab box build`: the lab's Debian 12 box for Vagrant's lxc provider."""

from __future__ import annotations

from lab.core.errors import ExitCode
from lab.core.system import require_root
from lab.providers.vagrant import VagrantProvider

HELP = "build the lab's Debian 12 box for Vagrant's lxc provider: lab box build"
ORDER = 50  # its place in `lab --help`


def arguments(parser) -> None:
    parser.add_argument("action", choices=["build"], help="build (and add) the box")


def run(lab) -> ExitCode:
    require_root("lab box build")
    VagrantProvider(lab.topology, lab.state).build_box(lab.reporter)
    return ExitCode.OK
