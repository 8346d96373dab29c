"""What `lab quiz` shows: a question, its outcome with what the checks say, the list."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from checks.base import Status
from lab.cli import render
from lab.course import history, quiz


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
