"""Record fixtures from a live lab: raw command outputs for the fact parsers, and each check's
observation for the judgement tests.

    sudo .venv/bin/python -m tests.record [--raw NAME HOST COMMAND] [--observations [--only ID ...]]
        [--haproxy-readings] [--uwsgi-readings] [--web HOST ...] [--name SUFFIX]

A raw fixture is the command, then its exact output (pyinfra-style); the header says where it
was recorded. --haproxy-readings copies each unit/fixtures/haproxy/NAME.cfg to the load balancer
and records how a private copy of its HAProxy reads it (raw/haproxy-reading-NAME.txt);
--uwsgi-readings does the same with the distribution's uwsgi (`--get`) and each
unit/fixtures/uwsgi/NAME.ini on a web server (raw/uwsgi-reading-NAME.txt).
--web observes through these web servers only (as a run does when a prerequisite failed on the
others), and --name records each observation as ID-SUFFIX.json (a broken lab's, beside the
reference's). The lab is the one `lab` would use ($LAB_TOPOLOGY or lab.yml).
"""

from __future__ import annotations

import argparse
import base64
import datetime
import json
import sys
from pathlib import Path

from checks import CATALOGUE
from checks.runner import WebHosts
from lab import providers
from lab.core import topology
from lab.core.state import LabState
from lab.facts import haproxy, proc
from lab.observe.live import LiveLab
from lab.remote.connection import Fleet
from lab.remote.quoting import as_root

FIXTURES = Path(__file__).parent / "unit" / "fixtures"
RAW = FIXTURES / "raw"
HAPROXY_CONFIGS = FIXTURES / "haproxy"
UWSGI_CONFIGS = FIXTURES / "uwsgi"


def raw_fixture(text: str) -> tuple[str, str]:
    """(command, output) of a raw fixture file."""
    lines = text.split("\n")
    body = next(i for i, line in enumerate(lines) if line.startswith("$ "))
    return lines[body][2:], "\n".join(lines[body + 1 :])


def read_raw(name: str) -> str:
    """The recorded output of fixture name."""
    return raw_fixture((RAW / f"{name}.txt").read_text())[1]


def haproxy_reading(config: Path) -> str:
    """The command recording how a private copy of HAProxy reads config (a file of ours)."""
    path = f"/tmp/lab-reading-{config.stem}.cfg"
    encoded = base64.b64encode(config.read_bytes()).decode()
    reading = haproxy.private_reading([path], haproxy.parse_config(config.read_text()).sockets)
    return f"echo {encoded} | base64 -d > {path} && {reading}; rm -f {path}"


def uwsgi_reading(config: Path) -> str:
    """The command recording how the distribution's uwsgi reads config (an INI of ours)."""
    path = f"/tmp/lab-uwsgi/{config.name}"
    encoded = base64.b64encode(config.read_bytes()).decode()
    reading = proc.uwsgi_reading(f"/usr/bin/uwsgi --ini {path}", "/tmp/lab-uwsgi")
    return f"mkdir -p /tmp/lab-uwsgi && echo {encoded} | base64 -d > {path} && {reading}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--raw", nargs=3, action="append", metavar=("NAME", "HOST", "COMMAND"))
    parser.add_argument("--note", default="a reference lab (Debian 12)")
    parser.add_argument("--observations", action="store_true")
    parser.add_argument("--haproxy-readings", action="store_true")
    parser.add_argument("--uwsgi-readings", action="store_true")
    parser.add_argument("--only", nargs="+", metavar="ID", help="record these checks only")
    parser.add_argument("--web", nargs="+", metavar="HOST", help="through these web servers")
    parser.add_argument("--name", default="", metavar="SUFFIX", help="record as ID-SUFFIX.json")
    args = parser.parse_args()
    topo = topology.load(topology.find_topology_file())
    provider = providers.select(topo, LabState(topo.name), None)
    raw = list(args.raw or [])
    if args.haproxy_readings:
        lb = topo.one_with_role("lb").name
        for config in sorted(HAPROXY_CONFIGS.glob("*.cfg")):
            raw.append((f"haproxy-reading-{config.stem}", lb, haproxy_reading(config)))
    if args.uwsgi_readings:
        web = topo.with_role("web")[0].name
        for config in sorted(UWSGI_CONFIGS.glob("*.ini")):
            raw.append((f"uwsgi-reading-{config.stem}", web, uwsgi_reading(config)))
    with Fleet(provider.specs()) as fleet:
        for name, host, command in raw:
            result = fleet.run(host, as_root(command), timeout=30)
            day = datetime.date.today().isoformat()
            header = f"# recorded on {host} of {args.note}, {day}, as root\n"
            (RAW / f"{name}.txt").write_text(f"{header}$ {command}\n{result.stdout}")
            print(f"wrote {RAW / name}.txt ({len(result.stdout)} bytes)")
        if args.observations:
            lab = LiveLab(topo, fleet)
            seen = WebHosts(lab, args.web) if args.web else lab
            name = f"-{args.name}" if args.name else ""
            try:
                for check_id, cls in CATALOGUE.items():
                    if args.only and check_id not in args.only:
                        continue
                    observation = cls().observe(seen)
                    path = FIXTURES / "observations" / f"{check_id}{name}.json"
                    path.write_text(json.dumps(observation, indent=1, sort_keys=True) + "\n")
                    print(f"wrote {path}")
            finally:
                lab.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
