"""Requests through HAProxy show its algorithm's turns only when nothing moved them meanwhile: a
health check that timed out on a loaded machine, a redispatched connection, other visitors. The
grader reads HAProxy's counters around its requests and sends them again when something did."""

from __future__ import annotations

import csv
import io

from checks.lb import steadily
from lab.core.topology import PACKAGED, load
from lab.facts import haproxy
from lab.observe.live import LiveLab
from tests.record import read_raw

RECORDED = read_raw("show-stat-lb-01")
ADDRESSES = {"web-01": "192.168.211.11", "web-02": "192.168.211.12"}


def after(rows: list[dict[str, str]], host: str, **grown: int) -> list[dict[str, str]]:
    """rows with host's server row's counters grown by the given amounts."""
    out = []
    for row in rows:
        row = dict(row)
        if row["addr"].startswith(ADDRESSES[host] + ":"):
            for counter, n in grown.items():
                row[counter] = str(int(row[counter] or 0) + n)
        out.append(row)
    return out


def show_stat(rows: list[dict[str, str]]) -> str:
    """rows as HAProxy's runtime API prints them."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return "# " + text.getvalue()


def test_requests_taken_in_turn_move_nothing():
    before = haproxy.parse_show_stat(RECORDED)
    turned = after(after(before, "web-01", stot=4), "web-02", stot=4)
    assert haproxy.moves(before, turned, ADDRESSES, 8) == []
    assert haproxy.moves(before, before, ADDRESSES, 0) == []


def test_a_server_taken_out_a_retry_a_redispatch_and_other_visitors_are_named():
    before = haproxy.parse_show_stat(RECORDED)
    assert haproxy.moves(before, after(before, "web-02", chkdown=1), ADDRESSES, 0) == [
        "took web-02 out of the rotation 1 time(s) on failed health checks"
    ]
    assert haproxy.moves(before, after(before, "web-01", wretr=2, wredis=1), ADDRESSES, 0) == [
        "retried 2 connection(s) to web-01",
        "redispatched 1 request(s) meant for web-01",
    ]
    others = after(after(before, "web-01", stot=6), "web-02", stot=5)
    assert haproxy.moves(before, others, ADDRESSES, 8) == ["took 3 request(s) from other visitors"]


def test_haproxy_started_again_between_the_readings_is_named():
    """A reload between the readings starts every counter anew: what the requests did then
    cannot be read from them."""
    before = after(haproxy.parse_show_stat(RECORDED), "web-01", stot=40)
    reloaded = after(after(before, "web-01", stot=-39), "web-02", stot=1)
    assert haproxy.moves(before, reloaded, ADDRESSES, 8) == [
        "started again meanwhile (its counters began anew)"
    ]


def lab_reading(readings: list[list[dict[str, str]]], monkeypatch) -> tuple[LiveLab, list]:
    """A lab whose HAProxy answers `show stat` with each of readings in turn."""
    lab = LiveLab(load(PACKAGED), None)
    asked: list[str] = []

    def sh(host, command, sudo=False, check=True, timeout=15):
        asked.append(command)
        return show_stat(readings[len(asked) - 1])

    monkeypatch.setattr(lab, "sh", sh)
    monkeypatch.setattr(lab, "web_addresses", lambda: ADDRESSES)
    return lab, asked


BALANCER = {"host": "lb-01", "sockets": ["/run/haproxy/admin.sock"], "stat": {"web-01": {}}}


def test_a_run_that_something_moved_is_sent_again(monkeypatch):
    base = haproxy.parse_show_stat(RECORDED)
    flapped = after(after(base, "web-01", stot=5), "web-02", stot=3, chkdown=1)
    steady = after(after(flapped, "web-01", stot=4), "web-02", stot=4)
    lab, asked = lab_reading([base, flapped, flapped, steady], monkeypatch)
    runs = []
    result, turns = steadily(lab, BALANCER, lambda: runs.append(len(runs)) or len(runs), 8)
    assert (result, len(runs), len(asked)) == (2, 2, 4)
    assert turns == {"sent": {"web-01": 4, "web-02": 4}}


def test_a_balancer_that_keeps_moving_is_reported_after_three_runs(monkeypatch):
    readings = [haproxy.parse_show_stat(RECORDED)]
    for _ in range(3):
        readings.append(after(readings[-1], "web-02", stot=8, wredis=1))
        readings.append(readings[-1])
    lab, asked = lab_reading(readings[:-1], monkeypatch)
    assert not asked
    runs = []
    result, turns = steadily(lab, BALANCER, lambda: runs.append(1) or len(runs), 8)
    assert result == len(runs) == 3 and len(asked) == 6
    assert turns["moved"] == ["redispatched 1 request(s) meant for web-02"]
    assert turns["sent"] == {"web-01": 0, "web-02": 8}


def test_without_a_stats_socket_the_requests_are_sent_once(monkeypatch):
    lab, asked = lab_reading([], monkeypatch)
    result, turns = steadily(lab, BALANCER | {"stat": None}, lambda: "answers", 8)
    assert (result, turns, asked) == ("answers", {"sent": None}, [])


def with_status(rows: list[dict[str, str]], host: str, status: str) -> list[dict[str, str]]:
    """rows with host's server row in the given state."""
    return [
        r | {"status": status} if r["addr"].startswith(ADDRESSES[host] + ":") else r for r in rows
    ]


def test_a_server_that_came_back_into_the_rotation_meanwhile_is_named():
    up = haproxy.parse_show_stat(RECORDED)
    down = with_status(up, "web-02", "DOWN")
    assert haproxy.moves(down, after(up, "web-01", stot=8), ADDRESSES, 8) == [
        "saw web-02 go from DOWN to UP"
    ]
    assert haproxy.moves(down, down, ADDRESSES, 0) == []  # down all along: not a move


def test_a_run_that_a_returning_server_moved_is_sent_again(monkeypatch):
    up = haproxy.parse_show_stat(RECORDED)
    returned = after(up, "web-01", stot=7, chkdown=0)
    steady = after(after(returned, "web-01", stot=4), "web-02", stot=4)
    lab, asked = lab_reading(
        [with_status(up, "web-02", "DOWN"), returned, returned, steady], monkeypatch
    )
    runs = []
    result, turns = steadily(lab, BALANCER, lambda: runs.append(1) or len(runs), 8)
    assert (result, len(asked)) == (2, 4)
    assert turns == {"sent": {"web-01": 4, "web-02": 4}}
