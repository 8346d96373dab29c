"""What several test modules share: the observations recorded from reference labs, a check's
judgement of one, and a provider with layers that keeps only its bookkeeping."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from checks import CATALOGUE
from checks.base import Verdict

# `python -m tests.record --observations` records them again from a live reference lab
OBSERVATIONS = Path(__file__).parent / "unit" / "fixtures" / "observations"


def recorded(check_id: str) -> Any:
    """The observation check_id made on a reference lab (or the recording named so)."""
    return json.loads((OBSERVATIONS / f"{check_id}.json").read_text())


def judge(check_id: str, observation: Any) -> Verdict:
    """check_id's judgement of observation, which must have the check's observation type."""
    check = CATALOGUE[check_id]()
    problems = check.shape_problems(observation)
    assert not problems, f"{check_id}: a test's observation is not of its type: {problems}"
    return check.judge(observation)


class SlotProvider:
    """A provider with layers for one lab: what it restored and saved, nothing more."""

    name, layers = "fake", True

    def __init__(self):
        self.restored, self.in_use = [], set()

    def base_id(self):
        return "image@1"

    def restore_layers(self, layers, progress):
        self.restored.append(layers)

    def save_layer(self, directory, progress):
        (directory / "web-01").mkdir()
        below = self.restored[-1].get("web-01", []) if self.restored else []
        return {"web-01": [directory / "web-01", *below]}

    def layers_in_use(self):
        return self.in_use
