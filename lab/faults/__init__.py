"""Fault scenarios for a running lab: break one thing, watch the site, restore it, count."""

from __future__ import annotations

from lab.core.errors import LabError
from lab.faults.scenarios import ALL, Scenario

SCENARIOS: dict[str, Scenario] = {cls.name: cls() for cls in ALL}


def find(name: str) -> Scenario:
    """The scenario called name; an unknown name is one line listing the known ones."""
    if name not in SCENARIOS:
        raise LabError(f"unknown scenario {name!r}; scenarios: {', '.join(SCENARIOS)}")
    return SCENARIOS[name]
