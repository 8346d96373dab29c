"""The grader counts its requests in the web servers' access logs after the last answer came:
Nginx writes a request's line once it has sent the answer, so a count short of the requests
sent is read again for a moment (probes.logged_by_each)."""

from __future__ import annotations

import pytest

from lab.observe import CheckError, probes


class Lab:
    """Runs on_each in turn, as LiveLab does side by side."""

    def on_each(self, hosts, func):
        return {host: func(host) for host in hosts}


@pytest.fixture
def logs(monkeypatch):
    """Each host's count, as the log says it at each reading (the last one stays)."""
    readings = {"web-01": [4, 4], "web-02": [3, 4]}
    asked = []

    def logged_since(lab, host, marks, path="/"):
        asked.append(host)
        said = readings[host]
        value = said.pop(0) if len(said) > 1 else said[0]
        if isinstance(value, Exception):
            raise value
        return value

    monkeypatch.setattr(probes, "logged_since", logged_since)
    return readings, asked


def test_a_line_written_after_the_answer_is_waited_for(logs):
    counts = probes.logged_by_each(Lab(), ["web-01", "web-02"], {}, sent=8)
    assert counts == {"web-01": 4, "web-02": 4}
    assert logs[1] == ["web-01", "web-02", "web-01", "web-02"]  # read twice


def test_all_there_at_once_is_read_once(logs):
    readings, asked = logs
    readings["web-02"] = [4]
    assert probes.logged_by_each(Lab(), ["web-01", "web-02"], {}, sent=8) == {
        "web-01": 4,
        "web-02": 4,
    }
    assert len(asked) == 2


def test_a_log_that_cannot_tell_is_not_waited_for(logs):
    readings, asked = logs
    readings["web-01"] = [CheckError("web-01 is down")]
    readings["web-02"] = [None]
    assert probes.logged_by_each(Lab(), ["web-01", "web-02"], {}, sent=8) == {
        "web-01": None,
        "web-02": None,
    }
    assert len(asked) == 2


def test_a_count_that_stays_short_is_given_up_on_at_the_deadline(logs, monkeypatch):
    readings, _ = logs
    readings["web-02"] = [3]
    monkeypatch.setattr(probes, "LOGGED_WITHIN", 0.5)
    assert probes.logged_by_each(Lab(), ["web-01", "web-02"], {}, sent=8)["web-02"] == 3
