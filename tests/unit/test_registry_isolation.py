"""Checks a test defines stay out of the catalogue, whatever order the tests run in."""

from checks import CATALOGUE
from checks.base import Check


def test_the_catalogue_and_the_registry_hold_only_the_checks_packages_own():
    assert [c for c in CATALOGUE.values() if not c.__module__.startswith("checks.")] == []
    assert [i for i, c in Check.registry.items() if not c.__module__.startswith("checks.")] == []
