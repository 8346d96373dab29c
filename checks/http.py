"""How the user's computer reaches the site: HTTP to www.foobar.com, through the lab's DNS."""

from __future__ import annotations

from typing import TypedDict

from checks.base import Check, CheckError, failed, passed
from checks.dns import follow, resolve_www
from checks.lb import misrouted, unconfirmed
from lab.observe import probes


class BrowseObservation(TypedDict):
    received: dict[str, int | None]  # requests each web server's Nginx logged (None: cannot tell)
    url: str
    address: str  # the address www resolved to
    status: int
    html: bool
    served_by: list[str]  # every X-Served-By value of the answer
    web: list[str]
    hostnames: dict[str, str]  # web server → its own hostname
    domain: str


class BrowseWww(Check):
    id = "http.www"
    design = "http"
    section = "http"
    title = "A user's browser gets the site at http://www.foobar.com/"
    requirement = (
        "The server communicates with the user's computer through the HTTP protocol. "
        "The web server (Nginx) and the application server generate and serve HTTP "
        "responses."
    )
    points = 5
    hint = (
        "www must resolve to the load balancer, and HAProxy must pass requests for "
        "Host: www.foobar.com to the web servers."
    )
    needs = ("dns.www", "lb.haproxy")
    touches = ("balancer",)  # sends requests through the balancer

    def observe(self, lab) -> BrowseObservation:
        answer = resolve_www(lab)
        _, addresses, _ = follow(answer["records"], answer["name"])
        if not addresses:
            raise CheckError(f"{lab.site} does not resolve")
        web = lab.web_hosts()

        def marks(web_host):  # a host that cannot be read (down) is not this check's business
            try:
                return probes.log_marks(lab, web_host)
            except CheckError:
                return None

        before = lab.on_each(web, marks)
        page = lab.http(f"http://{addresses[0]}/")
        by = probes.served_by(page)
        hostnames, domain = probes.web_hostnames(lab), lab.topology.domain
        host = probes.served_by_host(by[0] if by else None, hostnames, web, domain)

        return {
            "received": probes.logged_by_each(lab, web, before, 1) if host else {},
            "url": f"http://{lab.site}/",
            "address": addresses[0],
            "status": page.status_code,
            "html": "<html" in page.text.lower(),
            "served_by": probes.served_by(page),
            "web": lab.web_hosts(),
            "hostnames": hostnames,
            "domain": domain,
        }

    def judge(self, o: BrowseObservation):
        if o["status"] != 200 or not o["html"]:
            return failed(
                f"{o['url']} ({o['address']}) answered HTTP {o['status']}"
                + ("" if o["html"] else " without a page")
            )
        by = o["served_by"][0] if o["served_by"] else None
        host = probes.served_by_host(by, o.get("hostnames", {}), o["web"], o.get("domain", ""))
        if host is None:
            return failed(f"{o['url']}: a page, but not from a web server (X-Served-By {by})")
        problem = misrouted([host], o["received"], None)
        if problem:
            return failed(f"{o['url']}: {problem}")
        return passed(
            f"{o['url']} → {o['address']}: HTTP 200, a page served by {by}"
            + unconfirmed({host: o["received"].get(host)} if o["received"] else {})
        )
