"""Docs made from code stay in step with it; exercises are found by number or name."""

import argparse
import configparser
import re
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from checks import CATALOGUE, catalogue_markdown
from lab.cli import app as cli
from lab.core import topology
from lab.core.errors import LabError
from lab.course import exercises

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


def test_ci_runs_the_readme_quick_start_as_written():
    """.ci/run reads README.md's two Quick start commands: the one that builds and grades a
    lab, and the one that runs this suite; CI cannot drift from them."""
    listed = subprocess.run(
        [str(REPO / ".ci" / "quick-start"), str(REPO / "README.md")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert len(listed) == 2, listed
    build, tests = listed
    assert "lab up --provision" in build and "lab check" in build
    assert tests.endswith("python -m pytest")
    ci = (REPO / ".ci" / "run").read_text()
    assert ".ci/quick-start README.md" in ci and "scripts/setup.sh" not in ci


def haproxy_sections(config: str) -> dict[str, list[str]]:
    """An HAProxy configuration's sections (`backend web`, …), each with its lines, comments
    and blank lines left out."""
    sections: dict[str, list[str]] = {}
    current = None
    for raw in config.splitlines():
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        if not line[0].isspace():
            current = " ".join(line.split())
            sections[current] = []
        elif current is not None:
            sections[current].append(" ".join(line.split()))
    return sections


def page_haproxy_config(page: str) -> str:
    """The HAProxy configuration an exercise page shows: its block that holds `backend`."""
    found = [b for b in FENCE.findall((DOCS / "exercises" / page).read_text()) if "backend " in b]
    assert len(found) == 1, f"{page}: expected one HAProxy configuration, found {len(found)}"
    return found[0]


def test_haproxy_sections_are_read_like_haproxy_reads_them():
    sections = haproxy_sections("global\n  daemon\n\ndefaults # x\n    retries  2\nlisten a\n")
    assert sections == {"global": ["daemon"], "defaults": ["retries 2"], "listen a": []}


def test_exercise_05_gives_a_whole_haproxy_config_that_keeps_the_pages_promises():
    """What the pages say of exercise 05's configuration holds for the one it shows: 09 counts
    on `option forwardfor` in `defaults`, 05 and faults.md on no request lost to a refused
    connection (`retries`, `option redispatch`), 05 on a stats page and the grader on a stats
    socket; it is a whole file, so nothing Debian's file had is lost by pasting it."""
    sections = haproxy_sections(page_haproxy_config("05-load-balancer.md"))
    assert {"global", "defaults", "frontend www", "backend web", "listen stats"} <= set(sections)
    defaults = sections["defaults"]
    assert {"mode http", "option forwardfor", "option redispatch"} <= set(defaults), defaults
    retries = [int(line.split()[1]) for line in defaults if line.startswith("retries ")]
    assert retries and retries[0] >= 1, defaults
    assert {"timeout connect", "timeout client", "timeout server"} <= {
        " ".join(line.split()[:2]) for line in defaults
    }
    assert any(line.startswith("stats socket ") for line in sections["global"])
    backend = sections["backend web"]
    assert "balance roundrobin" in backend and not any("backup" in line for line in backend)
    assert sum(line.startswith("server ") and line.endswith(" check") for line in backend) == 2
    stats = sections["listen stats"]
    assert {"stats enable", "stats uri /stats"} <= set(stats)
    assert any(line.startswith("bind ") and line.endswith(":8404") for line in stats)
    assert (
        "`option forwardfor` (in `defaults` since exercise 05)"
        in (DOCS / "exercises" / "09-https.md").read_text()
    )


def test_exercise_05_config_has_the_reference_defaults_that_change_what_users_see():
    """The reference's defaults (provision/templates/haproxy.cfg.j2) that decide what a user
    gets when a server fails or who the web servers see are on the page too."""
    template = (REPO / "provision" / "templates" / "haproxy.cfg.j2").read_text()
    reference = haproxy_sections(re.sub(r"\{[%{#].*?[%}#]\}", "", template))["defaults"]
    page = haproxy_sections(page_haproxy_config("05-load-balancer.md"))["defaults"]
    for line in reference:
        if line.split()[0] in ("option", "retries") or line.startswith("timeout connect"):
            assert line in page, f"the reference's `{line}` is missing from exercise 05's defaults"


ANY_FENCE = re.compile(r"^( *)```[^\n]*\n(.*?)^\1```", re.MULTILINE | re.DOTALL)


def page_block(page: str, needle: str) -> str:
    """The one code block of an exercise page that holds needle (also one in a list item),
    without the list's indentation."""
    text = (DOCS / "exercises" / page).read_text()
    found = [b for _, b in ANY_FENCE.findall(text) if needle in b]
    assert len(found) == 1, f"{page}: expected one code block with {needle!r}, found {len(found)}"
    return textwrap.dedent(found[0])


def test_exercise_10_names_only_alerts_its_rules_define():
    """An answer that names an alert the student's rules lack sends them looking for it."""
    rules = yaml.safe_load(page_block("10-monitoring.md", "groups:"))
    defined = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    prose = ANY_FENCE.sub("", (DOCS / "exercises" / "10-monitoring.md").read_text())
    named = set(re.findall(r"\b(?:[A-Z][a-z]+){2,}\b", prose))
    assert {"WebServerOutOfRotation", "ReplicationStopped", "TargetDown"} <= named
    assert named <= defined, f"named on the page but not defined by its rules: {named - defined}"


REPLICA_STATUS_RUNNING = (REPO / "tests/unit/fixtures/raw/replica-status-web-02.txt").read_text()


@pytest.mark.parametrize(
    "status, exit_code, written",
    [
        (REPLICA_STATUS_RUNNING, 0, "1"),
        (
            REPLICA_STATUS_RUNNING.replace("Slave_IO_Running: Yes", "Slave_IO_Running: Connecting"),
            0,
            "0",
        ),
        (REPLICA_STATUS_RUNNING.replace("Slave_SQL_Running: Yes", "Slave_SQL_Running: No"), 0, "0"),
        ("", 1, "0"),  # MariaDB does not answer
    ],
    ids=["running", "io-connecting", "sql-stopped", "no-mariadb"],
)
def test_exercise_10_replica_script_writes_what_the_alert_reads(
    tmp_path, status, exit_code, written
):
    """The page's script, run by sh with a `mysql` that answers as a replica does, writes the
    metric the page's ReplicationStopped rule reads, whole (through a temporary file)."""
    script = page_block("10-monitoring.md", "mysql_replica_running $running")
    directory = "/var/lib/prometheus/node-exporter"
    assert directory in script
    (tmp_path / "textfile").mkdir()
    (tmp_path / "bin").mkdir()
    (tmp_path / "status.txt").write_text(status)
    mysql = tmp_path / "bin" / "mysql"
    mysql.write_text(f"#!/bin/sh\ncat {tmp_path / 'status.txt'}\nexit {exit_code}\n")
    mysql.chmod(0o755)
    path = tmp_path / "replica-metrics"
    path.write_text(script.replace(directory, str(tmp_path / "textfile")))
    env = {"PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin"}
    subprocess.run(["/bin/sh", str(path)], env=env, check=True, capture_output=True)
    assert sorted(p.name for p in (tmp_path / "textfile").iterdir()) == ["replica.prom"]
    assert (tmp_path / "textfile" / "replica.prom").read_text() == (
        f"mysql_replica_running {written}\n"
    )
    rules = yaml.safe_load(page_block("10-monitoring.md", "groups:"))
    exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    assert "mysql_replica_running == 0" in exprs


def test_exercise_10_timer_runs_the_pages_script_every_5_s():
    page = (DOCS / "exercises" / "10-monitoring.md").read_text()
    service = configparser.ConfigParser()
    service.read_string(page_block("10-monitoring.md", "Type=oneshot"))
    timer = configparser.ConfigParser()
    timer.read_string(page_block("10-monitoring.md", "[Timer]"))
    assert service["Service"]["ExecStart"] == "/usr/local/bin/replica-metrics"
    assert "`/usr/local/bin/replica-metrics`" in page
    assert timer["Timer"]["OnUnitActiveSec"] == "5s"
    assert "/etc/systemd/system/replica-metrics.service" in page
    assert "enable --now replica-metrics.timer" in page
    assert "webstack-replica-metrics" not in page  # the reference's script is not the way


def test_every_exercise_page_says_how_to_start_it():
    for item in exercises.all_exercises():
        text = item.path.read_text()
        start = re.search(r"Start here with `([^`]+)`", text)
        assert start, f"{item.path.name}: no 'Start here with `lab exercise start ...`' line"
        assert start.group(1).endswith(f"exercise start {item.number}"), start.group(1)


def test_the_pages_run_dig_only_where_they_install_it():
    """`dig` is on neither the hosts nor the machine: a page that runs it says how to get it."""
    for page in pages(MY_PAGES):
        text = page.read_text()
        code = FENCE.findall(text) + INLINE.findall(FENCE.sub("", text))
        runs = [c for c in code if re.search(r"(^|[\s;&|])dig\s", c)]
        if runs:
            assert "apt-get install -y bind9-dnsutils" in text, (page.name, runs)


def test_exercise_11_gives_the_failover_figures_faults_md_measured():
    faults = (DOCS / "faults.md").read_text()
    section = faults[faults.index("### lb-01-down") :]
    section = section[: section.index("\n### ")]
    span = r"\d+\u2013\d+"  # a range, written with an en dash
    figures = re.findall(rf"{span} lost \(median \d+\)|lost {span} of them", section)
    assert len(figures) == 2, figures
    with_fix, three_hosts = figures
    page = " ".join((DOCS / "exercises" / "11-ha.md").read_text().split())
    assert with_fix in page
    assert three_hosts.removeprefix("lost ").removesuffix(" of them") in page
    assert not re.search(r"\bthe \d+ lost were\b", page)  # one run's count, told as the figure
