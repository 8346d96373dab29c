"""Docs made from code stay in step with it; exercises are found by number or name."""

import argparse
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from checks import CATALOGUE, catalogue_markdown
from lab import cli, exercises, topology
from lab.errors import LabError

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_check_catalogue_doc_is_generated_from_the_definitions():
    assert (DOCS / "checks.md").read_text() == catalogue_markdown(), (
        "docs/checks.md is stale: python -m checks > docs/checks.md"
    )


def test_every_graded_exercise_names_sections_that_exist():
    sections = {cls.section for cls in CATALOGUE.values()}
    items = exercises.all_exercises()
    assert [e.number for e in items] == [f"{n:02d}" for n in range(1, 12)]
    for item in items:
        if item.graded_by != "not graded":
            named = shlex.split(item.graded_by.strip("`").removeprefix("lab check "))
            assert set(named) <= sections, (item.number, named)


@pytest.mark.parametrize("name", ["2", "02", "web-server", "02-web-server", "02-web-server.md"])
def test_exercises_by_number_or_name(name):
    assert exercises.find(name).slug == "web-server"


def test_unknown_exercise_lists_the_valid_ones():
    with pytest.raises(LabError, match="unknown exercise 'nope'; exercises: 01-servers"):
        exercises.find("nope")


REPO = DOCS.parent
MY_PAGES = ["README.md", "design.md", "concepts.md", "notes-dns.md", "exercises/*.md"]
ANCHOR = re.compile(r'<a id="([a-z0-9-]+)"></a>')
LINK = re.compile(r"\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
INLINE = re.compile(r"`([^`\n]+)`")
COMMAND_NAME = re.compile(r"[a-z][a-z-]*")


def anchors(page: Path) -> set[str]:
    """A page's link targets: explicit <a id> anchors and GitHub's heading slugs."""
    text = page.read_text()
    slugs = {
        re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        for heading in re.findall(r"^#+ (.+)$", text, re.MULTILINE)
    }
    return set(ANCHOR.findall(text)) | slugs


def test_every_check_points_to_a_requirement_in_the_design():
    design = anchors(DOCS / "design.md")
    missing = {cls.id: cls.design for cls in CATALOGUE.values() if cls.design not in design}
    assert not missing, f"checks point to anchors docs/design.md lacks: {missing}"


def test_the_design_gives_every_requirement_a_check():
    graded = {cls.design for cls in CATALOGUE.values()}
    requirements = set(ANCHOR.findall((DOCS / "design.md").read_text()))
    untested = requirements - graded - {"corrections", "issues"}
    assert not untested, f"requirements in docs/design.md that no check grades: {untested}"


def pages(patterns: list[str]) -> list[Path]:
    return sorted(path for pattern in patterns for path in DOCS.glob(pattern))


@pytest.mark.parametrize("page", pages(MY_PAGES), ids=lambda p: str(p.relative_to(DOCS)))
def test_links_between_pages_lead_somewhere(page):
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+:", target):
            continue  # http:, mailto:
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.exists(), f"{page.name}: {target} does not exist"
        if anchor and linked.suffix == ".md":
            assert anchor in anchors(linked), f"{page.name}: no anchor #{anchor} in {path}"


def shown_commands(text: str) -> set[str]:
    """Every `lab ...` command line a page shows, in code blocks or inline code."""
    snippets = FENCE.findall(text) + INLINE.findall(FENCE.sub("", text))
    commands = set()
    for snippet in snippets:
        for line in re.split(r"\n|&&|\|\||;|\|(?!\w)", snippet):
            words = line.strip().removeprefix("$ ").split()
            while words and (words[0] == "sudo" or "=" in words[0]):
                words = words[1:]  # sudo, LAB_TOPOLOGY=FILE
            if len(words) > 1 and words[0] == "lab":
                commands.add(" ".join(words))
    return commands


def command_words(command: str) -> list[str]:
    """The command and subcommands of a `lab ...` line, up to its first argument."""
    parser, words = cli.build_parser(), []
    for word in command.split()[1:]:
        choices = next(
            (a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction)),
            None,
        )
        if choices is None or not COMMAND_NAME.fullmatch(word):
            break
        words.append(word)
        if word not in choices:
            break  # not a command: `--help` below says so
        parser = choices[word]
    return words


def test_shown_commands_are_found_in_code_and_inline():
    text = "Run `sudo lab up --provision`.\n```sh\n$ lab ssh web-01 -- hostname\nlab status\n```\n"
    assert shown_commands(text) == {
        "lab up --provision",
        "lab ssh web-01 -- hostname",
        "lab status",
    }
    assert command_words("lab check servers") == ["check"]
    assert command_words("lab box build") == ["box"]
    assert command_words("lab COMMAND --help") == []
    assert command_words("lab frobnicate now") == ["frobnicate"]


def test_every_lab_command_the_docs_show_exists(capsys):
    texts = [path.read_text() for path in DOCS.rglob("*.md")] + [(REPO / "README.md").read_text()]
    shown = {tuple(command_words(c)) for text in texts for c in shown_commands(text)}
    shown.discard(())
    assert len(shown) > 10, shown  # the parsing found the pages' commands
    broken = []
    for words in sorted(shown):
        with pytest.raises(SystemExit) as exit_:
            cli.main([*words, "--help"])
        if exit_.value.code != 0:
            broken.append(" ".join(words))
    capsys.readouterr()
    assert not broken, f"the docs show commands that do not exist: {broken}"


def test_python_m_lab_answers_help():
    done = subprocess.run([sys.executable, "-m", "lab", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "exercise" in done.stdout


def test_the_code_base_the_pages_point_to_is_at_the_top_level():
    assert topology.REFERENCE_APP.path == REPO / "app"
    assert (REPO / "app" / "app.py").is_file()
    assert (REPO / "app" / "static" / "index.html").is_file()
    assert not (REPO / "provision" / "app").exists()
