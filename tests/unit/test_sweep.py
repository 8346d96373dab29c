"""What a killed run leaves is undone by the module that leaves it (lab.observe.live.LEFTOVERS)."""

import subprocess
import sys

from checks import catalogue
from lab.core.topology import parse, variant
from lab.observe.live import LEFTOVERS, LiveLab


class Recording(LiveLab):
    """LiveLab.sweep as written, with the commands it would run recorded instead of sent."""

    def __init__(self, topology):
        self.topology, self.sent = topology, {}

    def sh(self, host, command, sudo=False, check=True):
        self.sent[host] = (command, sudo)


def test_every_leftover_is_swept_on_every_host_as_root_in_one_valid_script():
    catalogue()  # the check modules register what they may leave
    assert set(LEFTOVERS) >= {
        "a blackhole route to a balancer on a web server",
        "a replica whose SQL thread the grader paused",
        "grader accounts and the grader's scratch database",
    }
    lab = Recording(parse(variant("unit-sweep", 209)))
    lab.sweep()
    assert set(lab.sent) == {"lb-01", "web-01", "web-02"}
    script, sudo = lab.sent["web-01"]
    assert sudo and "192.168.209.10" in script and "STOP" not in script
    assert "START REPLICA SQL_THREAD" in script and "DROP DATABASE IF EXISTS" in script
    assert subprocess.run(["bash", "-n", "-c", script]).returncode == 0


def test_importing_the_observation_layer_changes_nothing_in_the_process():
    """Warning and log filters are set by the first LiveLab, not by an import."""
    code = (
        "import logging, warnings\n"
        "import dns.query, fabric, jinja2, paramiko, requests, rich, urllib3, yaml\n"
        "before = list(warnings.filters)  # the libraries' own\n"
        "import checks, lab.observe.live, lab.observe.probes\n"
        "checks.catalogue()\n"
        "assert warnings.filters == before, warnings.filters[:3]\n"
        "assert not logging.getLogger('paramiko.transport').filters\n"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
