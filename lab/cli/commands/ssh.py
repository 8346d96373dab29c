"""`lab ssh HOST [-- CMD]`: a shell on a host, or one command."""

from __future__ import annotations

import argparse
import os
import sys

from lab.core.errors import ExitCode

HELP = "open a shell on a host, or run one command: lab ssh HOST -- CMD"
ORDER = 70  # its place in `lab --help`


def arguments(parser) -> None:
    parser.add_argument("host", help="host name, e.g. web-01")
    parser.add_argument(
        "remote",
        nargs=argparse.REMAINDER,
        metavar="-- CMD",
        help="command to run instead of a shell",
    )


def run(lab) -> ExitCode:
    host = lab.topology.host(lab.args.host)
    lab.require_up()
    config = lab.state.ssh_config_file
    if not config.is_file():
        lab.write_ssh_config()
    command = lab.args.remote[1:] if lab.args.remote[:1] == ["--"] else lab.args.remote
    argv = ["ssh", "-F", str(config), *([] if command else ["-t"]), host.name, *command]
    sys.stdout.flush()
    os.execvp("ssh", argv)
