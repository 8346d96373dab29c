"""Domain: the lab's DNS answers www.foobar.com with the load balancer's address."""

import dns.flags
import dns.rcode
import dns.rdatatype

from checks.base import Check, failed, passed


def answer_records(message) -> list[tuple[str, str, str]]:
    """(name, type, value) of each record in a DNS answer section."""
    records = []
    for rrset in message.answer:
        for record in rrset:
            records.append(
                (rrset.name.to_text(), dns.rdatatype.to_text(rrset.rdtype), record.to_text())
            )
    return records


class WwwRecord(Check):
    id = "dns.www"
    section = "domain"
    title = "www.foobar.com resolves to the load balancer, with the right record type"
    requirement = (
        "1 Domain Name (foobar.com) with a www record: Allows users to access the "
        "website via www.foobar.com; the www record points to the server IP."
    )
    points = 5
    hint = (
        "Serve the zone from the lab's DNS on the load balancer: `www` as an A record to "
        "its address, or a CNAME to a name that has one. A CNAME cannot hold an address."
    )
    needs = ("servers.reachable",)

    def observe(self, lab):
        server, name = lab.address("dns"), f"www.{lab.topology.domain}."
        reply = lab.dns_query(server, name, "A")
        return {
            "server": server,
            "name": name,
            "lb": lab.address("lb"),
            "rcode": dns.rcode.to_text(reply.rcode()),
            "authoritative": bool(reply.flags & dns.flags.AA),
            "records": answer_records(reply),
        }

    def judge(self, o):
        if o["rcode"] != "NOERROR" or not o["records"]:
            return failed(f"{o['server']} answered {o['rcode']} with no records for {o['name']}")
        chain, name = [], o["name"]
        by_name = {}
        for owner, rtype, value in o["records"]:
            by_name.setdefault(owner.lower(), []).append((rtype, value))
        addresses = []
        for _ in range(5):  # follow at most a few CNAMEs
            entries = by_name.get(name.lower(), [])
            cnames = [v for t, v in entries if t == "CNAME"]
            addresses = [v for t, v in entries if t == "A"]
            if cnames and not addresses:
                chain.append(f"{name} CNAME {cnames[0]}")
                name = cnames[0]
                continue
            break
        if not addresses:
            return failed(
                f"{' → '.join(chain) or o['name']}: no A record at the end "
                f"(records: {o['records']})"
            )
        chain.append(f"{name} A {', '.join(addresses)}")
        if addresses != [o["lb"]]:
            return failed(f"{' → '.join(chain)}: not the load balancer's address {o['lb']}")
        if not o["authoritative"]:
            return failed(
                f"{o['server']} answered, but not authoritatively: it is not the "
                "domain's own server"
            )
        return passed(f"{' → '.join(chain)} (authoritative answer from {o['server']})")
