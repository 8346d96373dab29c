"""The check catalogue: one small class per requirement of the design document."""

from checks import app, database, dns, files, http, lb, servers, web  # noqa: F401 (registers)
from checks.base import SECTIONS, Check

CATALOGUE: dict[str, type[Check]] = dict(
    sorted(Check.registry.items(), key=lambda item: SECTIONS.index(item[1].section))
)
