"""lab diagram: the SVG parses, names every host, its colours follow the check results, the fixes
appear once a check saw them built, single points of failure are marked, and the terminal view is
drawn from the same model."""

from __future__ import annotations

import io
import itertools
import re
import xml.etree.ElementTree as ET

from checks import CATALOGUE
from checks.base import BASE_SECTIONS
from lab.cli.render import make_console
from lab.core.topology import parse
from lab.course import diagram

NS = {"svg": diagram.SVG_NS}
DNS = ["www.foobar.com CNAME foobar.com", "foobar.com A 192.168.56.10"]


def topology(extra_lb: bool = False):
    hosts = {
        "lb-01": {"address": "192.168.56.10", "roles": ["lb", "dns"]},
        "web-01": {"address": "192.168.56.11", "roles": ["web", "app", "db-primary"]},
        "web-02": {"address": "192.168.56.12", "roles": ["web", "app", "db-replica"]},
    }
    network = {"subnet": "192.168.56.0/24"}
    if extra_lb:  # two balancers share a virtual address (lab-ha.yml)
        hosts["lb-02"] = {"address": "192.168.56.13", "roles": ["lb"]}
        network["virtual_address"] = "192.168.56.100"
    return parse({"name": "t", "network": network, "hosts": hosts})


HOLDER = {"ha.one-holder": "lb-01 holds 192.168.56.100/24 dev eth1; VRRP on lb-01, lb-02"}


def svg_of(statuses, extra_lb=False, evidence=None, hand_in=False) -> ET.Element:
    drawing = diagram.build(topology(extra_lb), statuses, DNS, "test", evidence, hand_in)
    return ET.fromstring(diagram.to_svg(drawing).split("?>", 1)[1])


def keys(root) -> set[str]:
    return {g.get("data-element") for g in root.iter(f"{{{diagram.SVG_NS}}}g")} - {None}


def label(root, key: str) -> str:
    """The words drawn in an element (and, for a link, its label drawn over every line)."""
    group = element(root, key)
    words = [t.text or "" for t in group.iter(f"{{{diagram.SVG_NS}}}text")]
    words += [t.text or "" for t in root.findall(f".//svg:text[@data-for='{key}']", NS)]
    return " ".join(words)


def texts(root) -> str:
    return "\n".join(t.text or "" for t in root.iter(f"{{{diagram.SVG_NS}}}text"))


def element(root, key: str) -> ET.Element:
    found = root.find(f".//svg:g[@data-element='{key}']", NS)
    assert found is not None, key
    return found


def stroke(group: ET.Element) -> str:
    shape = group.find("svg:rect", NS)
    if shape is None:
        shape = group.find("svg:polyline", NS)
    return shape.get("stroke")


def all_pass():
    return {cid: "pass" for cid in CATALOGUE}


def base_pass():
    """The base design passes; none of the fixes was checked."""
    return {cid: "pass" for cid, c in CATALOGUE.items() if c.section in BASE_SECTIONS}


def test_every_mapped_check_exists_and_every_check_is_drawn():
    drawn = {cid for kind in diagram.ELEMENT_CHECKS for cid in diagram.check_ids(kind)}
    assert drawn == set(CATALOGUE)
    for names in diagram.ELEMENT_CHECKS.values():
        sections = {c.section for c in CATALOGUE.values()}
        assert all(n in CATALOGUE or n in sections for n in names)


def test_svg_parses_and_names_every_host():
    root = svg_of(all_pass())
    words = texts(root)
    for host in topology().hosts:
        assert host.name in words and host.address in words
    assert "MySQL primary" in words and "MySQL replica" in words
    assert "replication: web-01 → web-02" in words
    assert DNS[0] in words


def test_a_second_load_balancer_is_drawn_with_its_own_arrows():
    root = svg_of(all_pass(), extra_lb=True)
    words = texts(root)
    for host in topology(extra_lb=True).hosts:
        assert host.name in words
    element(root, "lb:lb-02")
    element(root, "request:lb-02")
    element(root, "balance:lb-02:web-02")
    drawing = diagram.build(topology(True), {}, DNS)
    boxes = [b for b in drawing.nodes if b.kind == "lb"]
    assert boxes[0].x + boxes[0].w <= boxes[1].x  # side by side, not on top of each other


def test_colours_follow_check_results():
    root = svg_of(all_pass())
    green, red = diagram.COLOURS["pass"][0], diagram.COLOURS["fail"][0]
    assert stroke(element(root, "nginx:web-01")) == green
    assert stroke(element(root, "replication:web-02")) == green

    broken = {**all_pass(), "web.static": "fail", "db.replication": "not-run"}
    root = svg_of(broken)
    assert stroke(element(root, "nginx:web-01")) == red
    assert element(root, "nginx:web-02").get("data-status") == "fail"
    replication = element(root, "replication:web-02")
    assert stroke(replication) == diagram.COLOURS["not-run"][0]
    assert stroke(element(root, "lb:lb-01")) == green

    unknown = svg_of({})
    assert element(unknown, "dns:lb-01").get("data-status") == "unknown"
    assert stroke(element(unknown, "dns:lb-01")) == diagram.COLOURS["unknown"][0]
    assert stroke(element(unknown, "fix:https")) == diagram.COLOURS["unknown"][0]


def test_element_status_rules():
    assert diagram.element_status("nginx", {}) == "unknown"
    assert diagram.element_status("nginx", {"web.nginx": "pass"}) == "unknown"
    passes = {"web.nginx": "pass", "web.static": "pass", "web.served-by": "pass"}
    assert diagram.element_status("nginx", passes) == "pass"
    assert diagram.element_status("nginx", {**passes, "web.static": "not-run"}) == "not-run"
    assert diagram.element_status("nginx", {"web.static": "not-run", "web.nginx": "fail"}) == "fail"


def test_html_is_standalone_with_the_drawing_and_a_legend():
    page = diagram.to_html(diagram.build(topology(), {"web.static": "fail"}, DNS, "x"))
    assert page.startswith("<!DOCTYPE html>")
    assert "<svg" in page
    assert not any(f" {attr}=" in page for attr in ("src", "href", "xlink:href"))  # no network
    assert "<link" not in page and "<script" not in page
    for status in diagram.STATUSES:
        assert diagram.LEGEND[status] in page
    assert "web.static</code> ✗" in page


def test_terminal_drawing_names_hosts_and_marks():
    console = make_console(width=120, record=True, file=io.StringIO())
    console.print(diagram.to_rich(diagram.build(topology(True), {"dns.www": "fail"}, DNS)))
    text = console.export_text()
    for host in ("lb-01", "lb-02", "web-01", "web-02"):
        assert host in text
    assert "✗ │ 1 · where is www.foobar.com?" in text
    assert "legend:" in text


def inside(inner: diagram.Node, outer: diagram.Node) -> bool:
    return (
        outer.x <= inner.x
        and inner.right <= outer.right
        and outer.y <= inner.y
        and inner.bottom <= outer.bottom
    )


def apart(a: diagram.Node, b: diagram.Node) -> bool:
    return a.right <= b.x or b.right <= a.x or a.bottom <= b.y or b.bottom <= a.y


def test_dns_is_drawn_on_lb_01_with_its_records():
    drawing = diagram.build(topology(), base_pass(), DNS)
    dns, lb = drawing.box("dns:lb-01"), drawing.box("host:lb-01")
    assert dns.parent == "host:lb-01" and inside(dns, lb)
    assert inside(drawing.box("lb:lb-01"), lb)  # HAProxy in the same box: they fail together
    root = svg_of(base_pass())
    assert DNS[1] in label(root, "dns:lb-01")
    ask = element(root, "ask-dns")
    end = ask.find("svg:polyline", NS).get("points").split()[-1]
    x, y = (float(v) for v in end.split(","))
    assert dns.x <= x <= dns.right and y == dns.y  # the user's question arrives at the DNS


def test_the_fixes_appear_only_once_a_check_saw_them_built():
    plain = svg_of(base_pass(), extra_lb=True)
    for key in ("https:lb-01", "firewall:web-01", "vip", "monitoring:lb-01"):
        assert key not in keys(plain)
    assert "2 · HTTP, Host" in label(plain, "request:lb-01")
    assert "request:lb-02" not in keys(plain)  # www leads to lb-01 alone until HA is seen
    assert "http://www.foobar.com/" in label(plain, "user")

    failed = svg_of({**base_pass(), "https.trusted": "fail", "firewall.default-deny": "fail"})
    assert "https:lb-01" not in keys(failed) and "firewall:lb-01" not in keys(failed)
    assert element(failed, "fix:https").get("data-status") == "fail"

    https = svg_of({**base_pass(), "https.trusted": "pass"})
    assert "443" in label(https, "https:lb-01") and "301" not in label(https, "https:lb-01")
    assert "2 · HTTPS, Host" in label(https, "request:lb-01")
    assert "https://www.foobar.com/" in label(https, "user")
    redirect = svg_of({**base_pass(), "https.trusted": "pass", "https.redirect": "pass"})
    assert "80: answers 301 to https" in label(redirect, "https:lb-01")

    walls = svg_of({**base_pass(), "firewall.default-deny": "pass"})
    for host in topology().hosts:
        assert label(walls, f"firewall:{host.name}") == "firewall"

    ha = {**base_pass(), "ha.one-holder": "pass"}
    root = svg_of(ha, extra_lb=True, evidence=HOLDER)
    assert "virtual address 192.168.56.100" in label(root, "vip")
    assert "held by lb-01" in label(root, "vip")
    moved = {
        **HOLDER,
        "ha.failover": "with haproxy.service and keepalived.service killed on lb-01 (the holder), "
        "lb-02 took 192.168.56.100 over and the site answered again after 3.5 s (limit 10 s); "
        "once lb-01 was restarted, lb-02 held it",
    }
    assert diagram.holder(moved, ["lb-01", "lb-02"]) == "lb-02"  # the latest seen holds it
    assert diagram.holder({"ha.one-holder": "no load balancer holds"}, ["lb-01", "lb-02"]) == ""
    assert label(root, "request:lb-01") == "holds it"
    standby = element(root, "request:lb-02").find("svg:polyline", NS)
    assert standby.get("stroke-dasharray") and label(root, "request:lb-02") == "standby"
    assert "lb-02" in label(root, "host:lb-02")
    every = svg_of(all_pass(), extra_lb=True, evidence=HOLDER)
    assert {"https:lb-01", "https:lb-02", "firewall:lb-02", "vip", "monitoring:lb-01"} <= keys(
        every
    )


def spof_marks(root) -> dict[str, str]:
    return {
        g.get("data-spof"): " ".join(t.text for t in g.iter(f"{{{diagram.SVG_NS}}}text"))
        for g in root.iter(f"{{{diagram.SVG_NS}}}g")
        if g.get("data-spof")
    }


def test_single_points_of_failure_are_marked():
    marks = spof_marks(svg_of(base_pass()))
    assert marks == {"host:lb-01": "SPOF · HAProxy and DNS", "db:web-01": "SPOF · every write"}
    assert "single point of failure" in texts(svg_of(base_pass()))  # the legend says what it is
    # a second balancer that the checks did not see take over changes nothing
    assert "host:lb-01" in spof_marks(svg_of({**all_pass(), "ha.failover": "fail"}, True))
    # once failover was seen, the DNS on lb-01 is what is left of lb-01's single point of failure
    marks = spof_marks(svg_of(all_pass(), extra_lb=True, evidence=HOLDER))
    assert marks == {"dns:lb-01": "SPOF · the only DNS", "db:web-01": "SPOF · every write"}


def test_each_application_reads_its_own_database_and_writes_to_the_primary():
    root = svg_of(base_pass())
    assert label(root, "queries:web-01") == "SQL: reads and writes"
    assert label(root, "queries:web-02") == "SQL: reads"
    assert label(root, "writes:web-02") == "SQL: writes"
    drawing = diagram.build(topology(), base_pass(), DNS)
    links = {link.key: link for link in drawing.links}
    assert links["queries:web-01"].target == "db:web-01"
    assert links["queries:web-02"].target == "replica-db:web-02"
    assert links["writes:web-02"].target == "db:web-01"
    assert "writes:web-01" not in links


def test_the_hand_in_has_no_status_table_and_no_row_of_fixes():
    drawing = diagram.build(topology(), base_pass(), DNS, "", None, hand_in=True)
    page = diagram.to_html(drawing)
    assert "<svg" in page and "<table" not in page and "checks (from" not in page
    assert "fix:" not in page
    assert "<table" in diagram.to_html(diagram.build(topology(), base_pass(), DNS))
    root = svg_of(all_pass(), extra_lb=True, evidence=HOLDER, hand_in=True)
    assert {"https:lb-01", "firewall:web-01", "vip"} <= keys(root)  # what is built stays


def other_topology():
    """Roles spread differently: the DNS on a host of its own, a balancer that is also a web
    server, a third web server with a replica."""
    hosts = {
        "ns": {"address": "192.168.56.5", "roles": ["dns"]},
        "front": {"address": "192.168.56.10", "roles": ["lb", "web", "app"]},
        "web-01": {"address": "192.168.56.11", "roles": ["web", "app", "db-primary"]},
        "web-02": {"address": "192.168.56.12", "roles": ["web", "app", "db-replica"]},
        "web-03": {"address": "192.168.56.13", "roles": ["web", "app", "db-replica"]},
    }
    return parse({"name": "o", "network": {"subnet": "192.168.56.0/24"}, "hosts": hosts})


def test_nothing_overlaps_and_everything_fits_the_page():
    for layout, statuses, evidence in (
        (topology(), {}, None),
        (topology(), base_pass(), None),
        (topology(True), base_pass(), None),
        (topology(True), all_pass(), HOLDER),
        (other_topology(), all_pass(), None),
    ):
        for hand_in in (False, True):
            drawing = diagram.build(layout, statuses, DNS, "x", evidence, hand_in)
            nodes = drawing.nodes
            for node in nodes:
                assert node.x >= 0 and node.right <= drawing.width, node.key
                assert node.y >= 60 and node.bottom <= drawing.height - 40, node.key
                if node.parent:
                    assert inside(node, drawing.box(node.parent)), node.key
            for a, b in itertools.combinations(nodes, 2):
                if a.key not in (b.parent, b.key) and b.key != a.parent:
                    assert apart(a, b), (a.key, b.key)
            for link in drawing.links:
                x, _, anchor = link.label_at
                width = diagram.text_width(link.label, diagram.FONT, True)
                left = x - (width if anchor == "end" else width / 2 if anchor == "middle" else 0)
                assert left >= 0 and left + width <= drawing.width, link.key


def test_the_terminal_view_is_drawn_from_the_model_not_the_geometry():
    """The model before layout (every coordinate 0) prints the same as the laid-out drawing."""
    args = (topology(True), all_pass(), DNS, "x", HOLDER)

    def text(drawing) -> str:
        console = make_console(width=200, record=True, file=io.StringIO())
        console.print(diagram.to_rich(drawing))
        return console.export_text()

    laid_out = text(diagram.build(*args))
    assert text(diagram.design(*args)) == laid_out
    assert "lb-01 · 192.168.56.10" in laid_out and "DNS (NSD)" in laid_out
    assert "│ SQL: reads and writes" in laid_out and re.search(r"│ SQL: reads +│", laid_out)
    assert "SPOF · every write" in laid_out and "SPOF · the only DNS" in laid_out
    assert "virtual address 192.168.56.100: held by lb-01" in laid_out
