"""Monitoring (Prometheus): every exporter scraped and up; alerts that really fire and clear.

Prometheus is asked over its HTTP API from inside the load balancer (a firewall may keep port
9090 from the machine), by the process that holds the socket, never by a job or rule name.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import re
import time
from typing import TypedDict
from urllib.parse import urlencode, urlsplit

from checks.base import Check, CheckError, failed, passed
from lab.core.wait import Deadline
from lab.facts import http as host_http
from lab.facts import mysql, proc, prometheus, ss
from lab.observe import probes
from lab.remote.quoting import quote

NODE_PORT = 9100
FIRE_WITHIN = 60.0  # seconds an alert may take to fire once something breaks
# ... and to be at least pending: a failure seen by HAProxy, then scraped and evaluated (at
# Prometheus's default 15 s intervals, at most about 32 s); no alert by then means none comes
PENDING_WITHIN = 35.0
CLEAR_WITHIN = 60.0  # seconds it may take to clear once it is repaired
# ... from its start or a reload, for Prometheus to list every target (about 5 s) and read each
# once (its default scrape interval is 15 s; a target never read yet has health "unknown"),
# with room for a loaded machine where Prometheus takes 15 s or more to start
FIRST_SCRAPE_WITHIN = 40.0
SAFETY_SECONDS = 150  # a host repairs what the grader broke by itself after this (dead-man switch)
POLL = 0.5
NODE_SERIES = "group by (instance) (node_uname_info)"
HAPROXY_SERIES = 'group by (instance) ({__name__=~"haproxy_.+"})'
LOOPBACK = ("localhost", "127.0.0.1", "::1")


class RequestCounts(TypedDict):
    """HAProxy's request counter around the grader's own requests to the site."""

    sent: int  # the grader's requests
    # by HAProxy target's scrape URL: its counter (None: it has none)
    before: dict[str, float | None]
    after: dict[str, float | None]


class TargetsObservation(TypedDict):
    host: str  # the monitoring host
    hosts: dict[str, str]  # every lab host → its address
    targets: list[prometheus.Target]
    resolved: dict[str, list[str]]  # each target's host part → its addresses there
    node: list[str]  # instances with node exporter's series
    haproxy: list[str]  # instances with HAProxy's series
    balancers: list[str]
    skew: dict[str, str]  # instance → node_time_seconds minus its scrape time (a number)
    nodename: dict[str, str]  # instance → node_uname_info's nodename
    hostnames: dict[str, str]  # lab host → its hostname
    requests: RequestCounts


class Watched(TypedDict):
    """Something broken and repaired while the alerts were watched (watch())."""

    before: list[dict[str, str]]  # the labels of each alert active before the break
    already: list[str]  # alerts firing before the break
    fired: str | None  # the alert the break made fire, in words
    fired_labels: dict[str, str] | None
    fire_seconds: float | None  # from the break until it fired
    waited: float  # seconds the grader waited for it
    clear_seconds: float | None  # from the repair until it cleared
    other: list[str]  # new alerts that fired, naming none of names
    pending: list[str]  # alerts naming one of names that were pending
    rules: list[prometheus.Rule]
    names: list[str]  # what the alert must name (hosts, addresses, HAProxy servers)
    words: list[str]  # every word that names a lab host


class Refused(TypedDict):
    """Why the grader broke nothing (what it would stop was not running as it must)."""

    refused: str
    names: list[str]


class WebServerStopped(TypedDict):
    victim: str  # the web server taken out of the rotation
    unit: str  # its service, stopped ("" when none)


class RotationWatched(Watched, WebServerStopped):
    """The rotation alert, watched."""


class RotationRefused(Refused, WebServerStopped):
    """The rotation alert, not tried."""


RotationObservation = RotationWatched | RotationRefused


class ReplicationStopped(TypedDict):
    replica: str


class ReplicationWatched(Watched, ReplicationStopped):
    """The replication alert, watched."""


class ReplicationRefused(Refused, ReplicationStopped):
    """The replication alert, not tried."""


ReplicationObservation = ReplicationWatched | ReplicationRefused


# -- Prometheus's API, from the host it runs on --------------------------------------------
def monitor_host(lab) -> str:
    """Where Prometheus must run: the (first) load balancer."""
    return lab.topology.with_role("lb")[0].name


def server(lab) -> dict:
    """Prometheus on the monitoring host: where it listens (memo per run)."""

    def find():
        host = monitor_host(lab)
        where, holders = prometheus.endpoint(probes.listeners(lab, host))
        return {"host": host, "endpoint": where, "holders": holders}

    return lab.memo("prometheus", find)


def api(lab, host: str, where: str, path: str, **params) -> dict:
    """GET Prometheus's /api/v1/path on host; its data, or a CheckError saying what came back."""
    query = f"/api/v1/{path}" + (f"?{urlencode(params)}" if params else "")
    raw = lab.sh(host, host_http.get(where, query, "localhost") + " 2>&1", check=False)
    try:
        return prometheus.reply_data(raw)
    except prometheus.NoAnswer as e:
        raise CheckError(f"{host}: Prometheus's /api/v1/{path} did not answer ({e})") from None


def require_server(lab) -> dict:
    o = server(lab)
    if not o["endpoint"]:
        held = f" (port 9090 is held by {', '.join(o['holders'])})" if o["holders"] else ""
        raise CheckError(f"{o['host']}: no Prometheus process is listening{held}")
    return o


def alerts(lab) -> list[prometheus.Alert]:
    """The alerts Prometheus holds now (pending or firing)."""
    o = require_server(lab)
    return prometheus.parse_alerts(api(lab, o["host"], o["endpoint"], "alerts"))


def alert_rules(lab) -> list[prometheus.Rule]:
    """Every alerting rule Prometheus has loaded."""
    o = require_server(lab)
    return prometheus.parse_rules(api(lab, o["host"], o["endpoint"], "rules", type="alert"))


# -- pure helpers --------------------------------------------------------------------------
def lab_host_of(name: str, hosts: dict[str, str], resolved: dict, monitor: str) -> str | None:
    """Which lab host a target's host part is: by address (a name resolved on the monitoring
    host); loopback is the monitoring host itself."""
    if name in LOOPBACK or _loopback(name):
        return monitor
    for address in [name, *resolved.get(name, [])]:
        for host, own in hosts.items():
            if address == own:
                return host
    return None


def _loopback(name: str) -> bool:
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def host_word(value: object) -> str:
    """The host a label value names: a URL's host, without a port, a DNS name's first label
    (lower case), or an address as it is; empty for a URL that is none."""
    text = str(value).strip()
    try:
        if "://" in text:
            text = urlsplit(text).hostname or ""
    except ValueError:
        return ""
    if text.startswith("["):  # [v6]:port
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return text.lower().rstrip(".").partition(".")[0]


def named(alert: dict, words) -> set[str]:
    """Which of words (host names, addresses, server names) the alert's label values name."""
    wanted = {host_word(w) for w in words}
    return {host_word(v) for v in alert["labels"].values()} & wanted


def alert_key(alert: dict, words) -> str:
    """What makes an alert the same one: its name and the hosts it names (never a templated
    label such as a value, which changes at every evaluation)."""
    return json.dumps([alert["labels"].get("alertname", ""), sorted(named(alert, words))])


def counts(alert: dict, before: list[dict], names, words) -> bool:
    """Whether an alert is the one the grader's break made: it names one of names, and no alert
    of its name about the same hosts was active before the break."""
    if not named(alert, names):
        return False
    return alert_key(alert, words) not in {alert_key(a, words) for a in before}


def describe_alert(alert: dict) -> str:
    labels = dict(alert["labels"])
    name = labels.pop("alertname", "?")
    shown = ", ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k != "severity")
    return f"{name} {{{shown}}}" if shown else name


def names_any(alert: dict, words) -> bool:
    """Whether one of the alert's label values names one of words (see host_word)."""
    return bool(named(alert, words))


# -- breaking one thing and watching the alerts ----------------------------------------------
def safety_switch(lab, host: str, name: str, repair: str) -> None:
    """A timer on host that repairs by itself, should the grader die before it does."""
    unit = quote(f"{name}.timer")
    lab.sh(
        host,
        f"systemctl stop {unit} 2>/dev/null; systemctl reset-failed {quote(name + '.service')} "
        f"2>/dev/null; systemd-run --quiet --unit={quote(name)} --on-active={SAFETY_SECONDS} "
        f"sh -c {quote(repair)}",
        sudo=True,
    )


def drop_switch(lab, host: str, name: str) -> None:
    lab.sh(host, f"systemctl stop {quote(name + '.timer')} 2>/dev/null; true", sudo=True)


def watch(lab, break_it, repair, names: list[str], words: list[str]) -> Watched:
    """Break something, wait for a new firing alert naming one of names (see counts), repair,
    wait for it to clear. Seconds are counted from the break and from the repair."""
    before = alerts(lab)
    other: set[str] = set()
    pending: set[str] = set()
    fired = None
    break_it()
    started = time.monotonic()
    try:
        for _ in Deadline(FIRE_WITHIN, start=started).ticks(POLL):
            now = [a for a in alerts(lab) if counts(a, before, names, words)]
            match = [a for a in now if a["state"] == "firing"]
            if match:
                fired = match[0]
                break
            fresh = [a for a in alerts(lab) if alert_key(a, words) not in keys(before, words)]
            other |= {describe_alert(a) for a in fresh if a["state"] == "firing"}
            pending |= {describe_alert(a) for a in now if a["state"] == "pending"}
            if not pending and time.monotonic() - started > PENDING_WITHIN:
                break
        fire_seconds = round(time.monotonic() - started, 1)
    finally:
        repair()
    repaired = time.monotonic()
    cleared = None
    if fired:
        key = alert_key(fired, words)
        for _ in Deadline(CLEAR_WITHIN, start=repaired).ticks(POLL):
            if all(alert_key(a, words) != key for a in alerts(lab)):
                cleared = round(time.monotonic() - repaired, 1)
                break
    return {
        "before": [a["labels"] for a in before],
        "already": [describe_alert(a) for a in before if a["state"] == "firing"],
        "fired": describe_alert(fired) if fired else None,
        "fired_labels": fired["labels"] if fired else None,
        "fire_seconds": fire_seconds if fired else None,
        "waited": fire_seconds,
        "clear_seconds": cleared,
        "other": sorted(other),
        "pending": sorted(pending),
        "rules": alert_rules(lab),
        "names": sorted(set(names)),
        "words": sorted(set(words)),
    }


def keys(alerts_: list[dict], words) -> set[str]:
    return {alert_key(a, words) for a in alerts_}


def judge_watch(o: Watched | Refused, fault: str, unnamed: str) -> tuple[bool, str]:
    """Whether the alert fired and cleared in time, in words."""
    if o.get("refused"):
        return False, o["refused"]
    if not o["rules"]:
        return False, "Prometheus has no alerting rule loaded"
    broken = [
        f"{r['name']} ({r['error'] or r['health']})" for r in o["rules"] if r["health"] == "err"
    ]
    if not o["fired"]:
        said = f"; alerts that did fire: {', '.join(o['other'])} ({unnamed})" if o["other"] else ""
        if o.get("pending"):
            said += f"; pending but not firing yet: {', '.join(o['pending'])} (`for:` too long?)"
        if o["already"]:
            said += f"; firing before the grader broke anything: {', '.join(o['already'])}"
        rules = ", ".join(r["name"] for r in o["rules"])
        errors = f"; rules failing to evaluate: {', '.join(broken)}" if broken else ""
        waited = o.get("waited") or FIRE_WITHIN  # less when not even a pending alert came
        return False, (
            f"{fault} for {waited:.0f} s: no alert fired"
            f"{'' if o.get('pending') else ' or was even pending'}{said} (alerting rules: {rules})"
            f"{errors}"
        )
    fired = {"labels": o["fired_labels"]}
    before = [{"labels": labels} for labels in o["before"]]
    if not named(fired, o["names"]):
        return False, f"{o['fired']} fired after {fault}, but {unnamed}"
    if not counts(fired, before, o["names"], o["words"]):
        return False, (
            f"{o['fired']} fired after {fault}, but an alert of that name about the same hosts "
            "was already active before the grader broke anything"
        )
    if o["clear_seconds"] is None:
        return False, (
            f"{o['fired']} fired {o['fire_seconds']} s after {fault}, but was still active "
            f"{CLEAR_WITHIN:.0f} s after the repair"
        )
    return True, (
        f"{o['fired']} fired {o['fire_seconds']} s after {fault} and cleared "
        f"{o['clear_seconds']} s after the repair"
    )


# -- the checks ------------------------------------------------------------------------------
CLOCK_SKEW = "node_time_seconds - timestamp(node_time_seconds)"  # a live exporter: ~0
MAX_SKEW = 30.0
UNAME = "node_uname_info"
SITE_REQUESTS = 3  # the grader's own requests, which a live HAProxy exporter counts
REQUEST_COUNTER = "haproxy_frontend_http_requests_total"


def haproxy_growth(lab, host, targets, haproxy, resolved) -> RequestCounts:
    """How much HAProxy's request counter, read from each HAProxy target's scrape URL on the
    monitoring host, grew while the grader sent SITE_REQUESTS requests to the site."""

    def read() -> dict[str, float | None]:
        totals = {}
        for t in targets:
            name, port = prometheus.target_host(t["url"])
            if t["instance"] not in haproxy or not t["url"].startswith("http://") or not port:
                continue
            address = ([*resolved.get(name, []), name])[0]
            parts = urlsplit(t["url"])
            path = parts.path + (f"?{parts.query}" if parts.query else "")
            raw = lab.sh(host, host_http.get(f"{address}:{port}", path, name), check=False)
            totals[t["url"]] = prometheus.counter_total(
                host_http.parse_reply(raw).body, REQUEST_COUNTER
            )
        return totals

    first = read()
    for _ in range(SITE_REQUESTS):
        with contextlib.suppress(CheckError):
            lab.http(f"http://{lab.address('lb')}/", follow=False)
    last = read()
    return {"sent": SITE_REQUESTS, "before": first, "after": last}


def liveness(o: TargetsObservation, host: str, instance: str) -> str:
    """Why a node exporter target is no live exporter of host (empty: it is)."""
    skew = o["skew"].get(instance)
    try:
        if skew is not None and abs(float(skew)) > MAX_SKEW:
            return (
                f"its node_time_seconds is {float(skew):+.0f} s off the scrape time: no live "
                "exporter serves it (a static file?)"
            )
    except ValueError:
        return f"its node_time_seconds is no number ({skew})"
    if skew is None:
        return "it has no node_time_seconds (no live node exporter?)"
    nodename, real = o["nodename"].get(instance, ""), o["hostnames"].get(host, "")
    if host_word(nodename) != host_word(real):
        return f"its node_uname_info says nodename {nodename!r}, but {host} is {real!r}"
    return ""


def haproxy_live(o: TargetsObservation) -> tuple[str, str]:
    """(an HAProxy exporter URL whose request counter grew with the grader's requests, why
    none did)."""
    growth = o["requests"]
    why = []
    for url, before in growth["before"].items():
        after = growth["after"].get(url)
        if before is None or after is None:
            why.append(f"{url} has no {REQUEST_COUNTER}")
        elif after - before >= growth["sent"]:
            return url, ""
        else:
            why.append(
                f"{url}'s {REQUEST_COUNTER} grew by {after - before:.0f} while the grader sent "
                f"{growth['sent']} requests to the site (no live exporter?)"
            )
    return "", "; ".join(why) or "no HAProxy target over http:// the grader could read"


def configured_ago(lab, host: str, where: str) -> float | None:
    """Seconds since Prometheus started or last loaded its configuration, by its host's clock
    (None when it does not say)."""
    try:
        info = api(lab, host, where, "status/runtimeinfo")
        now = float(lab.sh(host, "date +%s", check=False).strip())
    except (CheckError, ValueError):
        return None
    stamps = [
        prometheus.epoch_seconds(str(info.get(k, ""))) for k in ("startTime", "lastConfigTime")
    ]
    known = [t for t in stamps if t is not None]
    return now - max(known) if known else None


def scraped_targets(lab, host: str, where: str) -> list[prometheus.Target]:
    """The active targets; from a Prometheus started or reloaded less than FIRST_SCRAPE_WITHIN
    seconds ago, once it is ready, lists targets and has read each at least once."""
    deadline = None
    while True:
        try:
            targets = prometheus.parse_targets(api(lab, host, where, "targets", state="active"))
            error = None
        except CheckError as e:  # it answers 503 while it starts
            targets, error = [], e
        if targets and all(t["health"] != "unknown" for t in targets):
            return targets
        if deadline is None:
            age = configured_ago(lab, host, where)
            young = age if age is not None else (0.0 if error else FIRST_SCRAPE_WITHIN)
            deadline = Deadline(FIRST_SCRAPE_WITHIN - young)
        if deadline.passed:
            if error:
                raise error
            return targets
        time.sleep(1)


class TargetsUp(Check):
    id = "monitoring.targets"
    design = "monitoring"
    section = "monitoring"
    title = "Prometheus on the load balancer scrapes node exporter on every host and HAProxy"
    requirement = (
        "Prometheus on the load balancer scrapes node exporter on every host (by its lab "
        "address) and HAProxy's built-in exporter, and every one of those targets is up."
    )
    points = 5
    hint = (
        "Run Prometheus on the load balancer with a scrape target for node exporter "
        "(port 9100) on every host's address and one for HAProxy's Prometheus exporter."
    )

    def observe(self, lab) -> TargetsObservation:
        o = require_server(lab)
        host, where = o["host"], o["endpoint"]
        targets = scraped_targets(lab, host, where)
        names = {prometheus.target_host(t["url"])[0] for t in targets}
        resolved = probes.resolve(lab, host, names - set(LOOPBACK))

        def series(query):
            return prometheus.instances(api(lab, host, where, "query", query=query))

        haproxy = series(HAPROXY_SERIES)
        return {
            "host": host,
            "hosts": {h.name: h.address for h in lab.topology.hosts},
            "targets": targets,
            "resolved": resolved,
            "node": series(NODE_SERIES),
            "haproxy": haproxy,
            "balancers": [h.name for h in lab.topology.with_role("lb")],
            "skew": prometheus.samples(api(lab, host, where, "query", query=CLOCK_SKEW)),
            "nodename": prometheus.labelled(
                api(lab, host, where, "query", query=UNAME), "nodename"
            ),
            "hostnames": lab.on_each(
                [h.name for h in lab.topology.hosts], lambda h: lab.sh(h, proc.HOSTNAME).strip()
            ),
            "requests": haproxy_growth(lab, host, targets, haproxy, resolved),
        }

    def judge(self, o: TargetsObservation):
        monitor, hosts = o["host"], o["hosts"]
        by_host: dict[str, list[prometheus.Target]] = {}
        for t in o["targets"]:
            lab_host = lab_host_of(
                prometheus.target_host(t["url"])[0], hosts, o["resolved"], monitor
            )
            if lab_host:
                by_host.setdefault(lab_host, []).append(t)
        problems, seen = [], []
        for host, address in hosts.items():
            node = [
                t for t in by_host.get(host, []) if prometheus.target_host(t["url"])[1] == NODE_PORT
            ]
            node = node or [t for t in by_host.get(host, []) if t["instance"] in o["node"]]
            if not node:
                problems.append(
                    f"no target scrapes node exporter on {host} ({address}:{NODE_PORT})"
                )
            elif not any(t["health"] == "up" and t["instance"] in o["node"] for t in node):
                t = node[0]
                why = t["error"] or f"health {t['health'] or 'unknown'}, no node metrics"
                problems.append(f"{host}'s node exporter target {t['url']} is down: {why}")
            else:
                up = [t for t in node if t["health"] == "up" and t["instance"] in o["node"]]
                dead = [(t, liveness(o, host, t["instance"])) for t in up]
                if all(why for _, why in dead):
                    t, why = dead[0]
                    problems.append(f"{host}'s node exporter target {t['url']} is not live: {why}")
                else:
                    seen.append(host)
        haproxy = [
            t for b in o["balancers"] for t in by_host.get(b, []) if t["instance"] in o["haproxy"]
        ]
        if not any(t["health"] == "up" for t in haproxy):
            candidates = [t for b in o["balancers"] for t in by_host.get(b, []) if t not in haproxy]
            down = [t for t in candidates if t["health"] != "up"]
            if haproxy or down:
                t = (haproxy or down)[0]
                problems.append(
                    f"the HAProxy target {t['url']} is down: {t['error'] or t['health']}"
                )
            else:
                problems.append(
                    f"no target on {', '.join(o['balancers'])} serves HAProxy's metrics (haproxy_*)"
                )
        else:
            live, why = haproxy_live(o)
            if not live:
                problems.append(f"HAProxy's exporter is not live: {why}")
        if problems:
            return failed(f"Prometheus on {monitor}: " + "; ".join(problems))
        up = sum(1 for t in o["targets"] if t["health"] == "up")
        return passed(
            f"Prometheus on {monitor}: node exporter up on {', '.join(seen)}, HAProxy's "
            f"exporter up at {haproxy[0]['url']} ({up} of {len(o['targets'])} targets up)"
        )


class RotationAlert(Check):
    id = "monitoring.rotation-alert"
    design = "monitoring"
    section = "monitoring"
    title = "An alert fires when a web server leaves the rotation, and clears when it is back"
    requirement = (
        f"When a web server's Nginx stops, an alert naming that server is pending within "
        f"{PENDING_WITHIN:.0f} s and fires within {FIRE_WITHIN:.0f} s, and it clears within "
        f"{CLEAR_WITHIN:.0f} s once Nginx is back."
    )
    points = 5
    hint = (
        "Scrape HAProxy's exporter and add an alerting rule on its server status, e.g. "
        '`haproxy_server_status{state="UP"} == 0` with `for: 10s` (scrape and evaluate every 5 s).'
    )
    needs = ("monitoring.targets",)
    exclusive = True  # takes a web server out of the rotation
    waits = FIRST_SCRAPE_WITHIN + FIRE_WITHIN + CLEAR_WITHIN

    def observe(self, lab) -> RotationObservation:
        victim = lab.web_hosts()[-1]
        address = lab.address(victim)
        servers = {
            s["name"]
            for s in probes.balancer(lab)["servers"]
            if address in s["addresses"] or s["host"] == victim
        }
        holders = web_holders(lab, victim)
        unit = holders[0][1] if holders else ""
        refused = refusal(victim, holders)
        names = sorted({victim, address, *servers})
        if refused:
            return {"refused": refused, "victim": victim, "unit": unit, "names": names}
        what = f"{unit} stopped on {victim}"
        start = f"systemctl start {quote(unit)}"

        def undo():
            lab.sh(victim, start, sudo=True, check=False)
            drop_switch(lab, victim, f"{SWITCH}-web")

        def break_it():
            lab.on_cleanup(what, undo)
            safety_switch(lab, victim, f"{SWITCH}-web", start)
            lab.sh(victim, f"systemctl stop {quote(unit)}", sudo=True)

        o = watch(lab, break_it, lambda: lab.done_with(what), names, host_words(lab, servers))
        return {**o, "victim": victim, "unit": unit}

    def judge(self, o: RotationObservation):
        fault = f"{o['unit']} stopped on {o['victim']}"
        unnamed = f"none names {' or '.join(o['names'])}"
        ok, evidence = judge_watch(o, fault, unnamed)
        return passed(evidence) if ok else failed(evidence)


# the transient units that repair what each check broke, should the grader die first
SWITCH = "webstack-lab-check-repair"


# the systemd services the grader may stop to take a web server out of the rotation
WEB_SERVICES = re.compile(r"(nginx|angie|openresty|apache2?|httpd|lighttpd|caddy)[-@\w.]*\.service")


def web_holders(lab, host: str) -> list[tuple[str, str]]:
    """Each process listening on port 80 on host, with its systemd unit (empty when none)."""
    found = {p: n for s in ss.on_port(probes.listeners(lab, host), 80) for n, p in s.processes}
    if not found:
        return []
    listed = ",".join(str(int(p)) for p in sorted(found))
    units = {}
    for line in lab.sh(host, f"ps -o pid=,unit= -p {listed}", check=False).splitlines():
        pid, _, unit = line.strip().partition(" ")
        if pid.isdigit():
            units[int(pid)] = unit.strip()
    return [(name, units.get(pid, "")) for pid, name in sorted(found.items())]


def refusal(host: str, holders: list[tuple[str, str]]) -> str:
    """Why the grader will not stop what serves port 80 on host (empty: it may)."""
    if not holders:
        return (
            f"nothing listens on port 80 on {host} before the check: the grader stops a running "
            "web server to see the alert, and starts nothing it did not stop"
        )
    others = sorted({f"{n} ({u or 'no systemd unit'})" for n, u in holders})
    if len({u for _, u in holders}) > 1 or not WEB_SERVICES.fullmatch(holders[0][1]):
        return (
            f"port 80 on {host} is held by {', '.join(others)}, not by one web server's "
            "systemd service (nginx.service, apache2.service, ...): the grader will not stop it"
        )
    return ""


def host_words(lab, servers=()) -> list[str]:
    """Every word that names a lab host in a label: names, addresses, HAProxy server names."""
    return sorted({w for h in lab.topology.hosts for w in (h.name, h.address)} | set(servers))


class ReplicationAlert(Check):
    id = "monitoring.replication-alert"
    design = "monitoring"
    section = "monitoring"
    title = "An alert fires when replication stops, and clears when it runs again"
    requirement = (
        f"When the replica stops replicating, an alert is pending within {PENDING_WITHIN:.0f} s "
        f"and fires within {FIRE_WITHIN:.0f} s, and it clears within {CLEAR_WITHIN:.0f} s once "
        "replication runs again."
    )
    points = 5
    hint = (
        "Give Prometheus the replica's state (e.g. node exporter's textfile collector fed "
        "every few seconds from SHOW REPLICA STATUS) and alert when it says stopped."
    )
    needs = ("monitoring.targets",)
    exclusive = True  # stops the replica
    waits = FIRST_SCRAPE_WITHIN + FIRE_WITHIN + CLEAR_WITHIN

    def observe(self, lab) -> ReplicationObservation:
        primary, replica = probes.roles(lab)
        names = sorted({primary, replica, lab.address(primary), lab.address(replica)})
        state = mysql.replica_status(lab.sh(replica, mysql.REPLICA_STATUS, sudo=True))
        if not state.running:
            refused = (
                f"replication was not running on {replica} before the check (IO thread: "
                f"{state.io_running or 'none'}, SQL thread: {state.sql_running or 'none'}): the "
                "grader stops running replication to see the alert, and starts nothing it did "
                "not stop"
            )
            return {"refused": refused, "replica": replica, "names": names}
        what = f"replication stopped on {replica}"
        restart = mysql.command("START REPLICA")

        def undo():
            lab.sh(replica, restart, sudo=True, check=False)
            drop_switch(lab, replica, f"{SWITCH}-replica")

        def break_it():
            lab.on_cleanup(what, undo)
            safety_switch(lab, replica, f"{SWITCH}-replica", restart)
            lab.sh(replica, mysql.command("STOP REPLICA"), sudo=True)

        o = watch(lab, break_it, lambda: lab.done_with(what), names, host_words(lab))
        return {**o, "replica": replica}

    def judge(self, o: ReplicationObservation):
        fault = f"replication stopped on {o['replica']}"
        ok, evidence = judge_watch(o, fault, f"none names {' or '.join(o['names'])}")
        return passed(evidence) if ok else failed(evidence)
