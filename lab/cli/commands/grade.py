"""lab grade: grade a class of submissions, each in a fresh lab; or students' own servers."""

from __future__ import annotations

import time
from pathlib import Path

from rich.live import Live
from rich.table import Table

from checks import CATALOGUE
from checks.runner import select
from lab.core.errors import ExitCode, LabError
from lab.core.system import require_root
from lab.grading import assignment as assignments
from lab.grading import lms
from lab.grading import roster as rosters
from lab.grading import submissions as subs
from lab.grading.class_run import ClassRun
from lab.grading.gradebook import assignment_checks, write_gradebook, write_platform_file
from lab.grading.live import grade_live, load_class
from lab.grading.model import load_results
from lab.grading.shard import in_shard, merge_command, parse_shard
from lab.providers.lxc import kernel_log_restricted

HELP = "grade a class: lab grade ASSIGNMENT SUBMISSIONS (or --live CLASS.yml, or merge DIR...)"
ORDER = 190  # its place in `lab --help`


def arguments(parser) -> None:
    parser.add_argument(
        "paths",
        nargs="*",
        metavar="ASSIGNMENT SUBMISSIONS",
        help="an assignment file (assignments/*.yml) and a folder of submissions (one folder "
        "or .zip/.tar.gz per student) or a roster .yml (git URLs); or: merge DIR...",
    )
    parser.add_argument("--out", metavar="DIR", help="where grades go (default: grades-NAME)")
    parser.add_argument(
        "--jobs", type=int, metavar="K", help="labs side by side (default 1; live mode 8)"
    )
    parser.add_argument(
        "--regrade",
        nargs="+",
        default=[],
        metavar="STUDENT",
        help="grade these again even if unchanged (`all` for everyone)",
    )
    parser.add_argument("--shard", metavar="K/N", help="grade only share K of N of the class")
    parser.add_argument(
        "--live", metavar="CLASS.yml", help="grade students' own running servers (checks only)"
    )
    parser.add_argument(
        "--format",
        choices=lms.FORMATS,
        default="csv",
        help="also write the file a platform imports as it is: moodle (grades-moodle.csv) or "
        "canvas (grades-canvas.csv); needs --roster (default: csv, grades.csv only)",
    )
    parser.add_argument(
        "--roster",
        metavar="FILE",
        help="who each student is on the platform: a .yml (students: NAME: {username, email, "
        "id, ...}) or .csv roster",
    )
    parser.add_argument(
        "--no-check-columns",
        dest="check_columns",
        action="store_false",
        help="leave the per-check columns out of the grade files (the total only)",
    )


def run(lab) -> ExitCode:
    args = lab.args
    if args.paths[:1] == ["merge"]:
        return merge(lab, args.paths[1:])
    if args.live:
        return grade_servers(lab, Path(args.live), args.paths)
    if len(args.paths) != 2:
        raise LabError("usage: lab grade ASSIGNMENT SUBMISSIONS", hint="see `lab grade --help`")
    chosen = assignments.load(Path(args.paths[0]))
    found = subs.discover(Path(args.paths[1]))
    roster = class_roster(args, Path(args.paths[1]))
    if args.shard:
        k, n = parse_shard(args.shard)
        found = [s for s in found if in_shard(s.student, k, n)]
    require_root("lab grade (each submission gets LXC hosts of its own)")
    if not kernel_log_restricted():
        lab.console.print(
            "[hint]kernel.dmesg_restrict is 0 on this machine: students' scripts can read its "
            "kernel log (dmesg); `sysctl kernel.dmesg_restrict=1` hides it (docs/grading.md)[/]"
        )
    out = Path(args.out or f"grades-{chosen.name}")
    board = Board([s.student for s in found])
    grader = ClassRun(chosen, out, jobs(args, 1), set(args.regrade), board.update)
    started = time.monotonic()
    with Live(board.table(), console=lab.console, refresh_per_second=2) as live:
        board.live = live
        grader.grade_all(found)
    results = [r for r in load_results(out / "results") if r.student in board.rows]
    checks = assignment_checks(chosen.checks)
    facts = write_gradebook(results, checks, out, check_columns=args.check_columns)
    seconds = time.monotonic() - started
    lab.console.print(
        f"{len(results)} submissions in {seconds:.0f} s; mean {facts.get('mean') or 0} of "
        f"{chosen.max_score}. Class overview: {out / 'index.html'}  grades: {out / 'grades.csv'}"
    )
    platform_file(lab, results, checks, out, roster)
    return ExitCode.OK


def class_roster(args, submissions: Path | None = None) -> rosters.Roster | None:
    """The roster --format needs: --roster, and a submissions roster's own entries."""
    found: rosters.Roster = {}
    if submissions is not None and submissions.suffix in (".yml", ".yaml") and args.format != "csv":
        found.update(rosters.load(submissions))
    if args.roster:
        for student, fields in rosters.load(Path(args.roster)).items():
            found[student] = {**found.get(student, {}), **fields}
    if args.format != "csv" and not any(found.values()):
        raise LabError(
            f"--format {args.format} needs a roster that says who each student is",
            hint="--roster FILE: a .yml or .csv mapping each folder or name to username, "
            "email or id (see docs/grading.md)",
        )
    return found or None


def platform_file(lab, results, checks, out: Path, roster) -> None:
    """grades-moodle.csv or grades-canvas.csv, when asked for; who was left out, and why."""
    if lab.args.format == "csv":
        return
    export = write_platform_file(
        lab.args.format, results, checks, out, roster or {}, lab.args.check_columns
    )
    for line in export.lines():
        lab.console.print(line, markup=False, highlight=False)


def jobs(args, default: int) -> int:
    if args.jobs is not None and args.jobs < 1:
        raise LabError("--jobs must be at least 1")
    return args.jobs or default


def grade_servers(lab, class_file: Path, paths: list[str]) -> ExitCode:
    """Checks only, on the servers each student lists (no scripts run)."""
    if len(paths) > 1:
        raise LabError("usage: lab grade --live CLASS.yml [ASSIGNMENT]")
    chosen = assignments.load(Path(paths[0])) if paths else None
    base = select(CATALOGUE, [])  # without an assignment: the base design, as `lab check`
    checks = chosen.checks if chosen else {c.id: c.points for c in base}
    name = chosen.name if chosen else "design"
    students = load_class(class_file)
    roster = class_roster(lab.args)
    out = Path(lab.args.out or f"grades-live-{name}")
    board = Board([s.name for s in students])
    started = time.monotonic()
    with Live(board.table(), console=lab.console, refresh_per_second=2) as view:
        board.live = view
        graded = grade_live(students, checks, name, jobs(lab.args, 8), board.update)
    for result in graded:
        result.save(out / "results")
    listed = assignment_checks(checks)
    facts = write_gradebook(graded, listed, out, check_columns=lab.args.check_columns)
    seconds = time.monotonic() - started
    lab.console.print(
        f"{len(graded)} students' servers checked in {seconds:.0f} s "
        f"({60 * len(graded) / max(seconds, 0.1):.0f} per minute); mean {facts.get('mean') or 0}. "
        f"Class overview: {out / 'index.html'}"
    )
    platform_file(lab, graded, listed, out, roster)
    return ExitCode.OK


def merge(lab, dirs: list[str]) -> ExitCode:
    if not dirs or not lab.args.out:
        raise LabError("usage: lab grade merge DIR... --out OUT")
    roster = class_roster(lab.args)
    summary = merge_command(dirs, lab.args.out, check_columns=lab.args.check_columns)
    for line in summary.lines():
        lab.console.print(line)
    platform_file(lab, summary.results, summary.checks, Path(lab.args.out), roster)
    return ExitCode.OK


class Board:
    """The live table: student, stage, score, re-run."""

    def __init__(self, students: list[str]):
        self.rows = {student: ["waiting", "", ""] for student in students}
        self.live = None

    def update(self, student, stage, result) -> None:
        row = self.rows.setdefault(student, ["", "", ""])
        row[0] = stage
        if result is not None:
            row[0] = f"{stage}: {result.error}" if result.error else stage
            row[1] = f"{result.score}/{result.max_score}" if result.first else ""
            row[2] = result.rerun
        if self.live is not None:
            self.live.update(self.table())

    def table(self) -> Table:
        table = Table(title="lab grade", title_justify="left")
        for column in ("student", "stage", "score", "re-run"):
            table.add_column(column)
        for student, (stage, score, rerun) in self.rows.items():
            table.add_row(student, stage, score, rerun)
        return table
