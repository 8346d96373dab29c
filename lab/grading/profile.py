"""How the grading hosts look to a student's script: the lab's Debian hosts as they are, or a
fresh server like the brand-new Ubuntu cloud server students write their scripts for.

`fresh-server` differs from the lab's hosts where scripts notice (docs/grading.md lists what
is still Debian): no package lists until `apt-get update`, ufw installed and inactive, and
/var/log/mysql made for the database server as Ubuntu's MySQL package has it. The hosts get it
from the reference-state cache: built once per class (over the given components), restored for
every other student.
"""

from __future__ import annotations

import dataclasses

from lab.remote.connection import Fleet, fan_out
from lab.remote.quoting import as_root, quote
from provision.snapshots import HostProfile

PROFILES = ("lab", "fresh-server")
DEFAULT = "lab"

LOGS_DROP_IN = "[Service]\nLogsDirectory=mysql\nLogsDirectoryMode=0750\n"
FRESH_SERVER = f"""set -e
export DEBIAN_FRONTEND=noninteractive
install="apt-get install -y -q --no-install-recommends ufw"
if ! dpkg -s ufw >/dev/null 2>&1; then
    $install >/dev/null 2>&1 || {{ apt-get update -q >/dev/null && $install >/dev/null; }}
fi
ufw --force disable >/dev/null
for unit in mariadb mysql; do
    mkdir -p /etc/systemd/system/$unit.service.d
    printf %s {quote(LOGS_DROP_IN)} > /etc/systemd/system/$unit.service.d/fresh-server.conf
done
systemctl daemon-reload
apt-get clean
find /var/lib/apt/lists -maxdepth 1 -type f -delete
echo fresh-server ready
"""

FAILED_UNITS = (
    "for unit in $(systemctl list-units --state=failed --no-legend --plain | cut -d' ' -f1); do "
    'echo "== $unit"; journalctl -u "$unit" -n 8 --no-pager -o cat 2>/dev/null; done'
)


def host_profile(name: str) -> HostProfile | None:
    """The profile as the reference-state cache builds it once per class (None: the lab's)."""
    return None if name == "lab" else HostProfile(name, FRESH_SERVER)


def failed_services(fleet: Fleet, hosts: list[str]) -> dict[str, str]:
    """The units that failed on each host, with their last journal lines (for the report)."""
    found = {}
    outcomes = fan_out(hosts, lambda host: fleet.run(host, as_root(FAILED_UNITS)))
    for host, outcome in outcomes.items():
        text = outcome.value.stdout.strip() if outcome.ok and outcome.value else ""
        if text:
            found[host] = text
    return found


def with_failed_services(runs: list, failed: dict[str, str]) -> list:
    """The script runs, the last one on each host noting the services that failed there."""
    last = {run.host: index for index, run in enumerate(runs)}
    runs = list(runs)
    for host, text in failed.items():
        if host in last:
            run = runs[last[host]]
            note = f"\n[grader] services that failed on {host}, with their last log lines:\n{text}"
            runs[last[host]] = dataclasses.replace(run, output=run.output + note)
    return runs
