"""`lab diagram`: the design drawn from the lab, coloured by each check's last result (the lab's
one record, whichever command ran the check)."""

from __future__ import annotations

import argparse
from pathlib import Path

from checks.base import CheckError
from checks.dns import follow, resolve_www
from lab.core.errors import ExitCode, LabError
from lab.course import diagram, history
from lab.observe.live import LiveLab

HELP = "draw the design from the lab, coloured by the last check results (--svg, --html)"
ORDER = 110  # its place in `lab --help`


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--svg", metavar="FILE", help="also write a standalone SVG drawing")
    parser.add_argument("--html", metavar="FILE", help="also write a standalone HTML page")
    parser.add_argument(
        "--hand-in",
        action="store_true",
        help="the drawing to hand in: what is built, without the time of the checks and the "
        "status table",
    )


def dns_lines(lab) -> tuple[list[str], str]:
    """www's records as the lab's DNS answers them, else what the topology says it should be."""
    topology = lab.topology
    www = f"www.{topology.domain}"
    if lab.state.exists and topology.with_role("dns"):
        try:
            answer = resolve_www(LiveLab(topology, fleet=None))
        except CheckError as exc:
            why = str(exc)
        else:
            chain, addresses, end = follow(answer["records"], answer["name"])
            if addresses:
                lines = [link.replace(". CNAME ", " CNAME ").rstrip(".") for link in chain]
                lines.append(f"{end.rstrip('.')} A {', '.join(addresses)}")
                return lines, "DNS as the lab's DNS server answers now"
            why = f"{answer['rcode']}, no address for {www}"
    else:
        why = "the lab is not up" if not lab.state.exists else "no host has the dns role"
    lbs = topology.with_role("lb")
    target = ", ".join(f"{h.address} ({h.name})" for h in lbs) or "the load balancer"
    if topology.virtual_address:  # lab-ha.yml: the address one balancer at a time holds
        holders = ", ".join(h.name for h in lbs)
        return [
            f"{www} → {topology.virtual_address}",
            f"(virtual: held by one of {holders})",
            "(from the topology: the DNS did not answer)",
        ], f"DNS: {why}"
    return [f"{www} → {target}", "(from the topology: the DNS did not answer)"], f"DNS: {why}"


def run(lab) -> ExitCode:
    saved = history.load(lab.state.dir)
    statuses = history.statuses(saved)
    lines, dns_source = dns_lines(lab)
    when = saved.get("updated")
    checks = (
        f"{len(statuses)} checks, the latest run "
        + history.moment(when).astimezone().strftime("%Y-%m-%d %H:%M")
        if when
        else "no check run yet (`lab check`, `lab exercise check N`)"
    )
    hand_in = getattr(lab.args, "hand_in", False)
    evidence = {cid: item.get("evidence") or "" for cid, item in saved["checks"].items()}
    drawing = diagram.build(
        lab.topology,
        statuses,
        lines,
        dns_source if hand_in else f"{checks} · {dns_source}",
        evidence,
        hand_in,
    )
    lab.console.print(diagram.to_rich(drawing))
    for option, render in (("svg", diagram.to_svg), ("html", diagram.to_html)):
        target = getattr(lab.args, option)
        if target:
            try:
                Path(target).write_text(render(drawing))
            except OSError as exc:
                raise LabError(f"cannot write {target}: {exc.strerror or exc}") from None
            lab.console.print(f"wrote {target}")
    return ExitCode.OK
