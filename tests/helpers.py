"""What several test modules share: the observations recorded from reference labs, and a check's
judgement of one."""

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
    """check_id's judgement of observation."""
    return CATALOGUE[check_id]().judge(observation)
