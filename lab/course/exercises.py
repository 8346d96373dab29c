"""The self-paced exercises: pages in docs/exercises, and what each builds and is graded by."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from checks import catalogue
from lab.core import resources, topology
from lab.core.errors import LabError
from provision import ha

EXERCISES = resources.exercises_dir()


@dataclass(frozen=True)
class Work:
    """What an exercise's reference solution applies, and the checks that grade the exercise."""

    components: tuple[str, ...] = ()
    checks: tuple[str, ...] = ()
    sections: tuple[str, ...] = ()  # every check of these sections grades it too
    extra: bool = False  # fixes an issue of the design: starts from the base design, not before it


# One definition per exercise. A check belongs to the first exercise after which it can pass
# when the exercises before it are done the reference way: X-Served-By is judged on whatever
# Nginx answers, error pages with `always` too (02); Nginx's static files need the application
# files (03); the application's database, and everything
# the grader writes through it, needs the database (04).
WORK = {
    "01": Work((), ("servers.reachable",)),
    "02": Work(("web",), ("web.nginx", "web.served-by")),
    "03": Work(("app",), ("web.static", "web.reverse-proxy", "app.server", "files.code-base")),
    "04": Work(
        ("database",),
        ("app.database", "db.servers", "db.replication", "db.replica-read-only", "db.app-roles"),
    ),
    "05": Work(("lb",), ("lb.haproxy", "lb.round-robin", "lb.active-active", "lb.health-checks")),
    "06": Work(("dns",), ("dns.www", "http.www")),
    # The issues the design document names, each fixed on top of the whole base design
    "08": Work(("firewall",), sections=("firewall",), extra=True),
    "09": Work(("https",), sections=("https",), extra=True),
    "10": Work(("monitoring",), sections=("monitoring",), extra=True),
    "11": Work(("ha",), sections=("ha",), extra=True),
}


@dataclass(frozen=True)
class Exercise:
    number: str
    slug: str
    title: str
    graded_by: str
    path: Path

    @property
    def work(self) -> Work:
        return WORK.get(self.number, Work())

    @property
    def name(self) -> str:
        return f"{self.number}-{self.slug}"


def starting_components(exercise: Exercise, directory: Path | None = None) -> tuple[str, ...]:
    """The components the exercises before this one apply: its starting point (for an extra,
    the base design's exercises only)."""
    found = all_exercises(directory or EXERCISES)
    before = [e for e in found if e.number < exercise.number and not e.work.extra]
    return tuple(c for e in before for c in e.work.components)


def all_exercises(directory: Path = EXERCISES) -> list[Exercise]:
    """Every exercise, in order, from its file name and first lines."""
    found = []
    for path in sorted(directory.glob("[0-9][0-9]-*.md")):
        text = path.read_text()
        title = text.splitlines()[0].lstrip("# ").strip()
        graded = re.search(r"^Graded by: (.+)$", text, re.MULTILINE)
        number, _, slug = path.stem.partition("-")
        found.append(
            Exercise(number, slug, title, graded.group(1) if graded else "not graded", path)
        )
    return found


def find(name: str, directory: Path = EXERCISES) -> Exercise:
    """The exercise called name: '2', '02', 'web-server' or '02-web-server'."""
    wanted = name.lower().removesuffix(".md")
    for exercise in all_exercises(directory):
        if wanted in (
            exercise.number,
            exercise.number.lstrip("0"),
            exercise.slug,
            f"{exercise.number}-{exercise.slug}",
        ):
            return exercise
    names = ", ".join(f"{e.number}-{e.slug}" for e in all_exercises(directory))
    raise LabError(f"unknown exercise {name!r}; exercises: {names}")


# -- the pages with the lab's own addresses ----------------------------------------------------

# The shipped topology whose addresses a page is written with (lab.yml unless named here).
PAGE_TOPOLOGY = {"11": "lab-ha.yml"}
# A host's last octet alone, as in "lb-01 (.10, ..." or "`.12`": only in these brackets.
SHORT_FORM = re.compile(r"(?<=[(`])\.(\d{1,3})(?=[,)`])")


@dataclass(frozen=True)
class Page:
    """An exercise page as `lab exercise N` shows it: its text with the lab's addresses."""

    exercise: Exercise
    text: str
    lab: topology.Topology
    translated: bool  # False: the lab lacks hosts the page needs; its addresses are the shipped
    reference: str  # the shipped topology file the page is written with


def reference_topology(exercise: Exercise) -> topology.Topology:
    """The shipped topology whose addresses the page of exercise shows."""
    return topology.load(resources.topology_file(PAGE_TOPOLOGY.get(exercise.number, "lab.yml")))


def counterparts(reference: topology.Topology, lab: topology.Topology) -> dict | None:
    """Each host of reference → the lab's host in its place: the one of the same name, else the
    one with the same roles at the same position; None when one has no counterpart."""
    found, used = {}, set()
    for host in reference.hosts:
        peers = [h for h in reference.hosts if h.roles == host.roles]
        same_roles = [h for h in lab.hosts if h.roles == host.roles and h.name not in used]
        by_name = [h for h in lab.hosts if h.name == host.name and h.name not in used]
        position = peers.index(host)
        match = by_name[0] if by_name else None
        if match is None and position < len(same_roles):
            match = same_roles[position]
        if match is None:
            return None
        found[host], used = match, used | {match.name}
    return found


def sql_host_pattern(subnet: ipaddress.IPv4Network) -> str:
    """MariaDB's host part for every address of subnet: x.y.z.% on an octet boundary, else
    address/netmask (a % pattern would be too narrow or too wide)."""
    if subnet.prefixlen in (8, 16, 24):
        kept = str(subnet.network_address).split(".")[: subnet.prefixlen // 8]
        return ".".join(kept) + ".%"
    return f"{subnet.network_address}/{subnet.netmask}"


def address_forms(reference: topology.Topology, lab: topology.Topology) -> dict[str, str] | None:
    """Every form reference's addresses and name take on a page → the lab's: host and virtual
    addresses (alone and with the prefix length), the gateway, the subnet in CIDR, netmask and
    MariaDB forms, and container names. None when the lab lacks a host or the virtual address
    the reference has."""
    hosts = counterparts(reference, lab)
    if hosts is None or (reference.virtual_address and not lab.virtual_address):
        return None
    pairs = {old.address: new.address for old, new in hosts.items()}
    if reference.virtual_address:
        pairs[reference.virtual_address] = lab.virtual_address
    pairs[reference.gateway] = lab.gateway
    old, new = reference.subnet, lab.subnet
    forms = {
        str(old): str(new),
        f"{old.network_address}/{old.netmask}": f"{new.network_address}/{new.netmask}",
        str(old.network_address): str(new.network_address),
        sql_host_pattern(old): sql_host_pattern(new),
    }
    for was, now in pairs.items():
        forms[was] = now
        forms[f"{was}/{old.prefixlen}"] = f"{now}/{new.prefixlen}"
    for was, now in hosts.items():
        forms[f"{reference.name}-{was.name}"] = f"{lab.name}-{now.name}"  # a container
    return forms


def short_forms(reference: topology.Topology, lab: topology.Topology) -> dict[str, str]:
    """A host's last octet alone (".12") → the lab's: its last octet when the lab's hosts share
    their first three, else the whole address."""
    hosts = counterparts(reference, lab) or {}
    pairs = {old.address: new.address for old, new in hosts.items()}
    if reference.virtual_address and lab.virtual_address:
        pairs[reference.virtual_address] = lab.virtual_address
    octets = [address.rsplit(".", 1)[1] for address in pairs]
    return {
        f".{address.rsplit('.', 1)[1]}": (
            "." + now.rsplit(".", 1)[1] if lab.subnet.prefixlen >= 24 else now
        )
        for address, now in pairs.items()
        if octets.count(address.rsplit(".", 1)[1]) == 1
    }


def form_pattern(forms) -> re.Pattern:
    """Any of forms as a whole token: an address not inside a longer one or a number, a name
    not inside a longer name."""

    def whole(form: str) -> str:
        if form.endswith(".0"):  # a network address: with a prefix, only as a form of its own
            return rf"(?<![\d.]){re.escape(form)}(?!\d|\.\d|/\d)"
        if form[0].isdigit():
            return rf"(?<![\d.]){re.escape(form)}(?!\d|\.\d)"
        return rf"(?<![\w.-]){re.escape(form)}(?![\w-])"

    return re.compile("|".join(whole(form) for form in sorted(forms, key=len, reverse=True)))


def translate(text: str, reference: topology.Topology, lab: topology.Topology) -> str | None:
    """text, written with reference's addresses, with the lab's; None if the lab cannot hold it."""
    forms = address_forms(reference, lab)
    if forms is None:
        return None
    text = form_pattern(forms).sub(lambda m: forms[m.group(0)], text)
    shorts = short_forms(reference, lab)
    return SHORT_FORM.sub(lambda m: shorts.get(m.group(0), m.group(0)), text)


# A page's placeholders for the lab's own secrets → how the value is made from the lab's secret
# store (the same as the reference's, so a student's host and a solved one agree).
SECRETS: dict[str, Callable[[Callable[[str], str]], str]] = {
    "@vrrp-password@": ha.vrrp_password,
    "@replication-password@": lambda secret: secret("db_replication_password"),
    "@read-password@": lambda secret: secret("db_read_password"),
    "@write-password@": lambda secret: secret("db_write_password"),
}


def with_secrets(text: str, secret: Callable[[str], str] | None) -> str:
    """text with the lab's own secrets in place of their placeholders (made on first use);
    unchanged without a secret store (a page read outside a lab)."""
    for placeholder, make in SECRETS.items():
        if secret is not None and placeholder in text:
            text = text.replace(placeholder, make(secret))
    return text


def page(
    exercise: Exercise, lab: topology.Topology, secret: Callable[[str], str] | None = None
) -> Page:
    """The page of exercise for this lab: the shipped addresses replaced by the lab's own, and
    its secrets by the lab's (secret: the lab's store, e.g. LabState.secret)."""
    text = with_secrets(exercise.path.read_text(), secret)
    reference = reference_topology(exercise)
    translated = translate(text, reference, lab)
    return Page(
        exercise,
        text if translated is None else translated,
        lab,
        translated is not None,
        PAGE_TOPOLOGY.get(exercise.number, "lab.yml"),
    )


# -- the steps a page marks: code blocks to follow as they stand ------------------------
# A fenced block's info string may say where it runs after its language, as key=value words:
# `run=web-01,web-02` (each host, in order; `run=here` is the student's machine) and
# `file=PATH` (the block is that file's whole content, written on each host). A `sql` block
# with `run=HOST` is typed into `sudo mariadb` there; any other block with `run=` into a shell.
# Renderers show only the language; the page's prose says the same in words.
FENCED = re.compile(
    r"^(?P<indent>[ ]*)```(?P<info>[^`\n]*)\n(?P<body>.*?)^(?P=indent)```[ \t]*$",
    re.MULTILINE | re.DOTALL,
)
HERE = "here"


@dataclass(frozen=True)
class Step:
    """A code block a page marks to be run or written as it stands, and where."""

    language: str
    run: tuple[str, ...]  # host names in order, or (HERE,): the student's machine
    body: str
    file: str | None = None

    @property
    def kind(self) -> str:
        """file, sql or shell: how a student enters the block."""
        if self.file:
            return "file"
        return "sql" if self.language == "sql" and self.run != (HERE,) else "shell"


def steps(text: str) -> list[Step]:
    """The marked code blocks of a page's text, in order (unmarked blocks are left out)."""
    found = []
    for match in FENCED.finditer(text):
        words = match["info"].split()
        language = words.pop(0) if words and "=" not in words[0] else ""
        marks = dict(word.partition("=")[::2] for word in words)
        if "run" not in marks:
            continue
        indent = match["indent"]
        body = "".join(line.removeprefix(indent) for line in match["body"].splitlines(True))
        hosts = tuple(h for h in marks["run"].split(",") if h)
        found.append(Step(language, hosts, body, marks.get("file") or None))
    return found


def check_ids(exercise) -> list[str]:
    """The ids of the checks that grade exercise: its own, and every check of its sections."""
    work = exercise.work
    in_sections = [c.id for c in catalogue().values() if c.section in work.sections]
    return [*work.checks, *(i for i in in_sections if i not in work.checks)]
