"""Concept questions about the design: a question bank (docs/quiz.yml), experiments that let the
live lab show the answer, judging a prediction, and the answers saved per lab."""

from __future__ import annotations

import json
import re
import socket
import string
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import yaml

from checks.base import CheckError
from checks.database import ReplicaReadOnly
from checks.dns import ask, follow, resolve_www
from checks.lb import ActiveActive, meanwhile, steadily, through_lb, wait_until_servers_up
from lab.core import resources, wait
from lab.core.errors import LabError
from lab.core.state import write_private
from lab.core.topology import Topology
from lab.observe import probes
from lab.observe.live import ChannelRefused, LiveLab, forwarded, forwarded_port, json_object
from lab.remote.quoting import quote

BANK = resources.docs_dir() / "quiz.yml"
ANSWERS_FILE = "quiz.json"
SCHEMA = "webstack-lab/quiz/1"
LETTERS = string.ascii_lowercase
ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,40}$")
PLACEHOLDERS = ("domain", "lb", "lb_address", "dns", "web1", "web2", "primary", "replica")
QUESTION_KEYS = {"id", "topic", "question", "experiment", "choices", "explanation"}
CHOICE_KEYS = {"text", "correct", "observed", "why"}


# -- the bank -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Choice:
    text: str
    correct: bool = False  # the design's answer
    observed: str | None = None  # the experiment's outcome that makes this choice the right one
    why: str = ""  # shown to whoever picks it


@dataclass(frozen=True)
class Question:
    id: str
    topic: str
    question: str
    choices: tuple[Choice, ...]
    explanation: str
    experiment: str | None = None

    @property
    def design_letter(self) -> str:
        return next(LETTERS[i] for i, c in enumerate(self.choices) if c.correct)

    def letter_observed(self, value: str, names: dict[str, str]) -> str | None:
        """The choice the lab's observation makes right (None: nothing listed happened)."""
        for i, choice in enumerate(self.choices):
            if choice.observed is not None and fill(choice.observed, names) == value:
                return LETTERS[i]
        return None


@dataclass(frozen=True)
class Bank:
    topics: dict[str, str]
    questions: tuple[Question, ...]

    def select(self, topic: str | None) -> list[Question]:
        if topic is None:
            return list(self.questions)
        if topic not in self.topics:
            raise LabError(f"unknown quiz topic {topic!r}; topics: {', '.join(self.topics)}")
        return [q for q in self.questions if q.topic == topic]

    def question(self, qid: str) -> Question:
        for q in self.questions:
            if q.id == qid:
                return q
        raise LabError(f"unknown question {qid!r}", hint="`lab quiz --list` shows the ids")


def fill(text: str, names: dict[str, str]) -> str:
    """text with {placeholders} replaced by the lab's own names."""
    return text.format_map(names)


def names_of(topology: Topology) -> dict[str, str]:
    """The placeholder values for a topology (the reference names where a role is missing)."""
    web = [h.name for h in topology.with_role("web")] + ["web-01", "web-02"]
    lb = (topology.with_role("lb") or [None])[0]
    dns = (topology.with_role("dns") or [None])[0]
    primary = (topology.with_role("db-primary") or [None])[0]
    replica = (topology.with_role("db-replica") or [None])[0]
    return {
        "domain": topology.domain,
        "lb": lb.name if lb else "lb-01",
        "lb_address": lb.address if lb else "the load balancer's address",
        "dns": dns.name if dns else "lb-01",
        "web1": web[0],
        "web2": web[1] if web[1] != web[0] else web[2],
        "primary": primary.name if primary else "web-01",
        "replica": replica.name if replica else "web-02",
    }


def load_bank(path: Path = BANK) -> Bank:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise LabError(f"{path}: cannot read the question bank: {exc}") from None
    return parse_bank(data, str(path))


def parse_bank(data: object, where: str = "quiz.yml") -> Bank:
    """Validate the bank (docs/quiz.md describes it); every error names the question and field."""

    def fail(message: str) -> LabError:
        return LabError(f"{where}: {message}", hint="docs/quiz.md describes the format")

    if not isinstance(data, dict) or not isinstance(data.get("questions"), list):
        raise fail("expected a mapping with topics and a list of questions")
    topics = data.get("topics")
    if not isinstance(topics, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in topics.items()
    ):
        raise fail("topics: expected a mapping of topic name to a one-line description")
    questions: list[Question] = []
    for n, item in enumerate(data["questions"]):
        if not isinstance(item, dict):
            raise fail(f"questions[{n}]: expected a mapping")
        label = f"question {item.get('id', n)!r}"
        questions.append(_parse_question(item, label, topics, {q.id for q in questions}, fail))
    return Bank(dict(topics), tuple(questions))


def _parse_question(item: dict, label: str, topics: dict, ids: set, fail: Callable) -> Question:
    """One question of the bank, its keys and texts checked, its id not among ids; fail makes
    the error to raise."""
    unknown = sorted(set(item) - QUESTION_KEYS)
    if unknown:
        raise fail(
            f"{label}: unknown key {unknown[0]!r}; known: {', '.join(sorted(QUESTION_KEYS))}"
        )
    qid = item.get("id")
    if not isinstance(qid, str) or not ID_RE.match(qid):
        raise fail(f"{label}: id must be lowercase letters, digits and '-'")
    if qid in ids:
        raise fail(f"{label}: the id is used twice")
    if not isinstance(item.get("topic"), str) or item["topic"] not in topics:
        raise fail(f"{label}: topic {item.get('topic')!r} is not one of {', '.join(topics)}")
    for key in ("question", "explanation"):
        if not isinstance(item.get(key), str) or not item[key].strip():
            raise fail(f"{label}: {key} must be a non-empty text")
    experiment = item.get("experiment")
    if experiment is not None and (
        not isinstance(experiment, str) or experiment not in EXPERIMENTS
    ):
        raise fail(f"{label}: unknown experiment {experiment!r}; known: {', '.join(EXPERIMENTS)}")
    choices = _parse_choices(item.get("choices"), label, experiment, fail)
    question = Question(
        qid, item["topic"], item["question"], choices, item["explanation"], experiment
    )
    _check_placeholders(question, label, fail)
    return question


def _parse_choices(raw: object, label: str, experiment: str | None, fail: Callable):
    """A question's choices: 2 to 6, exactly one the design's answer, which names what the lab
    observes when the question has an experiment."""
    if not isinstance(raw, list) or not 2 <= len(raw) <= 6:
        raise fail(f"{label}: choices must be a list of 2 to 6 choices")
    choices = []
    for m, choice in enumerate(raw):
        if not isinstance(choice, dict) or not isinstance(choice.get("text"), str):
            raise fail(f"{label}: choice {LETTERS[m]} needs a text")
        extra = sorted(set(choice) - CHOICE_KEYS)
        if extra:
            raise fail(f"{label}: choice {LETTERS[m]}: unknown key {extra[0]!r}")
        observed = choice.get("observed")
        if observed is not None and (experiment is None or not isinstance(observed, str)):
            raise fail(f"{label}: choice {LETTERS[m]}: observed needs an experiment and a text")
        correct, why = choice.get("correct") is True, choice.get("why", "")
        if not isinstance(why, str):
            raise fail(f"{label}: choice {LETTERS[m]}: why must be a text")
        choices.append(Choice(choice["text"], correct, observed, why))
    if sum(c.correct for c in choices) != 1:
        raise fail(f"{label}: exactly one choice must have correct: true (the design's answer)")
    if experiment and not next(c for c in choices if c.correct).observed:
        raise fail(f"{label}: the correct choice must say what the lab observes (observed:)")
    return tuple(choices)


def _check_placeholders(question: Question, label: str, fail: Callable) -> None:
    """Every text of the question fills with PLACEHOLDERS and nothing else."""
    sample = {p: p for p in PLACEHOLDERS}
    texts = [question.question, question.explanation]
    texts += [t for c in question.choices for t in (c.text, c.why, c.observed or "")]
    for text in texts:
        try:
            fill(text, sample)
        except (KeyError, ValueError, IndexError) as exc:
            raise fail(
                f"{label}: bad placeholder {exc} in {text[:40]!r}; known: "
                + ", ".join("{" + p + "}" for p in PLACEHOLDERS)
            ) from None


# -- experiments: the lab shows the answer ------------------------------------------------------
@dataclass(frozen=True)
class Observation:
    value: str  # compared with each choice's `observed`
    evidence: str  # what the lab did and saw, in words


EXPERIMENTS: dict[str, Callable[[LiveLab], Observation]] = {}
# the checks that grade what an experiment shows: where the lab differs, their last results
EXPERIMENT_CHECKS: dict[str, tuple[str, ...]] = {}


def experiment(name: str, checks: tuple[str, ...]):
    def register(func):
        EXPERIMENTS[name] = func
        EXPERIMENT_CHECKS[name] = checks
        return func

    return register


def last_results(question: Question, record: dict) -> list[dict]:
    """The lab's last result (from its one record of checks) of each check that grades what
    question's experiment shows; status None for a check never run."""
    saved = record.get("checks", {})
    return [
        {
            "id": cid,
            "status": saved.get(cid, {}).get("status"),
            "evidence": saved.get(cid, {}).get("evidence", ""),
            "at": saved.get(cid, {}).get("at"),
        }
        for cid in EXPERIMENT_CHECKS.get(question.experiment or "", ())
    ]


def observe(lab: LiveLab, name: str) -> Observation:
    """Run one experiment; whatever it changed on the lab is put back, also on Ctrl-C."""
    try:
        return EXPERIMENTS[name](lab)
    finally:
        lab.cleanup()


def _through_lb(lab: LiveLab) -> dict:
    """One request for the site's page through the load balancer, as a browser asks for it; a
    refused or failed one is status 0."""
    try:
        return through_lb(lab, timeout=3)
    except CheckError as exc:
        return {"status": 0, "served_by": None, "error": str(exc)}


@experiment("fourth-request", checks=("lb.round-robin",))
def fourth_request(lab: LiveLab) -> Observation:
    first, balancer = lab.web_hosts()[0], probes.balancer(lab)
    wait_until_servers_up(lab, balancer, 10.0)
    order, turns = steadily(
        lab, balancer, lambda: [_through_lb(lab)["served_by"] for _ in range(8)], 8
    )
    start = order.index(first) if first in order[:4] else None
    if start is None:
        raise CheckError(
            f"{first} answered none of the first 4 requests: {order}{meanwhile(turns)}"
        )
    fourth = order[start + 3]
    return Observation(
        str(fourth),
        f"8 requests through {lab.name('lb')} were answered by {' '.join(map(str, order))}; "
        f"counting from the first that {first} answered, the fourth was answered by {fourth}"
        + meanwhile(turns),
    )


@experiment("simultaneous", checks=("lb.active-active",))
def simultaneous(lab: LiveLab) -> Observation:
    burst = ActiveActive().observe(lab)["burst"]
    answered = sorted({b for b in burst if b})
    value = "all" if set(answered) == set(lab.web_hosts()) else "one"
    counts = ", ".join(f"{h} {burst.count(h)}" for h in answered) or "nobody"
    return Observation(value, f"{len(burst)} requests sent at the same moment: {counts}")


def _nginx_stopped(lab: LiveLab, victim: str, then: Callable[[], str] | None = None) -> dict:
    """Stop Nginx on victim and send requests through the balancer until 4 in a row are answered
    by the others (15 s at most); then (still stopped) what then returns; Nginx started again."""
    others = [h for h in lab.web_hosts() if h != victim]
    balancer = probes.balancer(lab)
    wait_until_servers_up(lab, balancer)
    what = f"Nginx stopped on {victim}"
    lab.on_cleanup(what, lambda: lab.sh(victim, "systemctl start nginx", sudo=True, check=False))
    lab.sh(victim, "systemctl stop nginx", sudo=True)
    started, answers = time.monotonic(), []

    def others_answer_all() -> bool:
        answers.append(_through_lb(lab))
        last = answers[-4:]
        return len(last) == 4 and all(a["status"] == 200 and a["served_by"] in others for a in last)

    try:
        settled = wait.until(others_answer_all, 15.0, 0.25)
        seconds = time.monotonic() - started
        extra = then() if then else ""
    finally:
        lab.done_with(what)
    wait_until_servers_up(lab, balancer, 10.0)
    last = answers[-4:]
    if settled:
        value = "others-answer"
    elif all(a["status"] != 200 for a in last):
        value = "all-fail"
    else:
        value = "some-fail"
    failed = sum(1 for a in answers if a["status"] != 200)
    seen = ", ".join(sorted({str(a["served_by"] or a["status"]) for a in last}))
    return {
        "value": value,
        "extra": extra,
        "evidence": f"with {victim}'s Nginx stopped, {len(answers)} requests in {seconds:.1f} s: "
        f"{failed} failed, the last {len(last)} answered by {seen}",
    }


@experiment("nginx-stops", checks=("lb.health-checks",))
def nginx_stops(lab: LiveLab) -> Observation:
    victim = lab.web_hosts()[0]
    seen = _nginx_stopped(lab, victim)
    return Observation(seen["value"], f"{seen['evidence']}; Nginx on {victim} started again")


@experiment("haproxy-stops", checks=("lb.haproxy",))
def haproxy_stops(lab: LiveLab) -> Observation:
    lb = lab.name("lb")
    what = f"HAProxy stopped on {lb}"
    lab.on_cleanup(what, lambda: lab.sh(lb, "systemctl start haproxy", sudo=True, check=False))
    lab.sh(lb, "systemctl stop haproxy", sudo=True)
    try:
        site = _through_lb(lab)
        direct = {}
        for host in lab.web_hosts():
            try:
                direct[host] = lab.web(host, "/").status_code
            except CheckError:
                direct[host] = 0
    finally:
        lab.done_with(what)
    wait.until(lambda: _through_lb(lab)["status"] == 200, 10.0, 0.25)
    servers_fine = all(code == 200 for code in direct.values())
    value = "site-down" if site["status"] != 200 and servers_fine else "site-up"
    seen = site.get("error") or f"HTTP {site['status']}"
    return Observation(
        value,
        f"HAProxy on {lb} stopped: http://www.{lab.topology.domain}/ gave {seen}, while "
        + ", ".join(f"{h} answered HTTP {c}" for h, c in direct.items())
        + " directly; HAProxy started again",
    )


@experiment("write-through-replica-host", checks=("app.database", "db.app-roles"))
def write_through_replica_host(lab: LiveLab) -> Observation:
    writes = probes.front_door(lab)
    primary, replica = writes["primary"], writes["replica"]
    post = writes["posts"].get(replica)
    if not post or post["status"] not in (200, 201):
        raise CheckError(f"signing the guestbook through {replica} failed: {post}")
    token = post["token"]
    if token in writes["on_primary"]:
        value = primary
    elif token in writes["on_replica"]:
        value = replica
    else:
        value = "nowhere"
    where = writes["on_primary"].get(token) or writes["on_replica"].get(token) or "no table"
    return Observation(
        value,
        f"an entry signed through {replica}'s web server was found on {value} ({where}) at once, "
        f"and on {replica} after replication ({writes['replicated_after']:.1f} s)",
    )


@experiment("replica-write", checks=("db.replica-read-only",))
def replica_write(lab: LiveLab) -> Observation:
    attempt = ReplicaReadOnly().observe(lab)
    text = attempt["attempt"]
    if "WRITE-ACCEPTED" in text:
        value = "accepted"
    elif "read-only" in text or "read_only" in text:
        value = "refused"
    else:
        value = "error"
    return Observation(value, f"an INSERT on {attempt['replica']}: {text[:120]}")


@experiment("www-record", checks=("dns.www",))
def www_record(lab: LiveLab) -> Observation:
    answer = resolve_www(lab)
    own = [t for name, t, _ in answer["records"] if name.lower() == answer["name"].lower()]
    chain, addresses, end = follow(answer["records"], answer["name"])
    shown = " → ".join([*chain, f"{end} A {', '.join(addresses)}"]) if addresses else "nothing"
    return Observation(own[0] if own else "none", f"{answer['server']} answered: {shown}")


@experiment("www-address", checks=("dns.www",))
def www_address(lab: LiveLab) -> Observation:
    answer = resolve_www(lab)
    _, addresses, _ = follow(answer["records"], answer["name"])
    owners = {h.address: h.name for h in lab.topology.hosts}
    value = owners.get(addresses[0], addresses[0]) if len(addresses) == 1 else ", ".join(addresses)
    return Observation(
        value,
        f"{answer['server']} resolves {answer['name']} to {', '.join(addresses) or 'nothing'}",
    )


SERVICE_UNIT = re.compile(r"^[\w@:.-]+\.service$")
ALERTS = "/api/v1/alerts"  # Prometheus's HTTP API: the alerts it holds, pending and firing


def _unit_of(lab: LiveLab, host: str, ps_args: str, what: str) -> str:
    """The systemd service that runs a process on host (`ps ps_args`), checked before it is
    handed to systemctl; a CheckError when there is none."""
    unit = lab.sh(host, f"ps -o unit= {ps_args} | head -n 1", check=False).strip()
    if not SERVICE_UNIT.match(unit):
        raise CheckError(f"{host}: {what} is not a systemd service ({unit or 'none found'})")
    return unit


def _connection(lab: LiveLab, host: str):
    """host's open SSH connection, whose server makes connections for the grader."""
    try:
        return lab.fleet.opened(host)
    except Exception as exc:
        raise CheckError(f"{host}: unreachable over SSH: {exc}") from None


def _stopped(lab: LiveLab, host: str, unit: str):
    """Stop unit on host now; the returned name is given to lab.done_with to start it again."""
    what = f"{unit} stopped on {host}"
    start = f"systemctl start {quote(unit)}"
    lab.on_cleanup(what, lambda: lab.sh(host, start, sudo=True, check=False, timeout=60))
    lab.sh(host, f"systemctl stop {quote(unit)}", sudo=True, timeout=60)
    return what


def _status(lab: LiveLab, host: str, path: str) -> int:
    """The status host's Nginx answers for path (0: no answer)."""
    try:
        return lab.web(host, path).status_code
    except CheckError:
        return 0


@experiment("app-stops", checks=("web.static", "web.reverse-proxy"))
def app_stops(lab: LiveLab) -> Observation:
    victim = lab.web_hosts()[0]
    master = probes.application(lab, victim)["master"]
    if not master:
        raise CheckError(f"{victim}: no application server found behind Nginx")
    unit = _unit_of(lab, victim, f"-p {int(master['pid'])}", "the application server")
    what = _stopped(lab, victim, unit)
    try:
        page, api = _status(lab, victim, "/"), _status(lab, victim, "/api/status")
    finally:
        lab.done_with(what)
    wait.until(lambda: _status(lab, victim, "/api/status") == 200, 15.0, 0.25)
    wait_until_servers_up(lab, probes.balancer(lab), 10.0)
    value = {(True, False): "static-only", (True, True): "everything"}.get(
        (page == 200, api == 200), "nothing"
    )
    return Observation(
        value,
        f"{unit} (the application server behind Nginx) stopped on {victim}: its Nginx answered "
        f"/ with {page or 'nothing'} and /api/status with {api or 'nothing'}; started again",
    )


@experiment("primary-stops", checks=("app.database", "db.replication", "lb.health-checks"))
def primary_stops(lab: LiveLab) -> Observation:
    primary, replica = probes.roles(lab)
    unit = _unit_of(lab, primary, "-C mariadbd,mysqld", "the database server")
    what = _stopped(lab, primary, unit)
    try:
        posts = {h: probes.post_entry(lab, h)["status"] for h in lab.web_hosts()}
        reads = {h: probes.read_reply(lab, h)["status"] for h in lab.web_hosts()}
        time.sleep(4)  # HAProxy's health checks have had their chance to take it out
        served = {_through_lb(lab)["served_by"] for _ in range(6)}
    finally:
        lab.done_with(what)
    wait.until(lambda: probes.read_reply(lab, primary)["status"] == 200, 20.0, 0.5)
    return Observation(
        primary_outcome(posts, reads, served, primary, replica),
        f"{unit} stopped on {primary}: signing through "
        + ", ".join(f"{h} gave {s}" for h, s in posts.items())
        + "; reading through "
        + ", ".join(f"{h} gave {s}" for h, s in reads.items())
        + f"; 6 requests through {lab.name('lb')} 4 s later were answered by "
        + ", ".join(sorted(map(str, served)))
        + "; started again",
    )


def primary_outcome(posts: dict, reads: dict, served: set, primary: str, replica: str) -> str:
    """What the site did with the primary stopped, from the status of a write and of a read
    through each web server and the servers that answered through the balancer."""
    if any(status in (200, 201) for status in posts.values()):
        return "writes-work"
    if primary not in served:
        return "primary-out"
    if reads[replica] != 200:
        return "no-reads"
    return "half-reads" if reads[primary] != 200 else "reads-work"


def mysql_greeting(data: bytes) -> tuple[str, str]:
    """What a MySQL server's first packet says: (greeting, its version), (host-not-allowed or
    error, its message), or (silent, '') when it sent nothing."""
    payload = data[4:]
    if not payload:
        return "silent", ""
    if payload[0] == 0x0A:  # protocol 10: the handshake, then the version, NUL-terminated
        return "greeting", payload[1:].split(b"\0", 1)[0].decode(errors="replace")
    if payload[0] == 0xFF and len(payload) >= 3:
        code = int.from_bytes(payload[1:3], "little")
        text = payload[3:].decode(errors="replace").strip()
        return ("host-not-allowed" if code == 1130 else "error"), f"error {code}: {text}"
    return "error", f"an unknown first packet ({payload[:8].hex()})"


@experiment("mysql-open", checks=("firewall.default-deny", "firewall.closed"))
def mysql_open(lab: LiveLab) -> Observation:
    lb, primary = lab.name("lb"), lab.name("db-primary")
    address = lab.address("db-primary")
    try:
        with (
            forwarded_port(_connection(lab, lb), address, 3306, lb, 3.0) as local,
            socket.create_connection(("127.0.0.1", local), timeout=3) as conn,
        ):
            conn.settimeout(3)
            value, said = mysql_greeting(conn.recv(512))
    except ChannelRefused as exc:
        value, said = ("silent" if exc.reason == "timed out" else "refused"), exc.reason
    except OSError as exc:
        value, said = "silent", str(exc) or type(exc).__name__
    finally:  # a handshake left unfinished counts against lb's address (max_connect_errors)
        probes.admin_sql(lab, primary, "FLUSH HOSTS", check=False)
    return Observation(
        value, f"{lb} connected to {address}:3306 ({primary}): {value} ({said or 'no answer'})"
    )


@experiment("nobody-told", checks=("lb.health-checks",))
def nobody_told(lab: LiveLab) -> Observation:
    victim, lb = lab.web_hosts()[-1], lab.name("lb")
    seen = _nginx_stopped(lab, victim, lambda: _firing_alerts(lab, lb))
    alerts = seen["extra"]
    value = "users" if seen["value"] != "others-answer" else ("alerted" if alerts else "nobody")
    told = f"alerts firing on {lb}: {alerts}" if alerts else f"no alert from {lb} ({ALERTS})"
    return Observation(value, f"{seen['evidence']}; {told}; Nginx on {victim} started again")


def _firing_alerts(lab: LiveLab, lb: str, seconds: float = 45.0) -> str:
    """The names of the alerts firing in a Prometheus on lb, waited for a while when one
    answers there ('' when none fires, or no Prometheus answers)."""
    names: list[str] = []

    def firing() -> bool:
        try:
            with forwarded(_connection(lab, lb), "127.0.0.1", 9090, lb, 3.0) as url:
                body = json_object(lab.http(url + ALERTS, timeout=3)) or {}
        except CheckError:
            return True  # nothing answers: nobody to wait for
        alerts = (body.get("data") or {}).get("alerts") or []
        names[:] = sorted(
            {
                str(a.get("labels", {}).get("alertname"))
                for a in alerts
                if a.get("state") == "firing"
            }
        )
        return bool(names)

    wait.until(firing, seconds, 2.0)
    return ", ".join(names)


@experiment("apex-record", checks=("dns.www",))
def apex_record(lab: LiveLab) -> Observation:
    server, name = lab.address("dns"), f"{lab.topology.domain}."
    records = ask(lab, server, name)["records"]
    own = [(t, v) for owner, t, v in records if owner.lower() == name.lower()]
    owners = {h.address: h.name for h in lab.topology.hosts}
    addresses = [v for t, v in own if t == "A"]
    if addresses:
        value = owners.get(addresses[0], addresses[0]) if len(addresses) == 1 else "several"
    else:
        value = "CNAME" if any(t == "CNAME" for t, _ in own) else "none"
    shown = ", ".join(f"{t} {v}" for t, v in own) or "no record"
    return Observation(value, f"{server} answered for {name}: {shown}")


# -- judging and saving -------------------------------------------------------------------------
@dataclass(frozen=True)
class Outcome:
    question: Question
    chosen: str  # a letter
    right_letter: str | None  # None: nothing listed happened on the lab
    observation: Observation | None = None
    error: str = ""  # the experiment could not be run (judged by the design instead)

    @property
    def right(self) -> bool | None:
        return None if self.right_letter is None else self.chosen == self.right_letter

    @property
    def lab_differs(self) -> bool:
        """The lab did something else than the design says (worth a `lab check`)."""
        return self.observation is not None and self.right_letter != self.question.design_letter


def judge(
    question: Question,
    chosen: str,
    names: dict[str, str],
    observation: Observation | None,
    error: str = "",
) -> Outcome:
    """Right or wrong: by what the lab showed when it was observed, else by the design."""
    if observation is None:
        return Outcome(question, chosen, question.design_letter, None, error)
    return Outcome(
        question, chosen, question.letter_observed(observation.value, names), observation
    )


def parse_choice(question: Question, text: str) -> str:
    """A letter of question's choices, or a LabError naming the valid ones."""
    letter = text.strip().lower()
    valid = LETTERS[: len(question.choices)]
    if len(letter) != 1 or letter not in valid:
        raise LabError(f"{question.id}: {text!r} is not a choice; choose one of {', '.join(valid)}")
    return letter


def parse_answers(bank: Bank, pairs: list[str], file: str | None) -> dict[str, str]:
    """Answers from --answers FILE (YAML or JSON: id: letter) and --answer ID=LETTER."""
    raw: dict[str, str] = {}
    if file:
        try:
            data = yaml.safe_load(Path(file).read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise LabError(f"cannot read answers from {file}: {exc}") from None
        if not isinstance(data, dict):
            raise LabError(f"{file}: expected a mapping of question id to a letter (a, b, ...)")
        raw.update({str(k): str(v) for k, v in data.items()})
    for pair in pairs:
        qid, sep, letter = pair.partition("=")
        if not sep:
            raise LabError(f"--answer {pair!r}: expected ID=CHOICE, e.g. fourth-request=b")
        raw[qid.strip()] = letter
    return {qid: parse_choice(bank.question(qid), letter) for qid, letter in raw.items()}


def answers_path(state_dir: Path) -> Path:
    return Path(state_dir) / ANSWERS_FILE


def load_answers(state_dir: Path) -> dict:
    try:
        data = json.loads(answers_path(state_dir).read_text())
    except (OSError, ValueError):
        return {"schema": SCHEMA, "answers": {}}
    if not isinstance(data, dict) or not isinstance(data.get("answers"), dict):
        return {"schema": SCHEMA, "answers": {}}
    return data


def outcome_dict(outcome: Outcome) -> dict:
    q, o = outcome.question, outcome.observation
    return {
        "id": q.id,
        "topic": q.topic,
        "choice": outcome.chosen,
        "right_choice": outcome.right_letter,
        "design_choice": q.design_letter,
        "right": outcome.right,
        "observed": {"value": o.value, "evidence": o.evidence} if o else None,
        "error": outcome.error,
    }


def save_answers(state_dir: Path, outcomes: list[Outcome]) -> dict:
    """Merge outcomes into the lab's saved answers (the latest per question) and score them."""
    saved = load_answers(state_dir)
    at = datetime.now(UTC).isoformat(timespec="seconds")
    for outcome in outcomes:
        saved["answers"][outcome.question.id] = {**outcome_dict(outcome), "at": at}
    judged = [a for a in saved["answers"].values() if a.get("right") is not None]
    saved.update(
        schema=SCHEMA,
        updated=at,
        score={"right": sum(1 for a in judged if a["right"]), "answered": len(judged)},
    )
    write_private(answers_path(state_dir), json.dumps(saved, indent=2) + "\n")
    return saved
