"""Servers: every host of the lab is up, reachable and is who it says it is."""

from __future__ import annotations

from typing import NotRequired, TypedDict

from checks.base import Check, CheckError, failed_all, passed
from lab.facts import proc, programs
from lab.observe.probes import names_host


class Named(TypedDict):
    """A host that answered over SSH, with the hostname it gives itself."""

    hostname: str
    domain: str  # the lab's domain (a fully qualified hostname may end in it)
    # what makes the programs the grader runs there other than the distribution's (absent from
    # observations recorded before the grader asked)
    untrusted: NotRequired[list[str]]


class Unreachable(TypedDict):
    """A host the grader could not log in to."""

    error: str


ReachableObservation = dict[str, Named | Unreachable]  # by host
UNTRUSTED_HINT = (
    "The grader reads your services with the distribution's own programs: put them back "
    "(`sudo apt-get install --reinstall PACKAGE`, `sudo dpkg-divert --rename --remove PATH`, "
    "no /etc/ld.so.preload)."
)


class Reachable(Check):
    id = "servers.reachable"
    design = "servers"
    section = "servers"
    title = "Every server is up and reachable"
    requirement = (
        "2 Servers: Physical or virtual machine hosting the entire web infrastructure "
        "(and a third for the load balancer)."
    )
    points = 5
    touches = ()
    hint = "Bring the hosts up (`lab up`, `lab status`); `lab ssh HOST` must log in."

    def observe(self, lab) -> ReachableObservation:
        def probe(host) -> Named | Unreachable:
            try:
                hostname = lab.sh(host, proc.HOSTNAME).strip()
                said = lab.sh(host, programs.integrity(), sudo=True, check=False)
                return {
                    "hostname": hostname,
                    "domain": lab.topology.domain,
                    "untrusted": programs.untrusted(said),
                }
            except CheckError as exc:
                return {"error": str(exc)}

        return lab.on_each(lab.topology.names, probe)

    def judge(self, hosts: ReachableObservation):
        problems = [info["error"] for info in hosts.values() if "error" in info]
        problems += [
            f"{host} calls itself {info['hostname']!r}"
            for host, info in hosts.items()
            if "hostname" in info
            and not names_host(info["hostname"], (host,), info.get("domain", ""))
        ]
        problems += [
            f"{host}: the grader cannot trust the programs it runs there: {'; '.join(found)}"
            for host, info in hosts.items()
            if (found := info.get("untrusted"))
        ]
        if problems:
            untrusted = any(info.get("untrusted") for info in hosts.values())
            return failed_all(problems, UNTRUSTED_HINT if untrusted else "")
        return passed(
            f"{', '.join(hosts)} answer over SSH, each with its own hostname and the "
            "distribution's programs"
        )
