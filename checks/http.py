"""How the user's computer reaches the site: HTTP to www.foobar.com, through the lab's DNS."""

from checks.base import Check, CheckError, failed, passed


class BrowseWww(Check):
    id = "http.www"
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

    def observe(self, lab):
        domain = f"www.{lab.topology.domain}"
        reply = lab.dns_query(lab.address("dns"), domain + ".", "A")
        addresses = [r.to_text() for rrset in reply.answer for r in rrset if rrset.rdtype == 1]
        if not addresses:
            raise CheckError(f"{domain} does not resolve")
        page = lab.http(f"http://{addresses[0]}/", headers={"Host": domain})
        return {
            "url": f"http://{domain}/",
            "address": addresses[0],
            "status": page.status_code,
            "html": "<html" in page.text.lower(),
            "served_by": page.headers.get("X-Served-By"),
        }

    def judge(self, o):
        if o["status"] != 200 or not o["html"]:
            return failed(
                f"{o['url']} ({o['address']}) answered HTTP {o['status']}"
                + ("" if o["html"] else " without a page")
            )
        return passed(
            f"{o['url']} → {o['address']}: HTTP 200, a page served by "
            f"{o['served_by'] or 'a web server'}"
        )
