"""Every check names the type of its observation (judge's annotation, observe's return), and
every observation recorded from a lab has that type's shape. The end-to-end tests hold every
live observation to it as well (LAB_STRICT_SHAPES), and tests.helpers.judge every one a test
builds."""

from __future__ import annotations

import json
import typing
from typing import Any

import pytest

from checks import CATALOGUE
from tests.helpers import OBSERVATIONS


@pytest.mark.parametrize("check_id", sorted(CATALOGUE))
def test_every_check_names_the_type_of_its_observation(check_id):
    check = CATALOGUE[check_id]
    shape = check.observation_type()
    assert shape is not Any and shape is not dict, f"{check_id}: judge takes an untyped observation"
    assert typing.get_type_hints(check.observe).get("return") == shape


def owner(stem: str) -> str:
    """The check a recording belongs to: ID.json, or ID-CASE.json."""
    return max((c for c in CATALOGUE if stem == c or stem.startswith(f"{c}-")), key=len)


@pytest.mark.parametrize("path", sorted(OBSERVATIONS.glob("*.json")), ids=lambda p: p.stem)
def test_every_recorded_observation_has_its_checks_shape(path):
    check = CATALOGUE[owner(path.stem)]()
    assert check.shape_problems(json.loads(path.read_text())) == []
