"""`lab quiz [TOPIC]`: predict, then let the live lab show whether the prediction was right."""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import ExitStack

from rich.text import Text

from checks.base import CheckError
from lab.cli.render import quiz as quiz_view
from lab.core.errors import ExitCode, LabError
from lab.course import history, quiz
from lab.observe.live import LiveLab
from lab.remote.connection import Fleet

HELP = "concept questions on the design: predict, then the lab runs the experiment and shows"
ORDER = 150  # its place in `lab --help`


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("topic", nargs="?", help="only this topic (`lab quiz --list` lists them)")
    parser.add_argument(
        "--answer",
        action="append",
        default=[],
        metavar="ID=CHOICE",
        help="answer a question without a terminal (repeatable), e.g. fourth-request=b",
    )
    parser.add_argument(
        "--answers", metavar="FILE", help="answers without a terminal: a YAML file of id: choice"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--list", action="store_true", help="list the topics and questions")


def run(lab) -> ExitCode:
    bank = quiz.load_bank()
    questions = bank.select(lab.args.topic)
    if lab.args.list:
        lab.console.print(quiz_view.question_table(bank, questions, quiz.names_of(lab.topology)))
        return ExitCode.OK
    given = quiz.parse_answers(bank, lab.args.answer, lab.args.answers)
    interactive = not given
    if interactive and (lab.args.json or not sys.stdin.isatty()):
        raise LabError(
            "lab quiz asks its questions on a terminal, and none is attached",
            hint="answer without one: --answer ID=CHOICE (repeatable) or --answers FILE; "
            "`lab quiz --list` shows the ids",
        )
    if given:
        questions = [q for q in questions if q.id in given]
    names = quiz.names_of(lab.topology)
    record = history.load(lab.state.dir)
    outcomes: list[quiz.Outcome] = []
    with ExitStack() as stack:
        fleet = None
        if lab.state.exists and any(q.experiment for q in questions):
            fleet = stack.enter_context(Fleet(lab.provider.specs()))
        try:
            for number, question in enumerate(questions, 1):
                if not lab.args.json:
                    lab.console.print(quiz_view.ask(question, names, number, len(questions)))
                chosen = given.get(question.id) or prompt(lab, question)
                if chosen is None:
                    break
                outcome = answer(lab, fleet, question, chosen, names)
                outcomes.append(outcome)
                if not lab.args.json:
                    lab.console.print(quiz_view.show(outcome, names, record))
        finally:
            saved = quiz.save_answers(lab.state.dir, outcomes) if outcomes else None
    if lab.args.json:
        right = sum(1 for o in outcomes if o.right)
        sys.stdout.write(
            json.dumps(
                {
                    "schema": quiz.SCHEMA,
                    "lab": lab.topology.name,
                    "asked": len(outcomes),
                    "right": right,
                    "results": [quiz.outcome_dict(o) for o in outcomes],
                    "saved": saved["score"] if saved else None,
                },
                indent=2,
            )
            + "\n"
        )
    elif saved:
        score = saved["score"]
        lab.console.print(
            f"\n[section]this time {sum(1 for o in outcomes if o.right)}/{len(outcomes)} right"
            f"[/] · all your answers on lab {lab.topology.name}: "
            f"{score['right']}/{score['answered']}"
        )
    return ExitCode.OK


def answer(lab, fleet, question: quiz.Question, chosen: str, names) -> quiz.Outcome:
    """Run the question's experiment on the lab (when it is up) and judge the prediction."""
    if not question.experiment:
        return quiz.judge(question, chosen, names, None)
    if fleet is None:
        return quiz.judge(question, chosen, names, None, "the lab is not up: judged by the design")
    if not lab.args.json:
        lab.console.print(Text("  the lab runs the experiment…", style="muted"))
    try:
        observation = quiz.observe(LiveLab(lab.topology, fleet), question.experiment)
    except CheckError as exc:
        return quiz.judge(question, chosen, names, None, f"the lab could not show it: {exc}")
    return quiz.judge(question, chosen, names, observation)


def prompt(lab, question: quiz.Question) -> str | None:
    """The student's choice (a prediction when the lab then shows it): a letter, or None to stop."""
    valid = quiz.LETTERS[: len(question.choices)]
    asked = "your prediction" if question.experiment else "your answer"
    while True:
        try:
            text = lab.console.input(f"{asked} ({', '.join(valid)}; q stops): ")
        except EOFError:
            return None
        if text.strip().lower() in ("q", "quit"):
            return None
        try:
            return quiz.parse_choice(question, text)
        except LabError as exc:
            lab.console.print(Text(str(exc), style="hint"))
