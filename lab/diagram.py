"""The design drawn from a lab's topology, each element coloured by its checks' last results:
one layout, rendered to the terminal (rich), to a standalone SVG and to an HTML page."""

from __future__ import annotations

import html
import itertools
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from rich.columns import Columns
from rich.console import Group
from rich.panel import Panel
from rich.text import Text

from checks import CATALOGUE
from lab.topology import Host, Topology

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
    # the fixes of the design's issues: a row of their own, grey until `lab check --all` ran
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
FIXES_H = 100  # the row of fixes below the servers

STATUSES = ("pass", "fail", "not-run", "unknown")
LEGEND = {
    "pass": "pass",
    "fail": "fail",
    "not-run": "not run (a prerequisite failed)",
    "unknown": "unknown (no check result yet)",
}
COLOURS = {  # status → (stroke, fill)
    "pass": ("#2e7d32", "#e8f5e9"),
    "fail": ("#c62828", "#ffebee"),
    "not-run": ("#b26a00", "#fff8e1"),
    "unknown": ("#757575", "#f5f5f5"),
}
RICH_STYLES = {
    "pass": "check.pass",
    "fail": "check.fail",
    "not-run": "check.not-run",
    "unknown": "muted",
}
MARKS = {"pass": "✓", "fail": "✗", "not-run": "-", "unknown": "?"}


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
    for status in ("fail", "not-run"):
        if status in seen:
            return status
    return "pass" if seen and all(s == "pass" for s in seen) else "unknown"


@dataclass(frozen=True)
class Box:
    key: str
    kind: str
    title: str
    lines: tuple[str, ...]
    status: str
    x: float
    y: float
    w: float
    h: float
    inner: bool = False

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def cy(self) -> float:
        return self.y + self.h / 2

    @property
    def bottom(self) -> float:
        return self.y + self.h


@dataclass(frozen=True)
class Arrow:
    key: str
    kind: str
    label: str
    status: str
    points: tuple[tuple[float, float], ...]
    dashed: bool = False
    label_at: tuple[float, float, str] = (0, 0, "middle")  # x, y, text-anchor


@dataclass(frozen=True)
class Diagram:
    lab: str
    domain: str
    subtitle: str
    width: float
    height: float
    boxes: tuple[Box, ...]
    arrows: tuple[Arrow, ...]
    statuses: dict[str, str] = field(default_factory=dict)

    def box(self, key: str) -> Box:
        return next(b for b in self.boxes if b.key == key)


COLUMN, SERVER_W, SERVER_H, INNER_H = 330, 260, 300, 56
TOP, LB_Y, SERVERS_Y = 70, 220, 360


def server_hosts(topology: Topology) -> list[Host]:
    """Hosts that run a part of the site behind the load balancer, in file order."""
    parts = {"web", "app", "db-primary", "db-replica"}
    return [h for h in topology.hosts if parts & set(h.roles)]


def build(
    topology: Topology, statuses: dict[str, str], dns_lines: list[str], subtitle: str = ""
) -> Diagram:
    """Lay out the design of topology: the user, DNS, load balancers, servers, replication."""
    servers = server_hosts(topology)
    lbs = topology.with_role("lb")
    width = max(len(servers) * COLUMN + 40, len(lbs) * 280 + 400, 960)
    domain = topology.domain
    boxes: list[Box] = []
    arrows: list[Arrow] = []

    def status(kind: str) -> str:
        return element_status(kind, statuses)

    user = Box(
        "user",
        "user",
        "user's computer",
        (f"browser: http://www.{domain}/",),
        status("user"),
        40,
        TOP + 10,
        220,
        64,
    )
    dns_hosts = topology.with_role("dns")
    where = f"on {dns_hosts[0].name} ({dns_hosts[0].address})" if dns_hosts else "(no DNS host)"
    dns = Box(
        "dns",
        "dns",
        f"DNS for {domain} {where}",
        tuple(dns_lines),
        status("dns"),
        width - 40 - 380,
        TOP,
        380,
        26 + 18 * max(len(dns_lines), 1) + 10,
    )
    boxes += [user, dns]
    arrows.append(
        Arrow(
            "ask-dns",
            "ask-dns",
            f"1 · where is www.{domain}?",
            status("ask-dns"),
            ((user.x + user.w, user.cy), (dns.x, user.cy)),
            label_at=((user.x + user.w + dns.x) / 2, user.cy - 8, "middle"),
        )
    )

    total = len(lbs) * 240 + (len(lbs) - 1) * 40
    for i, lb in enumerate(lbs):
        box = Box(
            f"lb:{lb.name}",
            "lb",
            f"{lb.name} · {lb.address}",
            ("HAProxy on port 80", "round robin over the web servers"),
            status("lb"),
            (width - total) / 2 + i * 280,
            LB_Y,
            240,
            70,
        )
        boxes.append(box)
        arrows.append(
            Arrow(
                f"request:{lb.name}",
                "request",
                f"2 · HTTP, Host: www.{domain}" if i == 0 else "",
                status("request"),
                ((user.cx, user.bottom), (box.cx, box.y)),
                label_at=((user.cx + box.cx) / 2 + 10, (user.bottom + box.y) / 2, "start"),
            )
        )

    offset = (width - len(servers) * COLUMN) / 2 + (COLUMN - SERVER_W) / 2
    inner: dict[tuple[str, str], Box] = {}
    for i, host in enumerate(servers):
        x, y = offset + i * COLUMN, SERVERS_Y
        boxes.append(
            Box(
                f"host:{host.name}",
                "host",
                f"{host.name} · {host.address}",
                (),
                status("host"),
                x,
                y,
                SERVER_W,
                SERVER_H,
            )
        )
        rows = [
            ("web", "nginx", "Nginx", ("static files; the rest to the app",)),
            ("app", "app", "application server", ("gunicorn + the application files",)),
            ("db-primary", "db", "MySQL primary", ("takes every write; binary log",)),
            ("db-replica", "replica-db", "MySQL replica", ("read-only copy; local reads",)),
        ]
        level = 0
        for role, kind, title, lines in rows:
            if role not in host.roles:
                continue
            if role == "db-replica" and "db-primary" in host.roles:
                continue
            inner[(host.name, kind)] = Box(
                f"{kind}:{host.name}",
                kind,
                title,
                lines,
                status(kind),
                x + 20,
                y + 40 + level * 86,
                220,
                INNER_H,
                inner=True,
            )
            level += 1
        boxes += [b for (h, _), b in inner.items() if h == host.name]
        for lb_box in (b for b in boxes if b.kind == "lb"):
            arrows.append(
                Arrow(
                    f"balance:{lb_box.key.split(':', 1)[1]}:{host.name}",
                    "balance",
                    "",
                    status("balance"),
                    ((lb_box.cx, lb_box.bottom), (x + SERVER_W / 2, y)),
                )
            )
        stack = [b for (h, _), b in inner.items() if h == host.name]
        for upper, lower in itertools.pairwise(stack):
            kind = "proxy" if upper.kind == "nginx" else "queries"
            label = "proxy_pass" if kind == "proxy" else "SQL (reads)"
            arrows.append(
                Arrow(
                    f"{kind}:{host.name}",
                    kind,
                    label,
                    status(kind),
                    ((upper.cx, upper.bottom), (lower.cx, lower.y)),
                    label_at=(upper.cx + 8, (upper.bottom + lower.y) / 2 + 4, "start"),
                )
            )

    last_lb = next((b for b in reversed(boxes) if b.kind == "lb"), None)
    if last_lb is not None:
        arrows.append(
            Arrow(
                "balance-label",
                "balance",
                "round robin · active-active",
                status("balance"),
                (),
                label_at=(last_lb.x + last_lb.w + 12, last_lb.bottom + 16, "start"),
            )
        )

    primaries = [h for h in servers if "db-primary" in h.roles]
    if primaries:
        primary_db = inner[(primaries[0].name, "db")]
        below = SERVERS_Y + SERVER_H + 30
        for host in servers:
            replica_db = inner.get((host.name, "replica-db"))
            if replica_db is not None:
                arrows.append(
                    Arrow(
                        f"replication:{host.name}",
                        "replication",
                        f"replication: {primaries[0].name} → {host.name}",
                        status("replication"),
                        (
                            (primary_db.cx, primary_db.bottom),
                            (primary_db.cx, below),
                            (replica_db.cx, below),
                            (replica_db.cx, replica_db.bottom),
                        ),
                        label_at=((primary_db.cx + replica_db.cx) / 2, below + 18, "middle"),
                    )
                )
            app = inner.get((host.name, "app"))
            if app is not None and host is not primaries[0]:
                right = app.x > primary_db.x
                start = (app.x if right else app.x + app.w, app.cy)
                end = (primary_db.x + primary_db.w if right else primary_db.x, primary_db.cy)
                arrows.append(
                    Arrow(
                        f"writes:{host.name}",
                        "writes",
                        "writes",
                        status("writes"),
                        (start, end),
                        dashed=True,
                        label_at=((start[0] + end[0]) / 2, start[1] - 8, "middle"),
                    )
                )
    fixes_y = SERVERS_Y + SERVER_H + 80
    fix_w = (width - 80 - 3 * 20) / 4
    for i, (kind, title, line) in enumerate(FIXES):
        boxes.append(
            Box(
                f"fix:{kind}",
                kind,
                title,
                (line,),
                status(kind),
                40 + i * (fix_w + 20),
                fixes_y,
                fix_w,
                INNER_H,
            )
        )
    return Diagram(
        topology.name,
        domain,
        subtitle,
        width,
        SERVERS_Y + SERVER_H + 110 + FIXES_H,
        tuple(boxes),
        tuple(arrows),
        dict(statuses),
    )


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


def to_svg_element(diagram: Diagram) -> ET.Element:
    legend_y = diagram.height - 30
    svg = ET.Element(
        "svg",
        xmlns=SVG_NS,
        width=f"{diagram.width:.0f}",
        height=f"{diagram.height:.0f}",
        viewBox=f"0 0 {diagram.width:.0f} {diagram.height:.0f}",
    )
    svg.set("font-family", "DejaVu Sans, Helvetica, Arial, sans-serif")
    ET.SubElement(svg, "title").text = f"webstack lab {diagram.lab}: the design"
    defs = ET.SubElement(svg, "defs")
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
    ET.SubElement(svg, "rect", x="0", y="0", width="100%", height="100%", fill="#ffffff")
    _text(svg, 20, 30, f"The design on lab {diagram.lab} ({diagram.domain})", 18, "bold")
    if diagram.subtitle:
        _text(svg, 20, 52, diagram.subtitle, 12, fill="#616161")
    for box in diagram.boxes:
        stroke, fill = COLOURS[box.status]
        group = _element(svg, box.key, box.kind, box.status)
        ET.SubElement(
            group,
            "rect",
            x=f"{box.x:.0f}",
            y=f"{box.y:.0f}",
            width=f"{box.w:.0f}",
            height=f"{box.h:.0f}",
            rx="8",
            fill="#ffffff" if box.kind == "host" else fill,
            stroke=stroke,
        ).set("stroke-width", "3" if box.kind == "host" else "2")
        _text(
            group,
            box.x + 10,
            box.y + 20,
            box.title,
            13 if box.inner else 14,
            "bold",
            fill=stroke if box.kind == "host" else "#212121",
        )
        for n, line in enumerate(box.lines):
            _text(group, box.x + 10, box.y + 38 + 18 * n, line, 12)
    for arrow in diagram.arrows:
        stroke, _ = COLOURS[arrow.status]
        group = _element(svg, arrow.key, arrow.kind, arrow.status)
        if arrow.points:
            line = ET.SubElement(
                group,
                "polyline",
                fill="none",
                stroke=stroke,
                points=" ".join(f"{x:.0f},{y:.0f}" for x, y in arrow.points),
            )
            line.set("stroke-width", "2.5")
            line.set("marker-end", f"url(#head-{arrow.status})")
            if arrow.dashed:
                line.set("stroke-dasharray", "6 4")
        if arrow.label:
            x, y, anchor = arrow.label_at
            _text(group, x, y, arrow.label, 12, "bold", anchor, stroke)
    legend = ET.SubElement(svg, "g", {"class": "legend"})
    x = 20.0
    for status in STATUSES:
        stroke, fill = COLOURS[status]
        ET.SubElement(
            legend,
            "rect",
            x=f"{x:.0f}",
            y=f"{legend_y - 12:.0f}",
            width="16",
            height="16",
            rx="3",
            fill=fill,
            stroke=stroke,
        ).set("stroke-width", "2")
        _text(legend, x + 22, legend_y + 1, LEGEND[status], 12)
        x += 34 + 6.2 * len(LEGEND[status])
    return svg


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


def to_html(diagram: Diagram) -> str:
    """A standalone page (no network): the SVG, its legend and what colours each element."""
    svg = ET.tostring(to_svg_element(diagram), encoding="unicode")
    rows = []
    for kind in ELEMENT_CHECKS:
        status = element_status(kind, diagram.statuses)
        checks = ", ".join(
            f"<code>{html.escape(c)}</code> {MARKS[diagram.statuses.get(c, 'unknown')]}"
            for c in check_ids(kind)
        )
        stroke, fill = COLOURS[status]
        rows.append(
            f'<tr><td>{html.escape(kind)}</td><td><span class="swatch" style="background:{fill};'
            f'border-color:{stroke}"></span>{html.escape(status)}</td><td>{checks}</td></tr>'
        )
    title = f"The design on lab {diagram.lab} ({diagram.domain})"
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        f"{svg}\n"
        "<table><tr><th>element</th><th>status</th><th>checks (from <code>lab check</code>)"
        f"</th></tr>\n{''.join(rows)}\n</table>\n</body>\n</html>\n"
    )


# -- terminal -----------------------------------------------------------------------------------
def _line(mark_status: str, text: str, indent: str = "") -> Text:
    return Text.assemble(indent, (f"{MARKS[mark_status]} {text}", RICH_STYLES[mark_status]))


def to_rich(diagram: Diagram) -> Group:
    """The same drawing for a terminal: top to bottom, each element marked and coloured."""
    parts: list = [Text(f"The design on lab {diagram.lab} ({diagram.domain})", style="section")]
    if diagram.subtitle:
        parts.append(Text(diagram.subtitle, style="muted"))
    user, dns = diagram.box("user"), diagram.box("dns")
    ask = next(a for a in diagram.arrows if a.kind == "ask-dns")
    parts += [
        _line(user.status, f"{user.title}  ({user.lines[0]})"),
        _line(ask.status, f"│ {ask.label}", "   "),
        Panel(
            Text("\n".join(dns.lines)),
            title=dns.title,
            title_align="left",
            border_style=RICH_STYLES[dns.status],
            expand=False,
        ),
    ]
    request = next((a for a in diagram.arrows if a.kind == "request"), None)
    if request is not None:
        parts.append(_line(request.status, f"▼ {request.label}", "   "))
    for box in (b for b in diagram.boxes if b.kind == "lb"):
        parts.append(_line(box.status, f"{box.title}: {', '.join(box.lines)}"))
    balance = next((a for a in diagram.arrows if a.kind == "balance"), None)
    if balance is not None:
        parts.append(_line(balance.status, "▼ round robin · active-active, to each server", "   "))
    panels = []
    for host in (b for b in diagram.boxes if b.kind == "host"):
        name = host.key.split(":", 1)[1]
        lines: list[Text] = []
        for box in (b for b in diagram.boxes if b.inner and b.key.endswith(f":{name}")):
            link = next(
                (
                    a
                    for a in diagram.arrows
                    if a.key in (f"proxy:{name}", f"queries:{name}")
                    and a.points
                    and a.points[1][1] == box.y
                ),
                None,
            )
            if link is not None:
                lines.append(_line(link.status, f"│ {link.label}", "  "))
            lines.append(_line(box.status, f"{box.title}: {box.lines[0]}"))
        panels.append(
            Panel(
                Text("\n").join(lines),
                title=host.title,
                title_align="left",
                border_style=RICH_STYLES[host.status],
                expand=False,
            )
        )
    parts.append(Columns(panels))
    for arrow in diagram.arrows:
        if arrow.kind in ("replication", "writes"):
            text = (
                arrow.label
                if arrow.kind == "replication"
                else (f"writes from {arrow.key.split(':', 1)[1]}'s application go to the primary")
            )
            parts.append(_line(arrow.status, text))
    fixes = [b for b in diagram.boxes if b.key.startswith("fix:")]
    if fixes:
        parts.append(Text("the design's issues, fixed (lab check --all):", style="section"))
        parts += [_line(b.status, f"{b.title}: {b.lines[0]}", "  ") for b in fixes]
    legend = Text("legend: ")
    for status in STATUSES:
        legend.append(f"{MARKS[status]} {LEGEND[status]}  ", style=RICH_STYLES[status])
    parts.append(legend)
    return Group(*parts)
