"""The design drawn from a lab's topology and its record of check results.

One model (nodes, links, hosts as groups, single points of failure), built from the topology and
from what the checks saw: a fix (HTTPS, the firewall, the virtual address) is drawn once a check
recorded it built. A layout places the model from a table of cells; the terminal (rich), the SVG
and the HTML page are each drawn from that one model."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field, replace

from rich.columns import Columns
from rich.console import Group
from rich.panel import Panel
from rich.text import Text

from checks import CATALOGUE
from checks.base import MARK, Status
from lab.core.topology import Host, Topology

# What colours each element of the drawing: check ids or whole sections, defined once here.
ELEMENT_CHECKS: dict[str, tuple[str, ...]] = {
    "user": ("http.www",),
    "ask-dns": ("dns.www",),
    "dns": ("dns.www",),
    "request": ("lb.haproxy", "http.www"),
    "lb": ("lb.haproxy",),
    "balance": ("lb.round-robin", "lb.active-active", "lb.health-checks"),
    "host": ("servers.reachable",),
    "nginx": ("web.nginx", "web.static", "web.served-by"),
    "proxy": ("web.reverse-proxy",),
    "app": ("app.server", "files.code-base"),
    "queries": ("app.database", "db.app-roles"),
    "db": ("db.servers",),
    "replica-db": ("db.servers", "db.replica-read-only"),
    "writes": ("db.app-roles",),
    "replication": ("db.replication",),
    # the fixes of the design's issues: drawn in place once built, and a row of their own
    "firewall": ("firewall",),
    "https": ("https",),
    "monitoring": ("monitoring",),
    "ha": ("ha",),
}
FIXES = (
    ("firewall", "firewall", "incoming denied by default"),
    ("https", "HTTPS", "TLS at the load balancer"),
    ("monitoring", "monitoring", "Prometheus, exporters, alerts"),
    ("ha", "second load balancer", "a virtual address moves"),
)
# A fix counts as built (and is drawn in place) once this check passed in the lab's record.
BUILT_BY = {
    "https": "https.trusted",  # a certificate the lab CA signed answered on 443
    "redirect": "https.redirect",  # port 80 answered 301 to https
    "firewall": "firewall.default-deny",  # every host denied a free port
    "monitoring": "monitoring.targets",  # Prometheus scraped every host
    "ha": "ha.one-holder",  # one balancer held the virtual address, all spoke VRRP
    "failover": "ha.failover",  # the address moved when its holder died
}

UNKNOWN = "unknown"  # no check has seen it yet
STATUSES = (*Status, UNKNOWN)
LEGEND = {
    Status.PASS: "pass",
    Status.FAIL: "fail",
    Status.NOT_RUN: "not run (a prerequisite failed)",
    "unknown": "unknown (no check result yet)",
}
SPOF_LEGEND = "single point of failure: it alone stops the site (or every write)"
COLOURS = {  # status → (stroke, fill)
    Status.PASS: ("#2e7d32", "#e8f5e9"),
    Status.FAIL: ("#c62828", "#ffebee"),
    Status.NOT_RUN: ("#b26a00", "#fff8e1"),
    "unknown": ("#757575", "#f5f5f5"),
}
SPOF_COLOUR = "#6a1b9a"  # no status uses it
RICH_STYLES = {**{status: f"check.{status}" for status in Status}, "unknown": "muted"}
MARKS = {**MARK, "unknown": "?"}


def check_ids(kind: str) -> list[str]:
    """The check ids behind an element kind (sections expanded to their checks)."""
    ids: list[str] = []
    for name in ELEMENT_CHECKS[kind]:
        found = (
            [name] if name in CATALOGUE else [c.id for c in CATALOGUE.values() if c.section == name]
        )
        ids += [cid for cid in found if cid not in ids]
    return ids


def element_status(kind: str, statuses: dict[str, str]) -> str:
    """fail if any check failed, not-run if any was not run, pass if all passed, else unknown."""
    seen = [statuses.get(cid, "unknown") for cid in check_ids(kind)]
    for status in (Status.FAIL, Status.NOT_RUN):
        if status in seen:
            return status
    return Status.PASS if seen and all(s == Status.PASS for s in seen) else UNKNOWN


# -- the model ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Node:
    """A box of the drawing: a host (a group of parts), a part inside one, or a box of its own."""

    key: str
    kind: str
    title: str
    lines: tuple[str, ...]
    status: str
    row: str = ""  # the page's row (ROWS) of a box that is not inside a host
    parent: str = ""  # the host (its key) a part is drawn in
    cell: tuple[int, int] = (0, 0)  # a part's column and row inside its host (CELLS)
    spof: str = ""  # why it is a single point of failure ("" when it is not)
    tag: bool = False  # a small label in its host's footer (the firewall)
    x: float = 0
    y: float = 0
    w: float = 0
    h: float = 0

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def cy(self) -> float:
        return self.y + self.h / 2

    @property
    def right(self) -> float:
        return self.x + self.w

    @property
    def bottom(self) -> float:
        return self.y + self.h

    @property
    def group(self) -> bool:
        return self.kind == "host"


@dataclass(frozen=True)
class Link:
    """An arrow from one node to another (keys); route says how it runs, the layout its points."""

    key: str
    kind: str
    label: str
    status: str
    source: str
    target: str
    dashed: bool = False
    route: str = "auto"  # auto | below (under both hosts, through a channel)
    points: tuple[tuple[float, float], ...] = ()
    label_at: tuple[float, float, str] = (0, 0, "middle")  # x, y, text-anchor


@dataclass(frozen=True)
class Diagram:
    lab: str
    domain: str
    subtitle: str
    nodes: tuple[Node, ...]
    links: tuple[Link, ...]
    statuses: dict[str, str] = field(default_factory=dict)
    hand_in: bool = False
    width: float = 0
    height: float = 0

    def box(self, key: str) -> Node:
        return next(n for n in self.nodes if n.key == key)

    def node(self, key: str) -> Node | None:
        return next((n for n in self.nodes if n.key == key), None)

    def parts(self, host_key: str) -> list[Node]:
        """A host's parts, column by column, top to bottom."""
        inside = [n for n in self.nodes if n.parent == host_key and not n.tag]
        return sorted(inside, key=lambda n: n.cell)

    def spofs(self) -> list[Node]:
        return [n for n in self.nodes if n.spof]


def server_hosts(topology: Topology) -> list[Host]:
    """The hosts drawn below the load balancers (every host without the lb role), in file
    order."""
    return [h for h in topology.hosts if "lb" not in h.roles]


# What each role puts inside its host: (role, kind, title, lines).
PARTS = (
    ("dns", "dns", "DNS (NSD)", ()),  # its lines: the records, as the DNS answers them
    ("lb", "lb", "HAProxy", ("round robin over the web servers",)),
    ("web", "nginx", "Nginx", ("static files; the rest to the app",)),
    ("app", "app", "application server", ("gunicorn + the application files",)),
    ("db-primary", "db", "MySQL primary", ("takes every write; binary log",)),
    ("db-replica", "replica-db", "MySQL replica", ("read-only copy; local reads",)),
)


def holder(evidence: dict[str, str], balancers: list[str]) -> str:
    """The balancer last seen holding the virtual address ("" if none was named): after a
    failover test the one that held it once the killed one was back, else ha.one-holder's."""
    after = (evidence.get(BUILT_BY["failover"]) or "").rpartition("restarted, ")[2].split(" ")
    if after[1:] == ["held", "it"] and after[0] in balancers:
        return after[0]
    first = (evidence.get(BUILT_BY["ha"]) or "").split(" ", 1)[0]
    return first if first in balancers else ""


@dataclass(frozen=True)
class _Seen:
    """What the model is built from: the topology, each element's status, what is built."""

    topology: Topology
    statuses: dict[str, str]
    built: dict[str, bool]
    dns_lines: tuple[str, ...]
    active: str  # the balancer holding the virtual address, if one was named

    def status(self, kind: str) -> str:
        return element_status(kind, self.statuses)

    @property
    def balancers(self) -> list[Host]:
        return self.topology.with_role("lb")

    @property
    def primary(self) -> Host | None:
        return next(iter(self.topology.with_role("db-primary")), None)

    @property
    def vip(self) -> str | None:
        """The virtual address, once a check saw one balancer hold it."""
        several = len(self.balancers) > 1
        return self.topology.virtual_address if self.built["ha"] and several else None

    def standby(self, lb: Host) -> bool:
        return bool(self.active) and lb.name != self.active

    def link(self, key: str, kind: str, label: str, source: str, target: str, **how) -> Link:
        """An arrow coloured by the status of its kind of element."""
        return Link(key, kind, label, self.status(kind), source, target, **how)

    def entry(self, lb: Host) -> str:
        """Where a request enters a balancer: HTTPS once built, else HAProxy."""
        return f"https:{lb.name}" if self.built["https"] else f"lb:{lb.name}"


def _host_nodes(seen: _Seen, host: Host) -> list[Node]:
    """A host, its parts, the fixes built on it, its firewall and its SPOF marks."""
    key, built, balancers = f"host:{host.name}", seen.built, seen.balancers
    spof = ""
    if balancers and host is balancers[0] and not built["failover"]:
        spof = "HAProxy and DNS" if "dns" in host.roles else "HAProxy"
    row = "lbs" if host in balancers else "servers"
    title = f"{host.name} · {host.address}"
    nodes = [Node(key, "host", title, (), seen.status("host"), row, spof=spof)]
    if built["firewall"]:
        if host in balancers:
            opened = "22, 80, 443 and 53 open"
        else:
            opened = "22 open; 80 from the balancer"
            opened += "; 3306 from the replica" if host is seen.primary else ""
        nodes.append(
            Node(
                f"firewall:{host.name}",
                "firewall",
                "firewall",
                (f"incoming denied; {opened}",),
                seen.status("firewall"),
                parent=key,
                tag=True,
            )
        )
    parts = [p for p in PARTS if p[0] in host.roles]
    if "db-primary" in host.roles:
        parts = [p for p in parts if p[0] != "db-replica"]
    if host in balancers and built["https"]:
        lines = ("443: TLS ends here (lab CA), TLS 1.2+",)
        lines += ("80: answers 301 to https",) if built["redirect"] else ()
        parts.append(("", "https", "HTTPS", lines))
    if balancers and host is balancers[0] and built["monitoring"]:
        parts.append(("", "monitoring", "Prometheus", ("scrapes every host; alerts",)))
    for _, kind, title, lines in parts:
        mark = "every write" if kind == "db" else ""
        if kind == "dns":
            lines = seen.dns_lines or ("(no answer)",)
            mark = "" if spof else "the only DNS"
        nodes.append(
            Node(
                f"{kind}:{host.name}",
                kind,
                title,
                lines,
                seen.status(kind),
                parent=key,
                cell=CELLS[kind],
                spof=mark,
            )
        )
    return nodes


def _request_links(seen: _Seen, domain: str) -> list[Link]:
    """The user's two steps (ask the DNS, then the site) and, with HA, the virtual address."""
    links = []
    dns_host = next(iter(seen.topology.with_role("dns")), None)
    if dns_host is not None:
        ask = f"1 · where is www.{domain}?"
        links.append(seen.link("ask-dns", "ask-dns", ask, "user", f"dns:{dns_host.name}"))
    request = f"2 · {'HTTPS' if seen.built['https'] else 'HTTP'}, Host: www.{domain}"
    if seen.vip:
        links.append(seen.link("request", "request", request, "user", "vip"))
        for lb in seen.balancers:
            label = ("standby" if seen.standby(lb) else "holds it") if seen.active else ""
            key, dashed = f"request:{lb.name}", seen.standby(lb)
            links.append(seen.link(key, "ha", label, "vip", seen.entry(lb), dashed=dashed))
    elif seen.balancers:
        lb = seen.balancers[0]
        links.append(seen.link(f"request:{lb.name}", "request", request, "user", seen.entry(lb)))
    for lb in seen.balancers if seen.built["https"] else ():
        key, inside = f"https:{lb.name}", "HTTP inside"
        links.append(seen.link(key, "https", inside, f"https:{lb.name}", f"lb:{lb.name}"))
    return links


def _server_links(seen: _Seen, nodes: list[Node]) -> list[Link]:
    """Balancing to each web server, and inside and between the servers: proxy, SQL, replication."""
    links = []
    for host in server_hosts(seen.topology):
        have = {n.kind for n in nodes if n.parent == f"host:{host.name}"}
        links += _balance_links(seen, host.name, have)
        links += _local_links(seen, host.name, have)
        if seen.primary is not None and host is not seen.primary:
            links += _links_to_primary(seen, host.name, have, seen.primary.name)
    return links


def _balance_links(seen: _Seen, name: str, have: set[str]) -> list[Link]:
    """Each balancer's arrow to the web server on host name (dashed from a standby)."""
    if "nginx" not in have:
        return []
    return [
        seen.link(
            f"balance:{lb.name}:{name}",
            "balance",
            "",
            f"lb:{lb.name}",
            f"nginx:{name}",
            dashed=seen.standby(lb),
        )
        for lb in seen.balancers
    ]


def _local_links(seen: _Seen, name: str, have: set[str]) -> list[Link]:
    """Inside one server: Nginx to the application, the application to its own database."""
    links = []
    if {"nginx", "app"} <= have:
        links.append(
            seen.link(f"proxy:{name}", "proxy", "proxy_pass", f"nginx:{name}", f"app:{name}")
        )
    local = "db" if "db" in have else "replica-db" if "replica-db" in have else ""
    if "app" in have and local:
        label = "SQL: reads and writes" if local == "db" else "SQL: reads"
        links.append(
            seen.link(f"queries:{name}", "queries", label, f"app:{name}", f"{local}:{name}")
        )
    return links


def _links_to_primary(seen: _Seen, name: str, have: set[str], primary: str) -> list[Link]:
    """From a server other than the primary: its application's writes, its replica's stream."""
    links = []
    if "app" in have:
        links.append(
            seen.link(
                f"writes:{name}",
                "writes",
                "SQL: writes",
                f"app:{name}",
                f"db:{primary}",
                dashed=True,
            )
        )
    if "replica-db" in have:
        links.append(
            seen.link(
                f"replication:{name}",
                "replication",
                f"replication: {primary} → {name}",
                f"db:{primary}",
                f"replica-db:{name}",
                route="below",
            )
        )
    return links


def design(
    topology: Topology,
    statuses: dict[str, str],
    dns_lines: list[str],
    subtitle: str = "",
    evidence: dict[str, str] | None = None,
    hand_in: bool = False,
) -> Diagram:
    """The model of the lab's design: what runs where, how requests travel, what is built."""
    built = {fix: statuses.get(cid) == Status.PASS for fix, cid in BUILT_BY.items()}
    names = [h.name for h in topology.with_role("lb")]
    active = holder(evidence or {}, names) if built["ha"] else ""
    seen = _Seen(topology, statuses, built, tuple(dns_lines), active)
    scheme = "https" if built["https"] else "http"
    browser = (f"browser: {scheme}://www.{topology.domain}/",)
    nodes = [Node("user", "user", "user's computer", browser, seen.status("user"), row="edge")]
    if seen.vip:
        who = f"held by {active} when checked" if active else "held by one balancer"
        lines = (f"{who}; moves on failure", f"keepalived (VRRP): {', '.join(names)}")
        title = f"virtual address {seen.vip}"
        nodes.append(Node("vip", "ha", title, lines, seen.status("ha"), row="vip"))
    for host in [*seen.balancers, *server_hosts(topology)]:
        nodes += _host_nodes(seen, host)
    links = _request_links(seen, topology.domain) + _server_links(seen, nodes)
    if not hand_in:
        for kind, title, line in FIXES:
            nodes.append(Node(f"fix:{kind}", kind, title, (line,), seen.status(kind), row="fixes"))
    return Diagram(
        topology.name,
        topology.domain,
        subtitle,
        tuple(nodes),
        tuple(links),
        dict(statuses),
        hand_in,
    )


def build(
    topology: Topology,
    statuses: dict[str, str],
    dns_lines: list[str],
    subtitle: str = "",
    evidence: dict[str, str] | None = None,
    hand_in: bool = False,
) -> Diagram:
    """The design of topology as the checks saw it, laid out for drawing."""
    return layout(design(topology, statuses, dns_lines, subtitle, evidence, hand_in))


# -- the layout ---------------------------------------------------------------------------------
# Where each part sits inside its host: (column, row). A host uses only the columns and rows its
# parts fill, so a balancer without DNS is one column wide and a web server one column high.
CELLS = {
    "dns": (0, 0),
    "monitoring": (0, 1),
    "https": (1, 0),
    "lb": (1, 1),
    "nginx": (0, 0),
    "app": (0, 1),
    "db": (0, 2),
    "replica-db": (0, 2),
}
# The page, top to bottom: each row's boxes side by side, and the space above it (for labels).
ROWS = (("edge", 70), ("vip", 46), ("lbs", 46), ("servers", 86), ("fixes", 84))
GAP = {"edge": 40, "vip": 40, "lbs": 60, "servers": 130, "fixes": 20}  # between boxes of a row
MARGIN = 30
HEADER, PAD, CELL_GAP_X, CELL_GAP_Y, FOOTER, LEGEND_H = 40, 20, 24, 40, 28, 24
MIN_W = {"user": 240, "host": 0, "fix": 200}
LINE_H, FONT, TITLE_FONT, HOST_FONT, BADGE_FONT = 18, 12, 13, 14, 11


def text_width(text: str, size: float, bold: bool = False) -> float:
    """About how wide DejaVu Sans sets text (the font the drawing asks for first)."""
    return len(text) * size * (0.66 if bold else 0.6)


def badge_text(node: Node) -> str:
    return f"SPOF · {node.spof}"


def badge_width(text: str) -> float:
    return text_width(text, BADGE_FONT, True) + 12


def _box_size(node: Node) -> tuple[float, float]:
    title = text_width(node.title, TITLE_FONT, True) + 20
    if node.spof:
        title += badge_width(badge_text(node)) + 12
    lines = max((text_width(line, FONT) for line in node.lines), default=0) + 20
    minimum = MIN_W["fix"] if node.row == "fixes" else MIN_W.get(node.kind, 220)
    return max(title, lines, minimum), 34 + LINE_H * max(len(node.lines), 1)


def _tag_width(node: Node) -> float:
    return text_width(node.title, BADGE_FONT, True) + 14


def title_end(host: Node) -> float:
    """Where a host's own title ends: arrows into its parts come down to the right of it."""
    return host.x + 10 + text_width(host.title, HOST_FONT, True) + 14


def _cells(nodes: dict[str, Node]) -> dict[str, tuple[int, int]]:
    """Each part's cell in its host: its column from CELLS, its row the next free one in that
    column (a balancer without HTTPS has HAProxy beside its DNS, not below an empty cell)."""
    cells = {}
    columns: dict[tuple[str, int], list[Node]] = {}
    for part in (n for n in nodes.values() if n.parent and not n.tag):
        columns.setdefault((part.parent, part.cell[0]), []).append(part)
    for (_, col), parts in columns.items():
        for row, part in enumerate(sorted(parts, key=lambda n: n.cell[1])):
            cells[part.key] = (col, row)
    return cells


def layout(diagram: Diagram) -> Diagram:
    """Place every node (from CELLS and ROWS) and run every link between its two nodes."""
    nodes = {n.key: n for n in diagram.nodes}
    for key, cell in _cells(nodes).items():
        nodes[key] = replace(nodes[key], cell=cell)
    sizes = {k: _box_size(n) for k, n in nodes.items() if not n.group and not n.tag}
    grid_h = _grid_heights(nodes, sizes)
    host_size = _size_hosts(nodes, sizes, grid_h)
    width, y = _place_rows(nodes, sizes, host_size, grid_h)
    _place_edge(nodes)
    lane = _lanes(diagram.links, nodes)
    links = tuple(
        _route(link, nodes, lane.get((link.source, _host(nodes[link.source], nodes).row), 0))
        for link in diagram.links
    )
    channels = [link.label_at[1] for link in links if link.route == "below"]
    bottom = max([y, *channels])
    legend_lines = 2 if any(n.spof for n in nodes.values()) else 1
    return replace(
        diagram,
        nodes=tuple(nodes.values()),
        links=links,
        width=width,
        height=bottom + 36 + LEGEND_H * legend_lines,
    )


def _grid_heights(nodes: dict[str, Node], sizes) -> dict[tuple[str, int], float]:
    """Each cell row's height per page row: hosts side by side line up their parts."""
    grid_h: dict[tuple[str, int], float] = {}
    for part in (n for n in nodes.values() if n.parent and not n.tag):
        row = (nodes[part.parent].row, part.cell[1])
        grid_h[row] = max(grid_h.get(row, 0), sizes[part.key][1])
    return grid_h


def _size_hosts(nodes: dict[str, Node], sizes, grid_h) -> dict[str, tuple[dict, list[int]]]:
    """Each host's size (into sizes), as wide and high as its parts' columns and rows and its
    footer; returns each host's column widths and rows, for placing its parts."""
    hosts = [n for n in nodes.values() if n.group]
    footers = {n.key for n in hosts if n.spof} | {n.parent for n in nodes.values() if n.tag}
    footer_h = {
        row: FOOTER if any(h.key in footers for h in hosts if h.row == row) else 0
        for row in {h.row for h in hosts}
    }
    host_size: dict[str, tuple[dict[int, float], list[int]]] = {}
    for host in hosts:
        parts = [n for n in nodes.values() if n.parent == host.key and not n.tag]
        col_w: dict[int, float] = {}
        for part in parts:
            col_w[part.cell[0]] = max(col_w.get(part.cell[0], 0), sizes[part.key][0])
        rows = sorted({p.cell[1] for p in parts})
        inner_w = sum(col_w.values()) + CELL_GAP_X * max(len(col_w) - 1, 0)
        inner_h = sum(grid_h[(host.row, r)] for r in rows) + CELL_GAP_Y * max(len(rows) - 1, 0)
        footer = sum(_tag_width(t) + 8 for t in nodes.values() if t.parent == host.key and t.tag)
        if host.spof:
            footer += badge_width(badge_text(host)) + 8
        width = max(inner_w + 2 * PAD, text_width(host.title, HOST_FONT, True) + 30, footer + 20)
        host_size[host.key] = (col_w, rows)
        sizes[host.key] = (width, HEADER + inner_h + PAD + footer_h[host.row])
    return host_size


def _place_rows(nodes: dict[str, Node], sizes, host_size, grid_h) -> tuple[float, float]:
    """The page's rows top to bottom, each centred (the user and the fixes from the left, the
    fixes sharing the page's width); returns the page's width and where its rows end."""
    present = [(name, above) for name, above in ROWS if any(n.row == name for n in nodes.values())]
    row_w = {
        name: sum(sizes[n.key][0] for n in nodes.values() if n.row == name)
        + GAP[name] * (sum(1 for n in nodes.values() if n.row == name) - 1)
        for name, _ in present
        if name not in ("edge", "vip", "fixes")
    }
    width = max([960.0, *(w + 2 * MARGIN for w in row_w.values())])
    y = 0.0
    for name, above in present:
        y += above
        members = [n for n in nodes.values() if n.row == name]
        if name == "fixes":
            fix_w = (width - 2 * MARGIN - GAP[name] * (len(members) - 1)) / len(members)
            for n in members:
                sizes[n.key] = (fix_w, sizes[n.key][1])
        total = sum(sizes[n.key][0] for n in members) + GAP[name] * (len(members) - 1)
        x = MARGIN if name in ("edge", "fixes") else (width - total) / 2
        for n in members:
            w, h = sizes[n.key]
            nodes[n.key] = replace(n, x=x, y=y, w=w, h=h)
            x += w + GAP[name]
        for host in (n for n in members if n.group):
            _place_parts(nodes, nodes[host.key], host_size[host.key], grid_h, sizes)
        y += max(sizes[n.key][1] for n in members)
    return width, y


def _lanes(links: tuple[Link, ...], nodes: dict[str, Node]) -> dict[tuple[str, str], float]:
    """(source, row) → offset: links from several nodes across one gap between rows each bend
    at a height of their own."""
    sources = sorted({lk.source for lk in links}, key=lambda key: nodes[key].cx)
    lanes: dict[tuple[str, str], list[str]] = {}
    for link in links:
        a, b = nodes[link.source], nodes[link.target]
        rows = (_host(a, nodes).row, _host(b, nodes).row)
        if rows[0] != rows[1] and link.source not in lanes.setdefault(rows, []):
            lanes[rows].append(link.source)
    lane = {}
    for (row, _), keys in lanes.items():
        for i, key in enumerate(sorted(keys, key=sources.index)):
            lane[(key, row)] = (i - (len(keys) - 1) / 2) * 12
    return lane


def _place_parts(nodes, host: Node, size, grid_h, sizes) -> None:
    """A host's parts in their cells; its labels (the SPOF mark first) in its footer."""
    col_w, rows = size
    col_x, x = {}, host.x + PAD
    for col in sorted(col_w):
        col_x[col] = x
        x += col_w[col] + CELL_GAP_X
    row_y, y = {}, host.y + HEADER
    for row in rows:
        row_y[row] = y
        y += grid_h[(host.row, row)] + CELL_GAP_Y
    left = host.x + 10 + (badge_width(badge_text(host)) + 8 if host.spof else 0)
    for key, n in list(nodes.items()):
        if n.parent != host.key:
            continue
        if n.tag:
            w = _tag_width(n)
            nodes[key] = replace(n, x=left, y=host.bottom - FOOTER + 2, w=w, h=20)
            left += w + 8
        else:
            w, h = sizes[key]
            nodes[key] = replace(n, x=col_x[n.cell[0]], y=row_y[n.cell[1]], w=col_w[n.cell[0]], h=h)


def _place_edge(nodes: dict[str, Node]) -> None:
    """The user above the DNS it asks first; the virtual address above the balancers."""
    user = nodes.get("user")
    dns = next((n for n in nodes.values() if n.kind == "dns" and n.parent), None)
    if user is not None and dns is not None:
        x = _entry_x(dns, nodes) - user.w / 2
        nodes["user"] = replace(user, x=max(MARGIN, x))
    vip = nodes.get("vip")
    lbs = [n for n in nodes.values() if n.kind == "lb"]
    if vip is not None and lbs:
        middle = (min(n.cx for n in lbs) + max(n.cx for n in lbs)) / 2
        left = max(middle - vip.w / 2, nodes["user"].right + 40 if user else MARGIN)
        nodes["vip"] = replace(vip, x=left)


def _entry_x(node: Node, nodes: dict[str, Node]) -> float:
    """Where an arrow from outside its host lands on a part: its middle, or right of the host's
    title."""
    x = node.cx
    if node.parent:
        x = max(x, title_end(nodes[node.parent]))
    return min(x, node.right - 16)


def _host(node: Node, nodes: dict[str, Node]) -> Node:
    return nodes[node.parent] if node.parent else node


def _route(link: Link, nodes: dict[str, Node], lane: float = 0) -> Link:
    """The link's points between its two nodes, and where its label goes; lane moves the
    height at which a link that bends between two rows runs across."""
    a, b = nodes[link.source], nodes[link.target]
    host_a, host_b = _host(a, nodes), _host(b, nodes)
    if link.route == "below":  # under both hosts, through a channel of their own
        y = max(host_a.bottom, host_b.bottom) + 30
        points = ((a.cx, a.bottom), (a.cx, y), (b.cx, y), (b.cx, b.bottom))
        return replace(link, points=points, label_at=((a.cx + b.cx) / 2, y + 18, "middle"))
    if a.parent and a.parent == b.parent:  # inside one host: down, a third of the way in
        x = max(a.x, b.x) + min(a.w, b.w) / 3
        points = ((x, a.bottom), (x, b.y))
        return replace(link, points=points, label_at=(x + 8, (a.bottom + b.y) / 2 + 4, "start"))
    if host_a.row == host_b.row and host_a.row:  # hosts side by side: across the gap
        if host_b.x >= host_a.right:
            start, end, gap_x = a.right, b.x, (host_a.right + host_b.x) / 2
        else:
            start, end, gap_x = a.x, b.right, (host_b.right + host_a.x) / 2
        points = ((start, a.cy), (gap_x, a.cy), (gap_x, b.cy), (end, b.cy))
        return replace(link, points=points, label_at=(gap_x, a.cy - 8, "middle"))
    # the target is below, in another host or on a row of its own
    x_in = _entry_x(b, nodes)
    top = host_b.y  # labels and bends stay out of the target's host
    if a.x + 8 <= x_in <= a.right - 8:  # straight down
        points = ((x_in, a.bottom), (x_in, b.y))
        return replace(link, points=points, label_at=(x_in + 8, (a.bottom + top) / 2 + 4, "start"))
    if link.source == "user":  # out of the side, then down: the label over the way across
        right = x_in > a.cx
        side = a.right if right else a.x
        points = ((side, a.cy), (x_in, a.cy), (x_in, b.y))
        label_at = (side + (10 if right else -10), a.cy - 8, "start" if right else "end")
        return replace(link, points=points, label_at=label_at)
    mid = (host_a.bottom + top) / 2 + lane  # down, across between the hosts, down
    points = ((a.cx, a.bottom), (a.cx, mid), (x_in, mid), (x_in, b.y))
    return replace(link, points=points, label_at=((a.cx + x_in) / 2, mid - 7, "middle"))


# -- SVG ----------------------------------------------------------------------------------------
SVG_NS = "http://www.w3.org/2000/svg"


def _text(parent, x, y, content, size=13, weight="normal", anchor="start", fill="#212121"):
    node = ET.SubElement(parent, "text", x=f"{x:.0f}", y=f"{y:.0f}", fill=fill)
    node.set("font-size", str(size))
    node.set("font-weight", weight)
    node.set("text-anchor", anchor)
    node.text = content
    return node


def _element(parent, key: str, kind: str, status: str):
    group = ET.SubElement(parent, "g", {"class": f"element {status}"})
    group.set("data-element", key)
    group.set("data-status", status)
    group.set("data-checks", " ".join(check_ids(kind)))
    ET.SubElement(group, "title").text = f"{key}: {status} ({', '.join(check_ids(kind))})"
    return group


def _rect(parent, x, y, w, h, fill, stroke, width="2", rx="8"):
    rect = ET.SubElement(
        parent,
        "rect",
        x=f"{x:.0f}",
        y=f"{y:.0f}",
        width=f"{w:.0f}",
        height=f"{h:.0f}",
        rx=rx,
        fill=fill,
        stroke=stroke,
    )
    rect.set("stroke-width", width)
    return rect


def _badge(parent, node: Node) -> None:
    text = badge_text(node)
    w = badge_width(text)
    if node.group:  # a host's mark: first in its footer
        x, y = node.x + 10, node.bottom - FOOTER + 2
    else:
        x, y = node.right - w - 8, node.y + 6
    badge = ET.SubElement(parent, "g", {"class": "spof"})
    badge.set("data-spof", node.key)
    ET.SubElement(badge, "title").text = f"single point of failure: {node.spof}"
    _rect(badge, x, y, w, 20, SPOF_COLOUR, SPOF_COLOUR, "1", "10")
    _text(badge, x + w / 2, y + 14, text, BADGE_FONT, "bold", "middle", "#ffffff")


def to_svg_element(diagram: Diagram) -> ET.Element:
    """The drawing: title, hosts and their parts, arrows, their labels on top, the legend."""
    svg = ET.Element(
        "svg",
        xmlns=SVG_NS,
        width=f"{diagram.width:.0f}",
        height=f"{diagram.height:.0f}",
        viewBox=f"0 0 {diagram.width:.0f} {diagram.height:.0f}",
    )
    svg.set("font-family", "DejaVu Sans, Helvetica, Arial, sans-serif")
    ET.SubElement(svg, "title").text = f"webstack lab {diagram.lab}: the design"
    _arrow_heads(ET.SubElement(svg, "defs"))
    ET.SubElement(svg, "rect", x="0", y="0", width="100%", height="100%", fill="#ffffff")
    _text(svg, 20, 30, f"The design on lab {diagram.lab} ({diagram.domain})", 18, "bold")
    if diagram.subtitle:
        _text(svg, 20, 52, diagram.subtitle, 12, fill="#616161")
    for node in sorted(diagram.nodes, key=lambda n: (not n.group, n.tag)):
        _draw_node(svg, node)
    for link in diagram.links:
        _draw_link(svg, link)
    labels = ET.SubElement(svg, "g", {"class": "labels"})
    for link in diagram.links:  # labels last, over every line, each on a white halo
        if link.label:
            stroke, _ = COLOURS[link.status]
            x, y, anchor = link.label_at
            label = _text(labels, x, y, link.label, FONT, "bold", anchor, stroke)
            label.set("data-for", link.key)
            _halo(label)
    _balance_label(labels, diagram)
    _legend(svg, diagram)
    return svg


def _arrow_heads(defs: ET.Element) -> None:
    """One arrow head per status, in its colour (markers are not coloured by their line)."""
    for status, (stroke, _) in COLOURS.items():
        marker = ET.SubElement(
            defs,
            "marker",
            id=f"head-{status}",
            viewBox="0 0 10 10",
            refX="9",
            refY="5",
            markerWidth="12",
            markerHeight="12",
            markerUnits="userSpaceOnUse",
            orient="auto-start-reverse",
        )
        ET.SubElement(marker, "path", d="M 0 0 L 10 5 L 0 10 z", fill=stroke)


def _draw_node(svg: ET.Element, node: Node) -> None:
    """A host (white, its title in its colour), a part (filled) or a host's label (a pill)."""
    stroke, fill = COLOURS[node.status]
    group = _element(svg, node.key, node.kind, node.status)
    if node.tag:  # a host's label: its lines in the tooltip and the terminal
        group.find("title").text += " · " + "; ".join(node.lines)
        _rect(group, node.x, node.y, node.w, node.h, fill, stroke, "1.5", "10")
        _text(group, node.cx, node.y + 14, node.title, BADGE_FONT, "bold", "middle", stroke)
        return
    _rect(
        group,
        node.x,
        node.y,
        node.w,
        node.h,
        "#ffffff" if node.group else fill,
        stroke,
        "3" if node.group else "2",
    )
    _text(
        group,
        node.x + 10,
        node.y + (24 if node.group else 20),
        node.title,
        HOST_FONT if node.group or not node.parent else TITLE_FONT,
        "bold",
        fill=stroke if node.group else "#212121",
    )
    for n, line in enumerate(node.lines):
        _text(group, node.x + 10, node.y + 38 + LINE_H * n, line, FONT)
    if node.spof:
        _badge(group, node)


def _draw_link(svg: ET.Element, link: Link) -> None:
    """A link's line through its points, with the arrow head of its status."""
    stroke, _ = COLOURS[link.status]
    group = _element(svg, link.key, link.kind, link.status)
    line = ET.SubElement(
        group,
        "polyline",
        fill="none",
        stroke=stroke,
        points=" ".join(f"{x:.0f},{y:.0f}" for x, y in link.points),
    )
    line.set("stroke-width", "2.5")
    line.set("marker-end", f"url(#head-{link.status})")
    if link.dashed:
        line.set("stroke-dasharray", "6 4")


def _balance_label(labels: ET.Element, diagram: Diagram) -> None:
    """How the balancers share the servers, once beside their arrows (left of them if the
    page has no room on the right)."""
    balance = [link for link in diagram.links if link.kind == "balance"]
    if not balance:
        return
    text = "round robin · active-active"
    corner = max(balance, key=lambda link: link.points[0][0]).points
    x, anchor = corner[0][0] + 10, "start"
    if x + text_width(text, FONT, True) > diagram.width - 10:  # no room: left of the lines
        x, anchor = min(link.points[0][0] for link in balance) - 10, "end"
    stroke, _ = COLOURS[balance[0].status]
    _halo(_text(labels, x, corner[1][1] - 8, text, FONT, "bold", anchor, stroke))


def _halo(label: ET.Element) -> None:
    """label on a white halo, readable over the lines it crosses."""
    label.set("stroke", "#ffffff")
    label.set("stroke-width", "4")
    label.set("paint-order", "stroke")


def _legend(svg, diagram: Diagram) -> None:
    legend = ET.SubElement(svg, "g", {"class": "legend"})
    spofs = diagram.spofs()
    y = diagram.height - LEGEND_H * (2 if spofs else 1) - 2
    x = 20.0
    for status in STATUSES:
        stroke, fill = COLOURS[status]
        _rect(legend, x, y - 12, 16, 16, fill, stroke, "2", "3")
        _text(legend, x + 22, y + 1, LEGEND[status], 12)
        x += 40 + text_width(LEGEND[status], 12) * 0.8  # the estimate is generous
    if spofs:
        x, y = 20.0, y + LEGEND_H
        _rect(legend, x, y - 13, 44, 18, SPOF_COLOUR, SPOF_COLOUR, "1", "9")
        _text(legend, x + 22, y + 1, "SPOF", BADGE_FONT, "bold", "middle", "#ffffff")
        _text(legend, x + 52, y + 1, SPOF_LEGEND, 12)


def to_svg(diagram: Diagram) -> str:
    svg = to_svg_element(diagram)
    ET.indent(svg)
    return ET.tostring(svg, encoding="unicode", xml_declaration=True) + "\n"


# -- HTML ---------------------------------------------------------------------------------------
STYLE = """
body { font-family: DejaVu Sans, Helvetica, Arial, sans-serif; margin: 24px; color: #212121; }
table { border-collapse: collapse; margin-top: 12px; font-size: 13px; }
th, td { border: 1px solid #e0e0e0; padding: 4px 10px; text-align: left; vertical-align: top; }
.swatch { display: inline-block; width: 12px; height: 12px; border-radius: 3px;
          border: 2px solid; vertical-align: middle; margin-right: 6px; }
code { font-size: 12px; }
"""


def _status_table(diagram: Diagram) -> ET.Element:
    table = ET.Element("table")
    head = ET.SubElement(table, "tr")
    for title in ("element", "status"):
        ET.SubElement(head, "th").text = title
    checks = ET.SubElement(head, "th")
    checks.text = "checks (from "
    ET.SubElement(checks, "code").text = "lab check"
    checks[-1].tail = ")"
    for kind in ELEMENT_CHECKS:
        status = element_status(kind, diagram.statuses)
        stroke, fill = COLOURS[status]
        row = ET.SubElement(table, "tr")
        ET.SubElement(row, "td").text = kind
        cell = ET.SubElement(row, "td")
        swatch = ET.SubElement(cell, "span", {"class": "swatch"})
        swatch.set("style", f"background:{fill};border-color:{stroke}")
        swatch.text = ""
        swatch.tail = status
        cell = ET.SubElement(row, "td")
        for n, cid in enumerate(check_ids(kind)):
            code = ET.SubElement(cell, "code")
            code.text = cid
            mark = MARKS[diagram.statuses.get(cid, "unknown")]
            code.tail = f" {mark}" + (", " if n < len(check_ids(kind)) - 1 else "")
    return table


def to_html(diagram: Diagram) -> str:
    """A standalone page (no network): the drawing and its legend, and unless it is handed in,
    what colours each element."""
    page = ET.Element("html", lang="en")
    head = ET.SubElement(page, "head")
    ET.SubElement(head, "meta", charset="utf-8")
    ET.SubElement(head, "title").text = f"The design on lab {diagram.lab} ({diagram.domain})"
    ET.SubElement(head, "style").text = STYLE
    body = ET.SubElement(page, "body")
    body.append(to_svg_element(diagram))
    if not diagram.hand_in:
        body.append(_status_table(diagram))
    return "<!DOCTYPE html>\n" + ET.tostring(page, encoding="unicode", method="html") + "\n"


# -- terminal -----------------------------------------------------------------------------------
def _line(mark_status: str, text: str, indent: str = "") -> Text:
    return Text.assemble(indent, (f"{MARKS[mark_status]} {text}", RICH_STYLES[mark_status]))


def _spof(node: Node) -> Text:
    return Text(f" SPOF · {node.spof} ", style=f"bold white on {SPOF_COLOUR}")


def _host_panel(diagram: Diagram, host: Node) -> Panel:
    """A host and its parts, each with the link that comes into it from the part above."""
    lines: list[Text] = []
    tags = [n for n in diagram.nodes if n.parent == host.key and n.tag]
    for tag in tags:
        lines.append(_line(tag.status, f"{tag.title}: {tag.lines[0]}"))
    keys = {n.key for n in diagram.parts(host.key)}
    for part in diagram.parts(host.key):
        into = [lk for lk in diagram.links if lk.target == part.key and lk.source in keys]
        for link in into:
            lines.append(_line(link.status, f"│ {link.label}", "  "))
        text = _line(part.status, f"{part.title}: {'; '.join(part.lines)}")
        if part.spof:
            text.append("  ")
            text.append_text(_spof(part))
        lines.append(text)
    title = Text(host.title)
    if host.spof:
        title.append("  ")
        title.append_text(_spof(host))
    return Panel(
        Text("\n").join(lines),
        title=title,
        title_align="left",
        border_style=RICH_STYLES[host.status],
        expand=False,
    )


def to_rich(diagram: Diagram) -> Group:
    """The same model for a terminal: top to bottom, each element marked and coloured."""
    parts: list = [Text(f"The design on lab {diagram.lab} ({diagram.domain})", style="section")]
    if diagram.subtitle:
        parts.append(Text(diagram.subtitle, style="muted"))
    user = diagram.node("user")
    if user is not None:
        parts.append(_line(user.status, f"{user.title}  ({user.lines[0]})"))
    for link in (lk for lk in diagram.links if lk.source == "user"):
        target = diagram.node(link.target)
        where = target.title if target is not None else link.target
        host = diagram.node(target.parent) if target is not None and target.parent else None
        if host is not None:
            where += f" on {host.title.split(' · ')[0]}"
        parts.append(_line(link.status, f"│ {link.label} → {where}", "   "))
    vip = diagram.node("vip")
    if vip is not None:
        parts.append(_line(vip.status, f"{vip.title}: {'; '.join(vip.lines)}"))
        for link in (lk for lk in diagram.links if lk.source == "vip"):
            target = diagram.node(link.target)
            host = diagram.node(target.parent) if target and target.parent else None
            name = host.title.split(" · ")[0] if host else link.target
            parts.append(_line(link.status, f"▼ {name}: {link.label}", "   "))
    balancers = [n for n in diagram.nodes if n.group and n.row == "lbs"]
    parts.append(Columns([_host_panel(diagram, host) for host in balancers]))
    balance = next((lk for lk in diagram.links if lk.kind == "balance"), None)
    if balance is not None:
        parts.append(_line(balance.status, "▼ round robin · active-active, to each server", "   "))
    servers = [n for n in diagram.nodes if n.group and n.row == "servers"]
    parts.append(Columns([_host_panel(diagram, host) for host in servers]))
    for link in diagram.links:
        if link.kind == "replication":
            parts.append(_line(link.status, link.label))
        if link.kind == "writes":
            source = link.source.split(":", 1)[1]
            target = link.target.split(":", 1)[1]
            parts.append(
                _line(link.status, f"writes from {source}'s application go to {target}'s primary")
            )
    spofs = diagram.spofs()
    if spofs:
        parts.append(Text("single points of failure:", style="section"))
        for node in spofs:
            where = diagram.node(node.parent) if node.parent else None
            name = node.title if where is None else f"{node.title} on {where.title}"
            parts.append(Text.assemble("  ", _spof(node), f" {name}"))
    fixes = [n for n in diagram.nodes if n.row == "fixes"]
    if fixes:
        parts.append(Text("the design's issues, fixed (lab check --all):", style="section"))
        parts += [_line(n.status, f"{n.title}: {n.lines[0]}", "  ") for n in fixes]
    legend = Text("legend: ")
    for status in STATUSES:
        legend.append(f"{MARKS[status]} {LEGEND[status]}  ", style=RICH_STYLES[status])
    if spofs:
        legend.append_text(Text(" SPOF ", style=f"bold white on {SPOF_COLOUR}"))
        legend.append(f" {SPOF_LEGEND}")
    parts.append(legend)
    return Group(*parts)
