"""`lab quiz [TOPIC]`: predict, then let the live lab show whether the prediction was right."""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import ExitStack

from rich.table import Table
from rich.text import Text

from checks.base import CheckError, Status
from lab.cli import render
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
        lab.console.print(question_table(bank, questions, quiz.names_of(lab.topology)))
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
                    lab.console.print(ask(question, names, number, len(questions)))
                chosen = given.get(question.id) or prompt(lab, question)
                if chosen is None:
                    break
                outcome = answer(lab, fleet, question, chosen, names)
                outcomes.append(outcome)
                if not lab.args.json:
                    lab.console.print(show(outcome, names, record))
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
    """The student's prediction: a letter, or None to stop."""
    valid = quiz.LETTERS[: len(question.choices)]
    while True:
        try:
            text = lab.console.input(f"your prediction ({', '.join(valid)}; q stops): ")
        except EOFError:
            return None
        if text.strip().lower() in ("q", "quit"):
            return None
        try:
            return quiz.parse_choice(question, text)
        except LabError as exc:
            lab.console.print(Text(str(exc), style="hint"))


def ask(question: quiz.Question, names, number: int, total: int) -> Text:
    text = Text.assemble(
        (f"\n{number}/{total} · {question.topic}", "muted"),
        (" · the lab will show the answer" if question.experiment else "", "muted"),
        "\n",
        (quiz.fill(question.question, names), "section"),
    )
    for letter, choice in zip(quiz.LETTERS, question.choices, strict=False):
        text.append(f"\n  {letter}) {quiz.fill(choice.text, names)}")
    return text


def show(outcome: quiz.Outcome, names, record: dict | None = None) -> Text:
    """What the lab saw, right or wrong, why, and the explanation; where the lab did not do
    what the design says, the last results of the checks that grade it (from the lab's record)."""
    question = outcome.question
    choices = dict(zip(quiz.LETTERS, question.choices, strict=False))
    text = Text()
    if outcome.observation:
        text.append(f"  the lab saw: {outcome.observation.evidence}\n", style="muted")
    if outcome.error:
        text.append(f"  {outcome.error}\n", style="hint")
    if outcome.right is None:
        text.append("  none of the choices is what happened on your lab", style="check.not-run")
    elif outcome.right:
        text.append("  ✓ right", style="check.pass")
    else:
        right = quiz.fill(choices[outcome.right_letter].text, names)
        text.append(f"  ✗ not quite: {outcome.right_letter}) {right}", style="check.fail")
    why = choices[outcome.chosen].why
    if why and not outcome.right:
        text.append(f"\n  {quiz.fill(why, names)}")
    if outcome.lab_differs:
        design = quiz.fill(choices[question.design_letter].text, names)
        text.append(
            f"\n  the design says {question.design_letter}) {design}: your lab differs",
            style="hint",
        )
        text.append(checks_say(quiz.last_results(question, record or {})))
    text.append(f"\n  {quiz.fill(question.explanation, names)}", style="muted")
    return text


def checks_say(results: list[dict]) -> Text:
    """Under a lab that differs from the design: each grading check's last result and when."""
    text = Text()
    for result in results:
        check_id, status = result["id"], result["status"]
        if status is None:
            text.append(f"\n  {check_id}: not checked yet (`lab check {check_id}`)", style="muted")
            continue
        mark, style = render.MARKS[status]
        when = history.moment(result["at"]).astimezone().strftime("%Y-%m-%d %H:%M")
        text.append(f"\n  last check {when}: {mark} {check_id}", style=style)
        if status != Status.PASS and result["evidence"]:
            text.append(f": {result['evidence']}", style="muted")
        elif status == Status.PASS:
            text.append(f" (passed then; `lab check {check_id}` again)", style="muted")
    if not results:
        text.append(" (`lab check` says where)", style="hint")
    return text


def question_table(bank: quiz.Bank, questions, names: dict[str, str]) -> Table:
    """The questions as the lab will ask them: placeholders filled with the lab's names."""
    table = Table(title="quiz questions (lab quiz TOPIC asks one topic)", title_justify="left")
    for column in ("id", "topic", "observed on the lab", "question"):
        table.add_column(column)
    for q in questions:
        question = Text(quiz.fill(q.question, names).strip())
        table.add_row(q.id, q.topic, "yes" if q.experiment else "", question)
    table.caption = "topics: " + ", ".join(bank.topics)
    return table
