"""Load balancer (HAProxy): round robin, active-active, health checks."""

import time
from concurrent.futures import ThreadPoolExecutor

from checks.base import Check, CheckError, failed, passed
from checks.web import listeners
from provision.lb import backend_servers, parse_show_stat, runtime_api

ROUND_ROBIN_REQUESTS = 12
BURST = 8
# the grader reads HAProxy's own view through whichever stats socket haproxy.cfg declares
SHOW_STAT = (
    "sock=$(grep -hoE '^\\s*stats socket\\s+\\S+' /etc/haproxy/haproxy.cfg | awk '{print $3}' "
    "| head -1); [ -n \"$sock\" ] || { echo 'no stats socket in haproxy.cfg' >&2; exit 3; }; "
    + runtime_api("show stat", '"$sock"')
)


def wait_until_servers_up(lab, seconds: float = 4.0) -> None:
    """Give HAProxy a moment to see freshly (re)started servers UP before counting requests."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        out = lab.sh(lab.name("lb"), SHOW_STAT, sudo=True, check=False)
        rows = backend_servers(parse_show_stat(out), lab.web_hosts())
        if not rows or all(r.get("status", "").startswith("UP") for r in rows.values()):
            return
        time.sleep(0.2)


class HaproxyAnswers(Check):
    id = "lb.haproxy"
    section = "load balancer"
    title = "HAProxy on the load balancer takes the incoming requests"
    requirement = (
        "1 load-balancer (HAproxy): for distributing incoming requests or network "
        "traffic among multiple servers."
    )
    points = 5
    hint = "Install HAProxy on the load balancer with a frontend on port 80 and start it."
    needs = ("servers.reachable",)

    def observe(self, lab):
        lb = lab.name("lb")
        info = {"host": lb, "listeners": listeners(lab, lb, 80)}
        try:
            info["status"] = lab.http(f"http://{lab.address(lb)}/").status_code
        except CheckError as exc:
            info["error"] = str(exc)
        return info

    def judge(self, info):
        if "error" in info:
            return failed(f"{info['host']}: {info['error']}")
        if "haproxy" not in info["listeners"]:
            return failed(f"{info['host']}: port 80 belongs to {info['listeners'] or 'nobody'}")
        if info["status"] >= 500:
            return failed(f"{info['host']}: HAProxy answers HTTP {info['status']}: no server")
        return passed(f"{info['host']}: haproxy on port 80 (HTTP {info['status']})")


def _through_lb(lab):
    reply = lab.http(f"http://{lab.address('lb')}/api/status")
    try:
        host = reply.json().get("host")
    except ValueError:
        host = None
    return {
        "header": reply.headers.get("X-Served-By"),
        "app_host": host,
        "status": reply.status_code,
    }


class RoundRobin(Check):
    id = "lb.round-robin"
    section = "load balancer"
    title = "Requests are distributed round robin"
    requirement = (
        "HAProxy is configured with the Round Robin distribution algorithm. This "
        "algorithm cycles through the list of servers, directing each new request "
        "to the next server in the list."
    )
    points = 10
    hint = "Use `balance roundrobin` in the backend, with both web servers in it."
    needs = ("lb.haproxy", "web.served-by")
    exclusive = True  # other checks' requests through the balancer would interleave

    def observe(self, lab):
        wait_until_servers_up(lab)
        return {
            "web": lab.web_hosts(),
            "answers": [_through_lb(lab) for _ in range(ROUND_ROBIN_REQUESTS)],
        }

    def judge(self, observation):
        answers, web = observation["answers"], observation["web"]
        order = [a["header"] for a in answers]
        mismatched = [a for a in answers if a["header"] != a["app_host"]]
        if any(a["status"] != 200 for a in answers):
            codes = sorted({a["status"] for a in answers})
            return failed(f"requests through the load balancer got HTTP {codes}")
        if mismatched:
            m = mismatched[0]
            return failed(f"X-Served-By {m['header']} but the application ran on {m['app_host']}")
        if set(order) != set(web):
            return failed(
                f"only {', '.join(sorted(set(map(str, order))))} answered {len(order)} requests"
            )
        repeats = [i for i in range(1, len(order)) if order[i] == order[i - 1]]
        if repeats:
            return failed(f"not round robin: {' '.join(order)}")
        return passed(f"{len(order)} requests alternated: {' '.join(order[:6])} ...")


class ActiveActive(Check):
    id = "lb.active-active"
    section = "load balancer"
    title = "Both servers are active at the same time (active-active)"
    requirement = (
        "HAProxy is configured for an Active-Active setup. Both servers actively "
        "handle incoming requests simultaneously."
    )
    points = 5
    hint = "List both web servers as normal (not `backup`) servers of the backend."
    needs = ("lb.haproxy", "web.served-by")

    def observe(self, lab):
        with ThreadPoolExecutor(max_workers=BURST) as pool:
            burst = list(pool.map(lambda _: _through_lb(lab)["header"], range(BURST)))
        rows = parse_show_stat(lab.sh(lab.name("lb"), SHOW_STAT, sudo=True, check=False))
        servers = backend_servers(rows, lab.web_hosts())
        return {
            "web": lab.web_hosts(),
            "burst": burst,
            "servers": {
                n: {k: r.get(k, "") for k in ("status", "act", "bck")} for n, r in servers.items()
            },
        }

    def judge(self, observation):
        web, burst, servers = observation["web"], observation["burst"], observation["servers"]
        backups = [name for name, row in servers.items() if row.get("bck") == "1"]
        if backups:
            return failed(f"{', '.join(backups)} stand(s) by as backup (active-passive)")
        answered = {b for b in burst if b}
        if answered != set(web):
            return failed(
                f"{len(burst)} simultaneous requests were all served by "
                f"{', '.join(sorted(answered)) or 'nobody'}"
            )
        counts = ", ".join(f"{h} {burst.count(h)}" for h in web)
        return passed(f"{len(burst)} simultaneous requests shared: {counts}")


class HealthChecks(Check):
    id = "lb.health-checks"
    section = "load balancer"
    title = "HAProxy health-checks both servers"
    requirement = (
        "HAProxy ... improves resource utilization, enhances availability: a server "
        "that fails leaves the rotation."
    )
    points = 5
    hint = (
        "Add `check` to each server line (e.g. with `option httpchk GET /healthz`) and keep "
        "the stats socket in haproxy.cfg so the grader can read HAProxy's view."
    )
    needs = ("lb.haproxy",)

    def observe(self, lab):
        out = lab.sh(lab.name("lb"), SHOW_STAT, sudo=True)
        servers = backend_servers(parse_show_stat(out), lab.web_hosts())
        return {
            "web": lab.web_hosts(),
            "servers": {
                n: {k: r.get(k, "") for k in ("status", "check_status")} for n, r in servers.items()
            },
        }

    def judge(self, observation):
        problems = []
        for host in observation["web"]:
            row = observation["servers"].get(host)
            if row is None:
                problems.append(f"{host} is not a server of any HAProxy backend")
            elif not row["check_status"]:
                problems.append(f"{host} is not health-checked")
            elif not row["status"].startswith("UP"):
                problems.append(f"{host} is {row['status']} ({row['check_status']})")
        if problems:
            return failed("; ".join(problems))
        return passed(
            ", ".join(
                f"{h} {r['status']} ({r['check_status']})"
                for h, r in observation["servers"].items()
            )
        )
