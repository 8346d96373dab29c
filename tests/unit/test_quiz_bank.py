"""The quiz bank: the shipped one is valid, and a broken one gets one clear line per mistake."""

from __future__ import annotations

import copy
import io
import re
from pathlib import Path

import pytest
import yaml

from lab.core import resources, topology
from lab.core.errors import LabError
from lab.core.topology import parse
from lab.course import quiz

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
        (lambda d: d["questions"][0].update(topic=["dns"]), "topic ['dns'] is not one of dns"),
        (lambda d: d["questions"][0].update(experiment={}), "unknown experiment {}"),
        (lambda d: d["questions"][1]["choices"][0].update(why=3), "choice a: why must be a text"),
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


OTHER_NAMES = {
    "name": "t",
    "network": {"subnet": "192.168.9.0/24"},
    "hosts": {
        "front": {"address": "192.168.9.10", "roles": ["lb", "dns"]},
        "a": {"address": "192.168.9.11", "roles": ["web", "app", "db-primary"]},
        "b": {"address": "192.168.9.12", "roles": ["web", "app", "db-replica"]},
    },
}


def test_placeholders_take_the_lab_names():
    topology = parse(OTHER_NAMES)
    names = quiz.names_of(topology)
    assert (names["lb"], names["web1"], names["web2"], names["replica"]) == ("front", "a", "b", "b")
    assert quiz.fill("{lb} at {lb_address}", names) == "front at 192.168.9.10"


def test_without_a_terminal_or_answers_one_clear_line(run_lab, tmp_path):
    result = run_lab("quiz", env={"LAB_HOME": tmp_path})
    assert result.returncode == 2
    assert result.stderr.startswith("error: lab quiz asks its questions on a terminal")
    assert "--answer ID=CHOICE" in result.stderr and "Traceback" not in result.stderr


def test_the_list_shows_the_questions_as_the_lab_asks_them():
    """`lab quiz --list` fills the placeholders with the lab's names and addresses."""
    from rich.console import Console

    from lab.cli.render.quiz import question_table

    bank = quiz.load_bank()
    names = quiz.names_of(parse(OTHER_NAMES))
    out = io.StringIO()
    Console(file=out, width=400, color_system=None).print(
        question_table(bank, list(bank.questions), names)
    )
    shown = out.getvalue()
    assert not re.search(r"\{[a-z_0-9]+\}", shown), shown
    assert "The first request through front went to a." in shown
    assert "holding 192.168.9.10" in shown  # {lb_address}, in cname-or-a


def test_lab_quiz_list_names_the_lab_it_runs_for(run_lab, tmp_path):
    topology = tmp_path / "other.yml"
    topology.write_text(yaml.safe_dump(OTHER_NAMES))
    env = {"LAB_HOME": tmp_path, "LAB_TOPOLOGY": topology, "COLUMNS": "400"}
    result = run_lab("quiz", "--list", env=env)
    assert result.returncode == 0, result.stderr
    assert "{lb}" not in result.stdout and "{web1}" not in result.stdout
    assert "The first request through front went to a." in result.stdout


def choice(question: quiz.Question, words: str) -> quiz.Choice:
    """The one choice of question whose text holds words."""
    found = [c for c in question.choices if words in c.text]
    assert len(found) == 1, (question.id, words, [c.text for c in question.choices])
    return found[0]


def test_the_design_questions_have_the_designs_answers():
    bank = quiz.load_bank()
    # a CNAME: the address in one place; www: a name of the web site's own; the databases on
    # the web servers: fewer machines, at the price of failing together
    assert choice(bank.question("cname-or-a"), "the address is then written once").correct
    assert not choice(bank.question("cname-or-a"), "resolves faster").correct
    assert not choice(bank.question("cname-or-a"), "at the apex").correct
    apex = bank.question("why-www")
    assert choice(apex, "A record with {lb}'s address").correct
    assert not choice(apex, "only the zone's SOA and NS").correct
    assert "names the web site apart from the domain" in apex.explanation
    shared = bank.question("databases-on-web-servers")
    assert choice(shared, "every write go together").correct
    assert not choice(shared, "costs nothing").correct
    assert {q.topic for q in (bank.question("cname-or-a"), bank.question("why-www"))} == {"dns"}


def test_the_answers_the_issue_found_wrong_are_wrong_with_the_reason():
    bank = quiz.load_bank()
    # sticky sessions keep a user on the replica's host: they do not give read-your-writes
    stale = bank.question("read-your-writes")
    sticky = choice(stale, "sticky sessions")
    assert not sticky.correct and "still reads the replica" in sticky.why
    assert "sticky" not in stale.explanation
    # the primary dies: web-01's reads fail too, and HAProxy keeps it in the rotation
    dies = bank.question("primary-dies")
    right = next(c for c in dies.choices if c.correct)
    assert "through {primary} fails too" in right.text
    assert "HAProxy keeps it in the rotation" in dies.explanation
    assert not choice(dies, "every web server still shows the guestbook").correct
    assert not choice(dies, "HAProxy takes {primary} out").correct
    # a firewall admits what the design needs; letting in only HTTP and SSH cuts the site off
    firewall = bank.question("firewall")
    assert "cut the site off from itself" in firewall.explanation
    assert all(w in firewall.explanation for w in ("DNS", "Nginx from the load balancer", "MySQL"))
    # DNS lives on the load balancer: several A records do not remove that single point
    stops = bank.question("haproxy-stops")
    assert "or several A records" not in stops.explanation
    assert "the DNS server runs on {dns} too" in stops.explanation


def test_the_pages_the_bank_points_to_exist():
    """Explanations cite docs/PAGE.md#anchor: each page and anchor exists."""
    from tests.unit.test_docs import anchors

    bank = quiz.load_bank()
    texts = [q.explanation for q in bank.questions]
    texts += [c.why for q in bank.questions for c in q.choices]
    cited = {m for text in texts for m in re.findall(r"docs/[\w/.-]+\.md(?:#[\w-]+)?", text)}
    assert {
        "docs/concepts.md#cname-or-a",
        "docs/concepts.md#why-www",
        "docs/concepts.md#databases-on-the-web-servers",
    } <= cited
    root = Path(__file__).resolve().parents[2]
    for reference in cited:
        path, _, anchor = reference.partition("#")
        assert (root / path).is_file(), reference
        if anchor:
            assert anchor in anchors(root / path), reference


def test_most_questions_are_experiments_and_the_others_are_not_predictions():
    bank = quiz.load_bank()
    observed = [q for q in bank.questions if q.experiment]
    assert len(observed) > len(bank.questions) / 2
    for q in bank.questions:
        wrong = [c for c in q.choices if not c.correct]
        assert all(c.why.strip() for c in wrong), f"{q.id}: every wrong answer says why"
        if q.experiment:  # a wrong answer the lab can show is one a lab may really do
            assert sum(1 for c in wrong if c.observed) >= 1, q.id


@pytest.mark.parametrize(
    "packet, value, said",
    [
        # the version as the lab's MariaDB (Debian 12) sent it to lb-01; the packets around it
        # are built by hand in its form (a handshake: length, sequence, protocol 10, version; an
        # error: 0xff, the code, the text); tests/e2e/test_quiz.py reads a real greeting
        (
            b"\x5b\x00\x00\x00\x0a5.5.5-10.11.19-MariaDB-0+deb12u1-log\x00\x05\x00\x00\x00",
            "greeting",
            "5.5.5-10.11.19-MariaDB-0+deb12u1-log",
        ),
        (
            b"\x45\x00\x00\x00\xff\x6a\x04Host '192.168.56.10' is not allowed to connect",
            "host-not-allowed",
            "error 1130: Host '192.168.56.10' is not allowed to connect",
        ),
        (b"\x10\x00\x00\x00\xff\x69\x04Host is blocked", "error", "error 1129: Host is blocked"),
        (b"", "silent", ""),
    ],
)
def test_a_mysql_servers_first_packet_says_whether_it_greets(packet, value, said):
    assert quiz.mysql_greeting(packet) == (value, said)


@pytest.mark.parametrize(
    "posts, reads, served, value",
    [
        (
            {"web-01": 500, "web-02": 500},
            {"web-01": 500, "web-02": 200},
            {"web-01", "web-02"},
            "half-reads",
        ),
        (
            {"web-01": 500, "web-02": 500},
            {"web-01": 200, "web-02": 200},
            {"web-01", "web-02"},
            "reads-work",
        ),
        ({"web-01": 500, "web-02": 500}, {"web-01": 503, "web-02": 200}, {"web-02"}, "primary-out"),
        ({"web-01": 500, "web-02": 201}, {"web-01": 200, "web-02": 200}, {"web-02"}, "writes-work"),
        ({"web-01": 500, "web-02": 500}, {"web-01": 500, "web-02": 500}, {"web-01"}, "no-reads"),
    ],
)
def test_the_primary_stopped_is_judged_by_writes_reads_and_the_rotation(
    posts, reads, served, value
):
    assert quiz.primary_outcome(posts, reads, served, "web-01", "web-02") == value
    question = quiz.load_bank().question("primary-dies")
    names = quiz.names_of(topology.load(resources.topology_file("lab.yml")))
    letter = question.letter_observed(value, names)
    assert (letter == question.design_letter) == (value == "half-reads")


def test_recall_questions_ask_for_an_answer_experiments_for_a_prediction(monkeypatch):
    from lab.cli.commands import quiz as command

    asked = []

    class Console:
        def input(self, text):
            asked.append(text)
            return "a"

    lab = type("Lab", (), {"console": Console()})()
    bank = quiz.load_bank()
    assert command.prompt(lab, bank.question("how-many-servers")) == "a"
    assert command.prompt(lab, bank.question("fourth-request")) == "a"
    assert asked[0].startswith("your answer (") and asked[1].startswith("your prediction (")
