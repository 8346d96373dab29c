"""Fixtures the unit tests share."""

from __future__ import annotations

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
