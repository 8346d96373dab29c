"""lab diagram: the SVG parses, names every host, and its colours follow the check results."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

from checks import CATALOGUE
from lab import diagram
from lab.render import make_console
from lab.topology import parse

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


def svg_of(statuses, extra_lb=False) -> ET.Element:
    drawing = diagram.build(topology(extra_lb), statuses, DNS, "test")
    return ET.fromstring(diagram.to_svg(drawing).split("?>", 1)[1])


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
    boxes = [b for b in drawing.boxes if b.kind == "lb"]
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
    assert element(unknown, "dns").get("data-status") == "unknown"
    assert stroke(element(unknown, "dns")) == diagram.COLOURS["unknown"][0]


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
