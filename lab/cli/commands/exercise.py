"""`lab exercise`: list and show the exercises; start one, check it, get hints, solve it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import yaml
from rich.console import Group
from rich.text import Text

from checks import catalogue
from checks.base import Report, Status
from checks.runner import run_on_lab
from lab.cli import render
from lab.cli.confirm import add_yes, confirm
from lab.cli.render import exercises as exercises_view
from lab.core.errors import ExitCode, LabError
from lab.core.state import write_private
from lab.course import exercises, history
from lab.remote.connection import BOOT_FINISHED, Fleet, on_every_host
from lab.remote.quoting import quote
from provision.snapshots import ensure_reference_state, is_cached

HELP = (
    "the self-paced exercises: lab exercise [list], lab exercise 02 (show), "
    "lab exercise start|check|hint|solve 02"
)
ACTIONS = ("list", "start", "check", "hint", "solve")
HINTS = exercises.EXERCISES / "hints.yml"
PROGRESS = "exercises.json"
MARKER = "/var/lib/webstack-lab-exercise"  # touched on every host when an exercise starts
# where a student's work shows; noise (logs, caches, the database's own files) left out
WATCHED = ("/etc", "/srv", "/home", "/root", "/opt", "/var/www", "/var/lib/dpkg")
NOISE = ("*/.cache/*", "*/.bash_history", "*/.lesshst", "*/.viminfo", "*/.sudo_as_admin_successful")
ORDER = 160  # its place in `lab --help`


def arguments(parser) -> None:
    parser.add_argument(
        "action",
        nargs="?",
        metavar="ACTION|EXERCISE",
        help="list (default), start, check, hint or solve; or an exercise to show (02, web-server)",
    )
    parser.add_argument("exercise", nargs="?", metavar="N", help="the exercise, e.g. 05")
    add_yes(parser, "start and solve")


def run(lab) -> ExitCode:
    action, number = lab.args.action, lab.args.exercise
    if action in (None, "list"):
        return show_list(lab)
    if action not in ACTIONS:
        if number:
            raise LabError(f"unknown action {action!r}; actions: {', '.join(ACTIONS)}")
        # the lab's own secrets once it exists (showing a page creates no lab state)
        secret = lab.state.secret if lab.state.exists else None
        shown = exercises.page(exercises.find(action), lab.topology, secret)
        lab.console.print(render.exercise(shown))
        return ExitCode.OK
    if not number:
        raise LabError(f"which exercise? e.g. `lab exercise {action} 05`")
    exercise = exercises.find(number)
    if action in ("start", "solve"):
        require_topology(lab, exercise)
    return {"start": start, "check": check, "hint": hint, "solve": solve}[action](lab, exercise)


def require_topology(lab, exercise) -> None:
    """Refuse, before anything changes, an exercise this lab's hosts cannot hold (ha on three)."""
    from provision import COMPONENTS

    for name in exercise.work.components:
        if reason := COMPONENTS[name].unavailable(lab.topology):
            raise LabError(
                f"exercise {exercise.number} cannot be done on lab {lab.topology.name!r}: {reason}",
                hint=f"`lab --topology lab-ha.yml exercise start {exercise.number}`"
                if name == "ha"
                else "",
            )


# -- start ------------------------------------------------------------------------------


def start(lab, exercise) -> ExitCode:
    """Fresh hosts at the exercise's starting point: the reference of the exercises before it."""
    given = exercises.starting_components(exercise)
    if lab.state.exists:
        changed = changes(lab)
        if changed:
            confirm(
                lab,
                f"lab {lab.topology.name!r} {changed}",
                f"Start exercise {exercise.number} on fresh hosts and throw that away?",
            )
    started = time.monotonic()
    with lab.state.lock():
        if not lab.state.exists or any(s.state != "running" for s in lab.provider.status()):
            lab.provider.up(lab.reporter)
            lab.write_ssh_config()
        warm = is_cached(lab.topology, lab.provider, given)
        key = ensure_reference_state(lab.topology, lab.state, lab.provider, given, lab.reporter)
        # after the boot: what the boot itself writes is not the student's work
        on_every_host(lab.provider.specs(), f"{BOOT_FINISHED}; sudo touch {quote(MARKER)}")
        progress = load_progress(lab)
        progress["started"] = {"exercise": exercise.number, "key": key, "at": time.time()}
        save_progress(lab, progress)
    seconds = time.monotonic() - started
    what = ", ".join(given) if given else "nothing: bare Debian hosts"
    source = (
        "fresh hosts, not cached (this provider has no layers)"
        if not lab.provider.layers
        else ("fresh hosts from the cache" if warm or not given else "built now and cached")
    )
    lab.console.print(
        f"[ok]✓[/] exercise {exercise.title}: ready in {seconds:.1f} s\n"
        f"  reference applied: {what} ({source})\n"
        f"  read it: [host]lab exercise {exercise.number}[/] · grade it: "
        f"[host]lab exercise check {exercise.number}[/] · stuck: "
        f"[host]lab exercise hint {exercise.number}[/]"
    )
    return ExitCode.OK


def changes(lab) -> str:
    """Why the lab may hold work (e.g. 'has changes on web-01: /etc/nginx/...'), or ''."""
    if "started" not in load_progress(lab):
        return "was not started by `lab exercise start`: its hosts may hold your work"
    prune = " -o ".join(f"-path {quote(p)}" for p in NOISE)
    command = (
        f"test -e {quote(MARKER)} || {{ echo NO-MARKER; exit 0; }}; "
        f"sudo find {' '.join(WATCHED)} -xdev \\( {prune} \\) -prune -o "
        f"-newer {quote(MARKER)} -print 2>/dev/null | head -n 5"
    )
    try:
        outputs = on_every_host(lab.provider.specs(), command)
    except LabError as exc:
        return f"could not be inspected ({exc})"
    found = []
    for host, output in outputs.items():
        lines = [line for line in output.splitlines() if line.strip()]
        if lines[:1] == ["NO-MARKER"]:
            found.append(f"{host}: not from `lab exercise start`")
        elif lines:
            found.append(f"{host}: {', '.join(lines[:3])}")
    return "has changes since its exercise started (" + "; ".join(found) + ")" if found else ""


# -- check and hint ---------------------------------------------------------------------


def graded_checks(exercise) -> list:
    if not exercises.check_ids(exercise):
        raise LabError(f"exercise {exercise.number} is not graded")
    return [catalogue()[check_id] for check_id in exercises.check_ids(exercise)]


def grade(lab, exercise, action: str = "check") -> Report:
    """Run the exercise's checks (and what they need) and merge the results into the lab's one
    record of check results, which `lab progress`, `lab diagram` and `lab check` share."""
    chosen = graded_checks(exercise)
    with Fleet(lab.specs()) as fleet:
        report = run_on_lab(chosen, lab.topology, fleet)
    record(lab, report, f"lab exercise {action} {exercise.number}")
    return report


def record(lab, report: Report, by: str) -> dict:
    """Merge a run's results into the lab's record (what every command that checks calls)."""
    return history.save(lab.state.dir, report, by)


def check(lab, exercise) -> ExitCode:
    report = grade(lab, exercise)
    lab.console.print(render.check_report(report))
    return ExitCode.OK if report.all_passed else ExitCode.FAILED


def hint(lab, exercise) -> ExitCode:
    """The next hint for the first check that fails now (its prerequisites first)."""
    report = grade(lab, exercise, "hint")
    failing = [r for r in report.results if r.status is Status.FAIL]
    if not failing:
        lab.console.print(f"[check.pass]every check of exercise {exercise.number} passes[/]")
        return ExitCode.OK
    result = failing[0]
    ladder = hints_for(result, lab.topology)
    progress = load_progress(lab)
    positions = progress.setdefault("hints", {})
    key = hint_key(result.id, result.case)  # another failure of the check starts a ladder anew
    rung = min(positions.get(key, 0), len(ladder) - 1)
    positions[key] = rung + 1
    save_progress(lab, progress)
    more = "next call: the next hint" if rung + 1 < len(ladder) else "the last hint"
    lab.console.print(
        Group(
            Text.assemble(("✗ ", "check.fail"), f"{result.title} [{result.id}]"),
            Text(result.evidence, style="muted"),
            Text.assemble(
                (f"hint {rung + 1}/{len(ladder)}: ", "hint"), ladder[rung], (f"  ({more})", "muted")
            ),
        )
    )
    return ExitCode.FAILED


def hints_for(result, topology) -> list[str]:
    """The ladder of hints for a failing result, from a nudge to the exact line: the ladder of
    the failure its evidence named (its case) when the hints file has one; else, where its
    evidence called for another hint than the check's general one, that hint first."""
    if result.case and has_ladder(hint_key(result.id, result.case)):
        return hint_ladder(result.id, topology, case=result.case)
    ladder = hint_ladder(result.id, topology)
    if result.hint and result.hint != catalogue()[result.id].hint:
        return [result.hint, *ladder]
    return ladder or [result.hint]


def has_ladder(key: str, path: Path = HINTS) -> bool:
    try:
        return bool((yaml.safe_load(path.read_text()) or {}).get(key))
    except (OSError, yaml.YAMLError):
        return False


def hint_key(check_id: str, case: str = "") -> str:
    """Where the hints file keeps a check's ladder: CHECK, or CHECK/CASE for one failure."""
    return f"{check_id}/{case}" if case else check_id


def hint_ladder(check_id: str, topology, path: Path = HINTS, case: str = "") -> list[str]:
    """The hints for a check, from a nudge to the exact line, with the lab's own addresses;
    for a failure the evidence named (a case), its own ladder when the file has one."""
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise LabError(f"{path} is unreadable: {exc}") from None
    values = {
        "@lb@": topology.site_address,  # where the site is reached (a virtual address, if any)
        "@primary@": topology.one_with_role("db-primary").address,
        "@replica@": topology.one_with_role("db-replica").address,
        "@domain@": topology.domain,
        "@network@": exercises.sql_host_pattern(topology.subnet),  # MariaDB's host part
    }
    for index, host in enumerate(topology.with_role("web"), start=1):
        values[f"@web{index}@"] = host.address
    ladder = []
    for text in data.get(hint_key(check_id, case)) or data.get(check_id) or []:
        for placeholder, value in values.items():
            text = text.replace(placeholder, value)
        ladder.append(text)
    return ladder


# -- solve ------------------------------------------------------------------------------


def solve(lab, exercise) -> ExitCode:
    """Apply the reference for this exercise only."""
    from lab.cli.commands.provision import provision_lab

    names = list(exercise.work.components)
    if not names:
        lab.console.print(
            f"exercise {exercise.number} has no reference to apply"
            + (": `lab up` brings the hosts up" if exercises.check_ids(exercise) else "")
        )
        return ExitCode.OK
    lab.require_up()
    confirm(
        lab,
        f"the reference solution of exercise {exercise.number} ({', '.join(names)}) overwrites "
        "your own files for it",
        f"Apply it to lab {lab.topology.name!r}?",
    )
    with lab.state.lock():
        code = provision_lab(lab, names)
    lab.console.print(f"grade it: [host]lab exercise check {exercise.number}[/]")
    return code


# -- list and progress ------------------------------------------------------------------


def show_list(lab) -> ExitCode:
    started = load_progress(lab).get("started", {}).get("exercise")
    record = history.load(lab.state.dir)
    lab.console.print(exercises_view.progress_table(exercises.all_exercises(), record, started))
    return ExitCode.OK


def load_progress(lab) -> dict:
    path = lab.state.dir / PROGRESS
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise LabError(f"{path} is unreadable: {exc}") from None


def save_progress(lab, progress: dict) -> None:
    if lab.state.exists:
        write_private(lab.state.dir / PROGRESS, json.dumps(progress, indent=2) + "\n")
