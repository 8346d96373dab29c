"""A prerequisite that failed on one web server does not stop a per-host check on the other."""

from __future__ import annotations

import pytest

from checks.base import Check, Status, failed, passed
from checks.report import to_dict
from checks.runner import run_checks
from lab.grading.class_run import graded_checks
from tests.unit.test_run_deadline import QuietLab

DOWN = {"web-02"}  # Nginx is down there; the header is right on both servers
ASKED: list[list[str]] = []


def per_host_judge(hosts: dict):
    wrong = [host for host, ok in hosts.items() if not ok]
    if wrong:
        return failed("; ".join(f"{host}: no answer" for host in wrong))
    return passed(", ".join(f"{host}: fine" for host in hosts))


@pytest.fixture
def classes(own_registry) -> list[type[Check]]:
    """The test's checks, registered in a copy of the registry for one test only."""

    class Server(Check):
        id, section, title, requirement, points, hint = (
            "t.server",
            "web server",
            "-",
            "-",
            10,
            "-",
        )
        per_host = True

        def observe(self, lab):
            return {host: host not in DOWN for host in lab.web_hosts()}

        judge = staticmethod(per_host_judge)

    class Header(Server):
        id, points, needs = "t.header", 20, ("t.server",)

        def observe(self, lab):
            ASKED.append(lab.web_hosts())
            return {host: True for host in lab.web_hosts()}

    class Balancer(Header):
        id, points, needs, per_host = "t.balancer", 25, ("t.header",), False

    class Across(Server):
        """Per host, but its prerequisite fails across the hosts (no host to blame)."""

        id, needs = "t.across", ("t.pair",)

    class Pair(Server):
        id, per_host = "t.pair", True

        def observe(self, lab):
            return {host: True for host in lab.web_hosts()}

        def judge(self, hosts):
            return failed("the two servers answer alike") if len(hosts) > 1 else passed("alone")

    class Seen(Check):
        """Sees the web servers through the run's memo, on every host or through some."""

        id, section, title, requirement, points, hint = ("t.seen", "database", "-", "-", 10, "-")

        def observe(self, lab):
            return lab.memo("web servers", lab.web_hosts)

        def judge(self, hosts):
            return passed(f"seen {', '.join(hosts)}")

    class Through(Seen):
        id, needs, through_web = "t.through", ("t.header",), True

    return [Server, Header, Balancer, Pair, Across, Seen, Through]


@pytest.fixture
def report(tmp_path, monkeypatch, classes):
    from lab.core.topology import PACKAGED, load

    monkeypatch.setenv("LAB_HOME", str(tmp_path))
    ASKED.clear()
    return run_checks({c.id: c for c in classes}, classes, QuietLab(load(PACKAGED), None), "t")


def test_a_dependent_runs_on_the_hosts_where_its_prerequisite_passed(report):
    results = {r.id: r for r in report.results}
    server, header = results["t.server"], results["t.header"]
    assert server.status is Status.FAIL and server.failed_hosts == ("web-02",)
    assert ASKED == [["web-01"]], "asked about web-01 only"
    assert header.status is Status.FAIL
    assert header.evidence.startswith("on web-01: web-01: fine; not run on web-02: t.server")
    assert (header.passed_hosts, header.not_run_hosts) == (("web-01",), ("web-02",))
    assert header.awarded == 10, "half its points: it passed on one web server of two"
    assert results["t.balancer"].status is Status.NOT_RUN  # needs both: not per host
    assert results["t.balancer"].awarded == 0


def test_a_prerequisite_failing_across_the_hosts_still_stops_its_dependents(report):
    results = {r.id: r for r in report.results}
    assert results["t.pair"].failed_hosts == ()
    assert results["t.across"].status is Status.NOT_RUN


def test_the_gradebook_awards_the_share_with_the_assignments_points(report):
    graded = {c["id"]: c for c in graded_checks(to_dict(report)["checks"], {"t.header": 30})}
    assert graded["t.header"]["awarded"] == 15
    assert graded["t.header"]["not_run_hosts"] == ["web-02"]


def test_a_check_seen_through_any_web_server_runs_through_the_others_graded_in_full(report):
    """t.through's prerequisite was shown on web-01 only: it runs through web-01 and keeps its
    points, saying so; what t.seen memoised with both web servers is not what it sees."""
    results = {r.id: r for r in report.results}
    through = results["t.through"]
    assert through.status is Status.PASS and through.awarded == 10
    assert through.evidence.startswith("through web-01: seen web-01; not through web-02: t.")
    assert results["t.seen"].evidence == "seen web-01, web-02"
