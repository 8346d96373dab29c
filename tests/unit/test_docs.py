"""Docs made from code stay in step with it; exercises are found by number or name."""

import shlex
from pathlib import Path

import pytest

from checks import CATALOGUE, catalogue_markdown
from lab import exercises
from lab.errors import LabError

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_check_catalogue_doc_is_generated_from_the_definitions():
    assert (DOCS / "checks.md").read_text() == catalogue_markdown(), (
        "docs/checks.md is stale: python -m checks > docs/checks.md"
    )


def test_every_graded_exercise_names_sections_that_exist():
    sections = {cls.section for cls in CATALOGUE.values()}
    items = exercises.all_exercises()
    assert [e.number for e in items] == ["01", "02", "03", "04", "05", "06", "07"]
    for item in items:
        if item.graded_by != "not graded":
            named = shlex.split(item.graded_by.strip("`").removeprefix("lab check "))
            assert set(named) <= sections, (item.number, named)


@pytest.mark.parametrize("name", ["2", "02", "web-server", "02-web-server", "02-web-server.md"])
def test_exercises_by_number_or_name(name):
    assert exercises.find(name).slug == "web-server"


def test_unknown_exercise_lists_the_valid_ones():
    with pytest.raises(LabError, match="unknown exercise 'ha'; exercises: 01-servers"):
        exercises.find("ha")
