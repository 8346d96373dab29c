"""The commands: one module each, found here by name. A module has HELP, ORDER (its place in
`lab --help`), arguments(parser) and run(lab) -> ExitCode; the command is the module's name,
dashes for underscores."""

from __future__ import annotations

import importlib
import pkgutil

from lab import providers


def names() -> dict[str, str]:
    """Every command by name → its module's name, without importing any."""
    return {m.name.replace("_", "-"): m.name for m in pkgutil.iter_modules(__path__)}


def load(wanted: set[str] | None = None) -> dict:
    """The command modules (only the wanted ones, when given) by name, in ORDER."""
    found = {
        command: importlib.import_module(f"{__name__}.{module}")
        for command, module in names().items()
        if wanted is None or command in wanted
    }
    return dict(sorted(found.items(), key=lambda item: item[1].ORDER))


def provider_option(parser) -> None:
    """--provider, for the commands that choose where hosts come from."""
    parser.add_argument(
        "--provider",
        choices=providers.available(),
        help="where hosts come from (default: lab.yml, else the machine's)",
    )
