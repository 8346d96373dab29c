"""The quiz bank: the shipped one is valid, and a broken one gets one clear line per mistake."""

from __future__ import annotations

import copy

import pytest

from lab import quiz
from lab.errors import LabError
from lab.topology import parse

GOOD = {
    "topics": {"dns": "record types"},
    "questions": [
        {
            "id": "record",
            "topic": "dns",
            "experiment": "www-record",
            "question": "What does www.{domain} have?",
            "choices": [
                {"text": "an A record", "observed": "A"},
                {"text": "a CNAME", "observed": "CNAME", "correct": True},
                {"text": "a CNAME holding an address", "why": "a CNAME holds a name"},
            ],
            "explanation": "A CNAME holds another name.",
        },
        {
            "id": "servers",
            "topic": "dns",
            "question": "How many servers?",
            "choices": [{"text": "two"}, {"text": "three", "correct": True}],
            "explanation": "The load balancer is a server too.",
        },
    ],
}


def broken(change) -> dict:
    data = copy.deepcopy(GOOD)
    change(data)
    return data


def test_the_shipped_bank_is_valid_and_covers_the_design():
    bank = quiz.load_bank()
    assert len({q.id for q in bank.questions}) == len(bank.questions)
    assert {q.topic for q in bank.questions} == set(bank.topics)
    observed = {q.experiment for q in bank.questions if q.experiment}
    assert observed == set(quiz.EXPERIMENTS)  # every experiment is asked about
    texts = " ".join(c.why for q in bank.questions for c in q.choices)
    assert "a CNAME cannot hold an IP address" in texts
    assert "the design has three" in texts


def test_a_good_bank_parses():
    bank = quiz.parse_bank(GOOD)
    record = bank.question("record")
    assert record.design_letter == "b"
    assert record.letter_observed("A", {}) == "a"
    assert record.letter_observed("MX", {}) is None


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d.pop("topics"), "topics: expected a mapping"),
        (lambda d: d["questions"][0].update(id="Bad Id"), "id must be lowercase"),
        (lambda d: d["questions"][1].update(id="record"), "the id is used twice"),
        (lambda d: d["questions"][0].update(topic="nope"), "topic 'nope' is not one of dns"),
        (lambda d: d["questions"][0].update(experiment="nope"), "unknown experiment 'nope'"),
        (lambda d: d["questions"][0].update(colour="red"), "unknown key 'colour'"),
        (lambda d: d["questions"][0]["choices"][1].pop("correct"), "exactly one choice"),
        (lambda d: d["questions"][1]["choices"][0].update(correct=True), "exactly one choice"),
        (lambda d: d["questions"][1]["choices"][0].update(observed="x"), "observed needs"),
        (lambda d: d["questions"][0]["choices"][1].pop("observed"), "must say what the lab"),
        (lambda d: d["questions"][1].update(choices=[{"text": "x", "correct": True}]), "2 to 6"),
        (lambda d: d["questions"][1].update(explanation=""), "explanation must be"),
        (lambda d: d["questions"][1].update(question="{web9} stops?"), "bad placeholder"),
        (lambda d: d["questions"][1]["choices"][0].update(size=1), "unknown key 'size'"),
    ],
)
def test_a_broken_bank_names_the_mistake(change, message):
    with pytest.raises(LabError) as caught:
        quiz.parse_bank(broken(change), "bank.yml")
    assert message in str(caught.value)
    assert str(caught.value).startswith("bank.yml: ")


def test_answers_from_flags_and_file(tmp_path):
    bank = quiz.parse_bank(GOOD)
    answers = tmp_path / "a.yml"
    answers.write_text("servers: B\n")
    assert quiz.parse_answers(bank, ["record=c"], str(answers)) == {"servers": "b", "record": "c"}
    with pytest.raises(LabError, match="not a choice; choose one of a, b"):
        quiz.parse_answers(bank, ["servers=c"], None)
    with pytest.raises(LabError, match="unknown question 'nope'"):
        quiz.parse_answers(bank, ["nope=a"], None)
    with pytest.raises(LabError, match="expected ID=CHOICE"):
        quiz.parse_answers(bank, ["record"], None)


def test_judged_by_the_lab_when_observed_else_by_the_design(tmp_path):
    bank = quiz.parse_bank(GOOD)
    record, servers = bank.question("record"), bank.question("servers")
    seen_a = quiz.Observation("A", "an A record")
    outcome = quiz.judge(record, "a", {}, seen_a)
    assert outcome.right and outcome.lab_differs
    assert quiz.judge(record, "b", {}, quiz.Observation("CNAME", "")).right
    assert quiz.judge(record, "b", {}, None).right  # lab not up: the design decides
    assert quiz.judge(record, "a", {}, quiz.Observation("MX", "")).right is None
    assert quiz.judge(servers, "a", {}, None).right is False
    saved = quiz.save_answers(tmp_path, [outcome, quiz.judge(servers, "a", {}, None)])
    assert saved["score"] == {"right": 1, "answered": 2}
    again = quiz.save_answers(tmp_path, [quiz.judge(servers, "b", {}, None)])
    assert again["score"] == {"right": 2, "answered": 2}  # the latest answer per question counts
    assert (tmp_path / quiz.ANSWERS_FILE).stat().st_mode & 0o777 == 0o600


def test_placeholders_take_the_lab_names():
    topology = parse(
        {
            "name": "t",
            "network": {"subnet": "192.168.9.0/24"},
            "hosts": {
                "front": {"address": "192.168.9.10", "roles": ["lb", "dns"]},
                "a": {"address": "192.168.9.11", "roles": ["web", "app", "db-primary"]},
                "b": {"address": "192.168.9.12", "roles": ["web", "app", "db-replica"]},
            },
        }
    )
    names = quiz.names_of(topology)
    assert (names["lb"], names["web1"], names["web2"], names["replica"]) == ("front", "a", "b", "b")
    assert quiz.fill("{lb} at {lb_address}", names) == "front at 192.168.9.10"


def test_without_a_terminal_or_answers_one_clear_line(tmp_path):
    import os
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "lab", "quiz"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env={**os.environ, "LAB_HOME": str(tmp_path)},
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: lab quiz asks its questions on a terminal")
    assert "--answer ID=CHOICE" in result.stderr and "Traceback" not in result.stderr
