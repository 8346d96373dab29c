"""Prometheus: where it listens, its HTTP API's replies, and an exporter's text format."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TypedDict
from urllib.parse import urlsplit

from lab.facts import http, ss

PORT = 9090


class Target(TypedDict):
    """An active target of Prometheus (/api/v1/targets)."""

    url: str  # its scrape URL
    instance: str  # its instance label
    health: str  # up, down or unknown
    error: str  # its last scrape's error ("" none)


class Rule(TypedDict):
    """An alerting rule Prometheus has loaded (/api/v1/rules)."""

    name: str
    query: str
    health: str  # ok, err or unknown
    error: str  # its last evaluation's error ("" none)


class Alert(TypedDict):
    """An alert Prometheus holds (/api/v1/alerts)."""

    labels: dict[str, str]
    state: str  # pending or firing


class NoAnswer(ValueError):
    """A reply that is no API answer; its message is the first line that came back."""


def endpoint(listeners: list[ss.Listener]) -> tuple[str | None, list[str]]:
    """The address:port a Prometheus process listens on (loopback for any), and who holds 9090."""
    holders = sorted({n for s in ss.on_port(listeners, PORT) for n in s.names})
    for s in listeners:
        if s.kind == "tcp" and "prometheus" in s.names and ":" not in s.address:
            return (f"{'127.0.0.1' if s.address == '*' else s.address}:{s.port}", holders)
    return None, holders


def reply_data(raw: str) -> dict:
    """The data of an API reply (status line, headers and body); NoAnswer when it is none."""
    body = http.parse_reply(raw).json()
    if not isinstance(body, dict) or body.get("status") != "success":
        raise NoAnswer((raw.strip().splitlines() or ["no answer"])[0][:120])
    return body["data"]


def parse_alerts(data: dict) -> list[Alert]:
    """/api/v1/alerts: each alert's labels and state (pending or firing)."""
    return [
        {"labels": a.get("labels", {}), "state": a.get("state", "")} for a in data.get("alerts", [])
    ]


def parse_rules(data: dict) -> list[Rule]:
    """/api/v1/rules: each alerting rule's name, expression, health and last error."""
    return [
        {
            "name": r.get("name", ""),
            "query": r.get("query", ""),
            "health": r.get("health", ""),
            "error": r.get("lastError", ""),
        }
        for group in data.get("groups", [])
        for r in group.get("rules", [])
        if r.get("type", "alerting") == "alerting"
    ]


def parse_targets(data: dict) -> list[Target]:
    """/api/v1/targets: each active target's scrape URL, instance, health and last error."""
    return [
        {
            "url": t.get("scrapeUrl", ""),
            "instance": t.get("labels", {}).get("instance", ""),
            "health": t.get("health", ""),
            "error": t.get("lastError", ""),
        }
        for t in data.get("activeTargets", [])
    ]


def instances(data: dict) -> list[str]:
    """The instance label of each series of a query's result."""
    return sorted({r.get("metric", {}).get("instance", "") for r in data.get("result", [])})


def target_host(url: str) -> tuple[str, int | None]:
    """The host and port a scrape URL reads (no port when it is no number)."""
    try:
        parts = urlsplit(url)
        return parts.hostname or "", parts.port
    except ValueError:
        return "", None


def samples(data: dict, label: str = "instance") -> dict[str, str]:
    """Each series' value of a query's result, by one of its labels."""
    found = {}
    for r in data.get("result", []):
        value = r.get("value") or [None, ""]
        found[str(r.get("metric", {}).get(label, ""))] = str(value[-1])
    return found


def labelled(data: dict, label: str) -> dict[str, str]:
    """For each instance of a query's result, the value of another of its labels."""
    return {
        str(r.get("metric", {}).get("instance", "")): str(r.get("metric", {}).get(label, ""))
        for r in data.get("result", [])
    }


def counter_total(metrics: str, name: str) -> float | None:
    """The sum of a counter's series in an exporter's text format; None when it has none."""
    values = []
    for line in metrics.splitlines():
        if line.startswith(name) and line[len(name) : len(name) + 1] in ("{", " "):
            try:
                values.append(float(line.rsplit("}", 1)[-1].split()[0]))
            except (ValueError, IndexError):
                continue
    return sum(values) if values else None


def epoch_seconds(stamp: str) -> float | None:
    """An RFC 3339 time in UTC as Prometheus writes it (nanoseconds and all), in epoch seconds."""
    found = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z$", stamp or "")
    if not found:
        return None
    whole = datetime.fromisoformat(found.group(1)).replace(tzinfo=UTC).timestamp()
    return whole + float(found.group(2) or 0)
