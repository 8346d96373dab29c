"""Fixtures the unit tests share."""

from __future__ import annotations

import pytest

from checks.base import Check


@pytest.fixture
def own_registry(monkeypatch) -> dict[str, type[Check]]:
    """A copy of Check.registry for one test: the checks it defines are gone after it."""
    monkeypatch.setattr(Check, "registry", dict(Check.registry))
    return Check.registry
