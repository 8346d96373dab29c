"""Domain: the lab's DNS answers www.foobar.com with the load balancer's address."""

from __future__ import annotations

import secrets
from typing import TypedDict

import dns.flags
import dns.rcode
import dns.rdatatype

from checks.base import Check, failed, passed
from lab.observe.live import TOKEN_PREFIX as TOKEN

MAX_CHAIN = 16  # CNAMEs followed at most (resolvers follow about as many)

Record = tuple[str, str, str]  # (name, type, value)


class Answer(TypedDict):
    """One DNS answer (ask())."""

    rcode: str
    authoritative: bool
    records: list[Record]


class WwwAnswer(Answer):
    """www's records at the lab's DNS, CNAMEs followed (resolve_www())."""

    server: str
    name: str


class WwwObservation(WwwAnswer):
    any_name: list[Record]  # the records of a random name under the domain (a wildcard's)
    lb: str
    below_www: Answer | None  # a random name below www, asked when a wildcard answers


def answer_records(message) -> list[Record]:
    """(name, type, value) of each record in a DNS answer section."""
    records = []
    for rrset in message.answer:
        for record in rrset:
            records.append(
                (rrset.name.to_text(), dns.rdatatype.to_text(rrset.rdtype), record.to_text())
            )
    return records


def follow(records: list[Record], name: str) -> tuple[list[str], list[str], str]:
    """Walk CNAMEs from name through records: (chain, addresses at its end, last name)."""
    by_name: dict[str, list[tuple[str, str]]] = {}
    for owner, rtype, value in records:
        by_name.setdefault(owner.lower(), []).append((rtype, value))
    chain, seen = [], set()
    for _ in range(MAX_CHAIN + 1):
        entries = by_name.get(name.lower(), [])
        addresses = [v for t, v in entries if t == "A"]
        cnames = [v for t, v in entries if t == "CNAME"]
        if addresses or not cnames or name.lower() in seen:
            return chain, addresses, name
        seen.add(name.lower())
        chain.append(f"{name} CNAME {cnames[0]}")
        name = cnames[0]
    return chain, [], name


def ask(lab, server: str, name: str) -> Answer:
    """One non-recursive question to server, as plain data."""
    reply = lab.dns_query(server, name, "A")
    return {
        "rcode": dns.rcode.to_text(reply.rcode()),
        "authoritative": bool(reply.flags & dns.flags.AA),
        "records": answer_records(reply),
    }


def resolve_www(lab) -> WwwAnswer:
    """www's records at the lab's DNS, following CNAMEs that leave the first answer."""
    server, name = lab.address("dns"), f"www.{lab.topology.domain}."
    first = ask(lab, server, name)
    records = list(first["records"])
    for _ in range(MAX_CHAIN):
        chain, addresses, end = follow(records, name)
        if addresses or not chain or len(chain) > MAX_CHAIN:
            break
        more = ask(lab, server, end)["records"]
        if not more:
            break
        records += more
    return {**first, "server": server, "name": name, "records": records}


class WwwRecord(Check):
    id = "dns.www"
    design = "domain"
    section = "domain"
    title = "www.foobar.com resolves to the load balancer, with the right record type"
    requirement = (
        "1 Domain Name (foobar.com) with a www record: Allows users to access the "
        "website via www.foobar.com; the www record points to the server IP."
    )
    points = 5
    touches = ()
    hint = (
        "Serve the zone from the lab's DNS on the load balancer: `www` as an A record to "
        "its address, or a CNAME to a name that has one. A CNAME cannot hold an address."
    )

    def observe(self, lab) -> WwwObservation:
        o = resolve_www(lab)
        probe = f"{TOKEN}{secrets.token_hex(4)}.{lab.topology.domain}."
        o["any_name"] = ask(lab, o["server"], probe)["records"]
        o["lb"] = lab.address("lb")
        o["below_www"] = None
        if o["any_name"]:  # a wildcard answers every name: is there a www of its own?
            # A wildcard answers for a name below www only while www does not exist (RFC 4592):
            # the server that loaded the zone says so itself, whatever files lie beside it.
            below = f"{TOKEN}{secrets.token_hex(4)}.www.{lab.topology.domain}."
            o["below_www"] = ask(lab, o["server"], below)
        return o

    def judge(self, o: WwwObservation):
        if o["rcode"] != "NOERROR" or not o["records"]:
            return failed(f"{o['server']} answered {o['rcode']} with no records for {o['name']}")
        chain, addresses, end = follow(o["records"], o["name"])
        if len(chain) > MAX_CHAIN:
            return failed(f"{o['name']}: more than {MAX_CHAIN} CNAMEs in a row")
        if not addresses:
            return failed(
                f"{' → '.join(chain) or o['name']}: no A record at the end "
                f"(records: {o['records']})"
            )
        chain.append(f"{end} A {', '.join(addresses)}")
        if addresses != [o["lb"]]:
            return failed(f"{' → '.join(chain)}: not the load balancer's address {o['lb']}")
        if not o["authoritative"]:
            return failed(
                f"{o['server']} answered, but not authoritatively: it is not the "
                "domain's own server"
            )
        wildcard = sorted(v for _, t, v in o["any_name"] if t == "A")
        below = o.get("below_www") or {}
        of_its_own = below.get("rcode") in ("NXDOMAIN", "NOERROR") and not below.get("records")
        if wildcard and wildcard == sorted(addresses) and not of_its_own:
            return failed(
                f"any name under the domain resolves to {', '.join(wildcard)} (a wildcard "
                "record), names below www too: www has no record of its own in the zone "
                f"{o['server']} serves, and needs one",
                "Add a `www` record to the zone; a `*` record answers for every name.",
            )
        return passed(f"{' → '.join(chain)} (authoritative answer from {o['server']})")
