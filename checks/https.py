"""HTTPS on the load balancer: a certificate from the lab CA for both names, HTTP sent to HTTPS,
TLS 1.2 or newer only, HSTS, and the web servers still told who the client is and how it came."""

from __future__ import annotations

import contextlib
import re
import socket
import ssl
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import TypedDict

from cryptography import x509

from checks.base import Check, CheckError, failed, failed_all, passed
from lab.core import ca
from lab.core.wait import Deadline
from lab.observe import probes, visitor
from lab.observe.live import forwarded
from lab.remote.quoting import perl

PORT = 443
TIMEOUT = 5
OLD_VERSIONS = {"TLSv1": ssl.TLSVersion.TLSv1, "TLSv1.1": ssl.TLSVersion.TLSv1_1}
NEW_VERSIONS = {"TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}
CLIENT_CANNOT = ("NO_PROTOCOLS_AVAILABLE", "NO_CIPHERS_AVAILABLE")  # refused by this machine
BUILT_WITH = {"TLSv1": ssl.HAS_TLSv1, "TLSv1.1": ssl.HAS_TLSv1_1}
SNIFF_SECONDS = 8
DIRECT, RELAYED = "/", "/api/status"  # what https.forwarded asks from here, and from a lab host
HSTS_PATHS = ("/", "/api/status")


class CertificateFacts(TypedDict):
    """What a certificate says, and whether the lab CA signed it."""

    subject: str  # RFC 4514
    issuer: str
    names: list[str]  # subjectAltName: DNS names, then addresses
    common_names: list[str]
    not_before: str  # ISO 8601, UTC
    not_after: str
    self_signed: bool
    by_lab_ca: bool


class Endpoint(TypedDict):
    """The balancer's address, asked for one of the site's names (SNI)."""

    name: str
    address: str


class NoTLS(Endpoint):
    """No TLS handshake there: why."""

    error: str


class Served(Endpoint):
    """The certificate the balancer sent for the name, and the lab CA's verdict on it."""

    version: str | None  # the protocol agreed
    certificate: CertificateFacts
    verify_error: str  # "" when it verifies against the lab CA
    lab_ca: bool  # whether the lab has a CA to verify against


class TrustedObservation(TypedDict):
    now: str  # ISO 8601, UTC
    served: dict[str, Served | NoTLS]  # by site name


class RedirectAnswer(TypedDict):
    """What plain HTTP answered for one name (redirects not followed)."""

    path: str
    status: int
    location: str  # "" without a Location header


class Followed(TypedDict):
    """The answer at the end of the site's redirect, followed."""

    status: int
    url: str
    served_by: list[str]  # its X-Served-By values


class NotFollowed(TypedDict):
    error: str


class RedirectObservation(TypedDict):
    address: str
    answers: dict[str, RedirectAnswer]  # by the name asked for (Host)
    followed: Followed | NotFollowed
    web: list[str]
    hostnames: dict[str, str]  # each web server's own hostname, for those that answered
    domain: str


class ProtocolsObservation(TypedDict):
    address: str
    # by version: the version agreed, "refused: WHY" or "untested: WHY"
    tried: dict[str, str]


class HstsAnswer(TypedDict):
    status: int
    values: list[str]  # every Strict-Transport-Security header


class HstsObservation(TypedDict):
    site: str
    answers: dict[str, HstsAnswer]  # by path


class Relay(TypedDict):
    """The lab host whose requests to the balancer are relayed over its SSH connection."""

    host: str
    address: str
    sent: int
    error: str  # the first failure, "" when none


class ForwardedObservation(TypedDict):
    client: str  # this machine's address, as the balancer sees it
    sent: int  # requests sent from this machine
    received: dict[str, str]  # by web server: the head of the first one it received, or ""
    relay: Relay
    relayed: dict[str, str]  # by web server: the head of the first relayed one, or ""


# -- TLS from this machine --------------------------------------------------------------------
def handshake(address: str, name: str, cafile: str | None = None, version=None, lab=None) -> dict:
    """One TLS handshake with address:443 naming name (SNI): the protocol agreed and the
    certificate sent, or the error; verified against cafile when given (names aside).
    With lab, an address not reachable from this machine is reached through SSH."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    if cafile:
        context.load_verify_locations(cafile)
    else:
        context.verify_mode = ssl.CERT_NONE
    if version is not None:  # offer exactly this version, with every cipher it ever had
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = context.maximum_version = version
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
    reach = lab.reach(address, PORT) if lab is not None else contextlib.nullcontext((address, PORT))
    try:
        with (
            reach as target,
            socket.create_connection(target, timeout=TIMEOUT) as raw,
            context.wrap_socket(raw, server_hostname=name) as tls,
        ):
            return {"version": tls.version(), "der": tls.getpeercert(binary_form=True)}
    except ssl.SSLCertVerificationError as exc:
        return {"error": exc.verify_message or str(exc), "verify": True}
    except ssl.SSLError as exc:
        return {"error": f"{exc.reason or exc}", "verify": False}
    except OSError as exc:
        return {"error": exc.strerror or type(exc).__name__, "connect": True}
    except CheckError as exc:  # the SSH server behind address could not connect to it
        return {"error": getattr(exc, "reason", str(exc)), "connect": True}


def certificate_facts(der: bytes, authority: ca.Authority | None) -> CertificateFacts:
    """What a certificate says (names, issuer, validity) and whether the lab CA signed it."""
    cert = x509.load_der_x509_certificate(der)
    return {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "names": ca.names_of(cert),
        "common_names": [str(a.value) for a in cert.subject.get_attributes_for_oid(CN)],
        "not_before": cert.not_valid_before_utc.isoformat(),
        "not_after": cert.not_valid_after_utc.isoformat(),
        "self_signed": cert.issuer == cert.subject,
        "by_lab_ca": bool(authority) and ca.signed_by(cert, authority),
    }


CN = x509.NameOID.COMMON_NAME


def site_names(lab) -> list[str]:
    return [lab.topology.domain, lab.site]


def lab_authority(lab) -> tuple[str | None, ca.Authority | None]:
    path = lab.lab_ca()
    if not path:
        return None, None
    with open(path, "rb") as handle:
        return path, ca.Authority(handle.read(), b"")


def served_certificate(lab, name: str) -> Served | NoTLS:
    """The certificate the load balancer sends for name, and the lab CA's verdict on it."""

    def make() -> Served | NoTLS:
        path, authority = lab_authority(lab)
        address = lab.address("lb")
        seen = handshake(address, name, lab=lab)
        if "der" not in seen:
            return {"name": name, "address": address, "error": seen["error"]}
        checked = handshake(address, name, path, lab=lab) if path else {"error": "no lab CA"}
        return {
            "name": name,
            "address": address,
            "version": seen["version"],
            "certificate": certificate_facts(seen["der"], authority),
            "verify_error": checked.get("error", ""),
            "lab_ca": bool(path),
        }

    return lab.memo(("tls", name), make)


def covers(pattern: str, name: str) -> bool:
    """Whether a certificate name (maybe a wildcard of one label) covers a host name."""
    pattern, name = pattern.lower().rstrip("."), name.lower().rstrip(".")
    if pattern.startswith("*."):
        head, _, rest = name.partition(".")
        return bool(head) and rest == pattern[2:]
    return pattern == name


def _when(text: str) -> str:
    return text[:10]


class Trusted(Check):
    id = "https.trusted"
    section = "https"
    design = "https"
    title = "The site's certificates are signed by the lab CA and valid today"
    requirement = (
        "HTTPS: the traffic between users and the site is encrypted, with a certificate a "
        "browser that trusts the lab CA accepts (the one served for each of the site's names)."
    )
    points = 5
    hint = (
        "Serve a certificate the lab CA signed (`lab ca sign CSR`), not expired, on port 443 "
        "of the load balancer: `bind :443 ssl crt /etc/haproxy/certs/site.pem`."
    )

    def observe(self, lab) -> TrustedObservation:
        served = {name: served_certificate(lab, name) for name in site_names(lab)}
        return {"now": ca.now().isoformat(), "served": served}

    def judge(self, o: TrustedObservation):
        served = o["served"]
        if not any(s.get("lab_ca") for s in served.values() if "error" not in s):
            answering = [s for s in served.values() if "error" not in s]
            if answering:
                return failed(
                    f"{answering[0]['address']}:{PORT} answers TLS, but the lab has no CA to "
                    "check it against",
                    "Run `lab ca` (it makes the lab CA), then have it sign the site's certificate.",
                )
        problems, seen, hint = [], [], None
        for s in served.values():
            problem, fix = trust_problem(s, o["now"])
            if problem:
                problems.append(problem)
                hint = hint or fix
            else:
                cert = s["certificate"]
                seen.append(
                    f"{s['address']}:{PORT} ({s['name']}): {cert['subject']}, {issued_by(cert)}, "
                    f"verifies against the lab CA, valid until {_when(cert['not_after'])} "
                    f"({s['version']})"
                )
        if problems:
            return failed_all(problems, hint)
        return passed("; ".join(seen))


def issued_by(cert: CertificateFacts) -> str:
    return f"issued by {cert['issuer']}" + (" (self-signed)" if cert["self_signed"] else "")


def trust_problem(served: Served | NoTLS, now: str) -> tuple[str, str | None]:
    """Why a browser trusting the lab CA would warn about the certificate served for one name
    ('' when it would not), and a hint when there is a specific one."""
    where = f"{served['address']}:{PORT} ({served['name']})"
    if "error" in served:
        return f"{where}: no TLS: {served['error']}", None
    cert = served["certificate"]
    if not cert["by_lab_ca"]:
        return (
            f"{where}: {cert['subject']} is {issued_by(cert)}, not by the lab CA: browsers that "
            "trust the lab CA warn",
            None,
        )
    if cert["not_after"] < now:
        return (
            f"{where}: the certificate expired on {_when(cert['not_after'])}",
            "Issue a new certificate (`lab ca sign CSR`) and reload HAProxy.",
        )
    if cert["not_before"] > now:
        return f"{where}: the certificate is valid only from {_when(cert['not_before'])}", None
    if served["verify_error"]:
        return f"{where}: does not verify against the lab CA: {served['verify_error']}", None
    return "", None


class Names(Check):
    id = "https.names"
    section = "https"
    design = "https"
    title = "The certificate names both foobar.com and www.foobar.com"
    requirement = "A certificate for foobar.com and www.foobar.com (subjectAltName)."
    points = 5
    hint = (
        "Put both names in the certificate's subjectAltName: "
        '`-addext "subjectAltName=DNS:foobar.com,DNS:www.foobar.com"` in `openssl req`.'
    )

    def observe(self, lab) -> dict[str, Served | NoTLS]:
        return {name: served_certificate(lab, name) for name in site_names(lab)}

    def judge(self, o: dict[str, Served | NoTLS]):
        problems, seen = [], []
        for name, served in o.items():
            if "error" in served:
                problems.append(f"{name}: no TLS on {served['address']}:{PORT}: {served['error']}")
                continue
            cert = served["certificate"]
            if any(covers(pattern, name) for pattern in cert["names"]):
                seen.append(name)
            elif name in cert["common_names"]:
                problems.append(
                    f"{name} is only the certificate's common name (CN), which browsers ignore: "
                    f"subjectAltName holds {', '.join(cert['names']) or 'nothing'}"
                )
            else:
                problems.append(
                    f"the certificate sent for {name} names {', '.join(cert['names']) or 'nothing'}"
                    f" (subject {cert['subject']}): {name} is not among them"
                )
        if problems:
            return failed_all(problems)
        return passed(f"the certificate sent for each covers it: {', '.join(seen)}")


class Redirect(Check):
    id = "https.redirect"
    section = "https"
    design = "https-redirect"
    title = "Plain HTTP answers 301 to the same address over HTTPS"
    requirement = "Port 80 answers 301 to https."
    points = 5
    hint = (
        "Redirect every plain HTTP request, keeping host and path: in HAProxy's frontend "
        "`http-request redirect scheme https code 301 unless { ssl_fc }`."
    )

    def observe(self, lab) -> RedirectObservation:
        lb = lab.address("lb")
        asks = {lab.site: "/", lab.topology.domain: "/api/status"}
        answers: dict[str, RedirectAnswer] = {}
        for host, path in asks.items():
            reply = lab.http(f"http://{lb}{path}", headers={"Host": host}, follow=False)
            answers[host] = {
                "path": path,
                "status": reply.status_code,
                "location": reply.headers.get("Location", ""),
            }
        followed: Followed | NotFollowed
        try:
            final = lab.http(f"http://{lb}{asks[lab.site]}", verify=False)
            served_by = probes.served_by(final)
            followed = {"status": final.status_code, "url": final.url, "served_by": served_by}
        except CheckError as exc:
            followed = {"error": str(exc)}
        return {
            "address": lb,
            "answers": answers,
            "followed": followed,
            "web": lab.web_hosts(),
            "hostnames": probes.web_hostnames(lab),
            "domain": lab.topology.domain,
        }

    def judge(self, o: RedirectObservation):
        problems, seen = [], []
        for host, a in o["answers"].items():
            want = f"https://{host}{a['path']}"
            asked = f"http://{host}{a['path']}"
            if a["status"] not in (301, 308):
                problems.append(
                    f"{asked} answered HTTP {a['status']}"
                    + (f" to {a['location']}" if a["location"] else "")
                    + ", not 301 to https"
                )
            elif a["location"] not in (want, f"https://{host}:{PORT}{a['path']}"):
                problems.append(
                    f"{asked} answered {a['status']} to {a['location'] or 'nowhere'}, not {want}"
                )
            else:
                seen.append(f"{asked} → {a['status']} {a['location']}")
        if problems:
            return failed_all(problems)
        f = o["followed"]
        if "error" in f:
            return failed(f"the redirect leads nowhere: {f['error']}")
        by = f["served_by"][0] if f["served_by"] else None
        host = probes.served_by_host(by, o["hostnames"], o["web"], o.get("domain", ""))
        if f["status"] != 200 or host is None:
            return failed(
                f"following the redirect: HTTP {f['status']} from {by or 'no web server'}"
            )
        return passed("; ".join(seen) + f"; then HTTPS: HTTP 200 from {by}")


class Protocols(Check):
    id = "https.protocols"
    section = "https"
    design = "https"
    title = "Only TLS 1.2 and newer: TLS 1.0 and 1.1 handshakes are refused"
    requirement = (
        "TLS 1.2+ only. (TLS 1.0 and 1.1 must be seen refused: when the grading machine's "
        "OpenSSL cannot offer them, the check fails as untested rather than pass unseen.)"
    )
    points = 5
    hint = "Refuse the old protocols on the bind line: `bind :443 ssl crt ... ssl-min-ver TLSv1.2`."

    def observe(self, lab) -> ProtocolsObservation:
        lb = lab.address("lb")
        tried: dict[str, str] = {}
        for label, version in {**OLD_VERSIONS, **NEW_VERSIONS}.items():
            if not BUILT_WITH.get(label, True):
                tried[label] = "untested: this machine's OpenSSL was built without it"
                continue
            outcome = handshake(lb, lab.site, version=version, lab=lab)
            error = outcome.get("error", "")
            if any(w in error for w in CLIENT_CANNOT):
                tried[label] = f"untested: this machine's OpenSSL would not offer it ({error})"
            else:
                tried[label] = outcome.get("version") or f"refused: {error}"
        return {"address": lb, "tried": tried}

    def judge(self, o: ProtocolsObservation):
        tried = o["tried"]
        untested = [v for v in OLD_VERSIONS if untested_here(tried[v])]
        accepted = [
            v for v in OLD_VERSIONS if v not in untested and not tried[v].startswith("refused")
        ]
        modern = [v for v in NEW_VERSIONS if not tried[v].startswith(("refused", "untested"))]
        where = f"{o['address']}:{PORT}"
        if accepted:
            return failed(f"{where} accepts {', '.join(accepted)}: old, broken protocols")
        if not modern:
            return failed(
                f"{where} refuses TLS 1.2 and 1.3 too: {tried['TLSv1.2']}",
                "Serve HTTPS on port 443 of the load balancer (TLS 1.2 at least).",
            )
        if untested:
            return failed(
                f"{where}: {' and '.join(modern)} accepted; {', '.join(untested)} untested: "
                "this machine's OpenSSL cannot offer it, so a refusal was not seen",
                "Grade from a machine whose OpenSSL still offers TLS 1.0 and 1.1 "
                "(`openssl s_client -tls1 -connect ADDRESS:443` tells).",
            )
        return passed(
            f"{where}: {' and '.join(modern)} accepted; {' and '.join(OLD_VERSIONS)} refused"
        )


def untested_here(outcome: str) -> bool:
    """Whether a handshake outcome says this machine could not even offer the version."""
    return outcome.startswith("untested") or any(w in outcome for w in CLIENT_CANNOT)


MAX_AGE = re.compile(r"(?:^|;)\s*max-age\s*=\s*\"?(\d+)\"?\s*(?:;|$)", re.IGNORECASE)


class Hsts(Check):
    id = "https.hsts"
    section = "https"
    design = "hsts"
    title = "HTTPS answers carry HSTS (Strict-Transport-Security with a max-age)"
    requirement = "HSTS."
    points = 5
    hint = (
        "Add the header to every HTTPS answer: in HAProxy's frontend "
        '`http-response set-header Strict-Transport-Security "max-age=31536000" if { ssl_fc }`.'
    )

    def observe(self, lab) -> HstsObservation:
        lb = lab.address("lb")
        found: dict[str, HstsAnswer] = {}
        for path in HSTS_PATHS:
            reply = lab.http(f"https://{lb}{path}", verify=False)
            values = reply.raw.headers.getlist("Strict-Transport-Security") if reply.raw else []
            found[path] = {"status": reply.status_code, "values": values}
        return {"site": lab.site, "answers": found}

    def judge(self, o: HstsObservation):
        problems, seen = [], []
        for path, a in o["answers"].items():
            url = f"https://{o['site']}{path}"
            if not a["values"]:
                problems.append(f"{url} (HTTP {a['status']}) has no Strict-Transport-Security")
                continue
            match = MAX_AGE.search(a["values"][0])
            if len(a["values"]) > 1:
                problems.append(f"{url} sends Strict-Transport-Security {len(a['values'])} times")
            elif not match:
                problems.append(
                    f"{url}: Strict-Transport-Security {a['values'][0]!r} has no max-age"
                )
            elif int(match.group(1)) == 0:
                problems.append(f"{url}: max-age=0 tells browsers to forget HTTPS")
            else:
                seen.append(f"{url}: {a['values'][0]}")
        if problems:
            return failed_all(problems)
        return passed("; ".join(seen))


# -- what the web servers receive -------------------------------------------------------------
# Reads IPv4 packets (AF_PACKET, cooked) on a web server until, for each token, one from a load
# balancer carried it and the common part; prints "INDEX HEX" for the first of each. It sees the
# request as it arrives, whatever Nginx logs.
_SNIFFER = (
    "$| = 1; alarm $ARGV[2]; my @tokens = map { pack('H*', $_) } split /,/, $ARGV[0];"
    " my %src = map { pack('H*', $_) => 1 } split /,/, $ARGV[1]; my $all = pack('H*', $ARGV[3]);"
    ' socket(my $s, 17, 2, 0x0008) or die "packet socket: $!\\n"; my %seen;'
    " while (keys %seen < @tokens) { recv($s, my $p, 65535, 0) or next;"
    " next unless $src{substr($p, 12, 4)} && index($p, $all) >= 0; for my $i (0 .. $#tokens) {"
    " next if $seen{$i} || index($p, $tokens[$i]) < 0; $seen{$i} = 1;"
    ' print "$i ", unpack(\'H*\', $p), "\\n" } }'
)


def sniff(lab, host: str, tokens: list[str], sources: list[str], common: str = "") -> list[str]:
    """For each token, the first IPv4 packet from sources that host receives carrying it and
    common (hex), or ''."""
    hexed = ",".join(socket.inet_aton(a).hex() for a in sources)
    wanted = ",".join(t.encode().hex() for t in tokens)
    command = f"{perl(_SNIFFER)} {wanted} {hexed} {SNIFF_SECONDS} {common.encode().hex()}"
    output = lab.sh(host, command, sudo=True, check=False, timeout=SNIFF_SECONDS + 5)
    found = [""] * len(tokens)
    for line in output.splitlines():
        index, _, packet = line.strip().partition(" ")
        if index.isdigit() and int(index) < len(tokens):
            found[int(index)] = packet
    return found


def request_head(packet_hex: str) -> str:
    """The HTTP request head inside a captured IPv4/TCP packet ('' if none)."""
    try:
        packet = bytes.fromhex(packet_hex)
    except ValueError:
        return ""
    if len(packet) < 20 or packet[0] >> 4 != 4 or packet[9] != socket.IPPROTO_TCP:
        return ""
    ip_length = (packet[0] & 0x0F) * 4
    tcp_length = (packet[ip_length + 12] >> 4) * 4
    payload = packet[ip_length + tcp_length :]
    head = payload.split(b"\r\n\r\n", 1)[0]
    return head.decode("latin-1")


def headers_of(head: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in head.split("\r\n")[1:]:
        name, sep, value = line.partition(":")
        if sep:
            found.setdefault(name.strip().lower(), []).append(value.strip())
    return found


def own_address(toward: str) -> str:
    """This machine's address as toward sees it (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect((toward, PORT))
        return probe.getsockname()[0]


class Forwarded(Check):
    id = "https.forwarded"
    section = "https"
    design = "https-forwarded"
    title = "The web servers see the client's address and that it came over HTTPS"
    requirement = (
        "The web servers still see the client's address (X-Forwarded-For / X-Forwarded-Proto)."
    )
    points = 5
    hint = (
        "Have HAProxy tell the web servers who asked and how: `option forwardfor` and "
        "`http-request set-header X-Forwarded-Proto https if { ssl_fc }`."
    )
    exclusive = True  # its requests are told from others' only by their paths

    def observe(self, lab) -> ForwardedObservation:
        lb = lab.address("lb")
        sources = [h.address for h in lab.topology.with_role("lb")]
        # what a visitor asks for: the page from this machine, the page's call to the
        # application from a lab host; told apart from other requests by the browser's
        # User-Agent (a health check has none), and from each other by the path
        tokens = [f"GET {DIRECT} HTTP/1.", f"GET {RELAYED} HTTP/1."]
        web = lab.web_hosts()
        relay: Relay = {"host": web[0], "address": lab.address(web[0]), "sent": 0, "error": ""}
        with contextlib.suppress(CheckError):
            lab.sh(relay["host"], "true")  # its SSH connection is open before the relay
        sent = 0
        with ThreadPoolExecutor(max_workers=len(web)) as pool:
            sniffers = {
                h: pool.submit(sniff, lab, h, tokens, sources, visitor.USER_AGENT) for h in web
            }
            time.sleep(0.5)  # the sniffers' SSH commands start
            deadline = Deadline(SNIFF_SECONDS - 1)
            while not deadline.passed and not all(s.done() for s in sniffers.values()):
                if sent % 3 == 2 and not relay["error"]:  # whatever the balancing, both kinds
                    relay_request(lab, relay, lb, RELAYED)  # reach each server
                else:
                    with contextlib.suppress(CheckError):
                        lab.http(f"https://{lb}{DIRECT}", verify=False, timeout=2)
                sent += 1
                time.sleep(0.3)
            packets = {h: s.result() for h, s in sniffers.items()}
        return {
            "client": own_address(lb),
            "sent": sent - relay["sent"],
            "received": {h: request_head(p[0]) for h, p in packets.items()},
            "relay": relay,
            "relayed": {h: request_head(p[1]) for h, p in packets.items()},
        }

    def judge(self, o: ForwardedObservation):
        problems, seen = [], []
        client = o["client"]
        for host, head in o["received"].items():
            if not head:
                problems.append(
                    f"{host} received none of {o['sent']} HTTPS requests as plain HTTP from the "
                    "load balancer"
                )
                continue
            h = headers_of(head)
            shown = forwarding_headers(h)
            if not names_client(h, client):
                problems.append(
                    f"{host} was not told the client's address {client} "
                    f"({shown or 'no X-Forwarded-For header'})"
                )
            elif not came_over_https(h):
                problems.append(
                    f"{host} was not told the request came over HTTPS ({shown}: no "
                    "X-Forwarded-Proto https)"
                )
            else:
                seen.append(f"{host} received {shown}")
        relay = o["relay"]
        source = f"{relay['host']} ({relay['address']})"
        relayed = {host: head for host, head in o["relayed"].items() if head}
        if not relayed:
            problems.append(
                f"no web server received any of {relay['sent']} HTTPS requests sent from {source}"
                + (f": {relay['error']}" if relay["error"] else "")
            )
        for host, head in relayed.items():
            h = headers_of(head)
            if names_client(h, relay["address"]):
                seen.append(f"a request from {source} reached {host} naming it")
            else:
                problems.append(
                    f"a request from {source} reached {host} with "
                    f"{forwarding_headers(h) or 'no X-Forwarded-For header'}: not that client's "
                    "address (a fixed header?)"
                )
        if problems:
            return failed_all(problems)
        return passed("; ".join(seen))


def relay_request(lab, relay: Relay, lb: str, path: str) -> None:
    """One HTTPS request to the balancer made by relay's host (over its SSH connection); the
    first failure is kept in relay["error"]."""
    try:
        with forwarded(lab.fleet[relay["host"]], lb, PORT, relay["host"]) as local:
            relay["sent"] += 1
            url = local.replace("http://", "https://", 1) + path
            lab.http(url, verify=False, timeout=2)
    except CheckError as exc:
        relay["error"] = str(exc)


def forwarding_headers(h: dict[str, list[str]]) -> str:
    return ", ".join(
        f"{n}: {'; '.join(h[n])}"
        for n in ("x-forwarded-for", "x-forwarded-proto", "forwarded")
        if n in h
    )


def names_client(h: dict[str, list[str]], client: str) -> bool:
    """Whether the forwarding headers of a request name client among its addresses."""
    xff = [a.strip() for v in h.get("x-forwarded-for", []) for a in v.split(",")]
    forwarded_for = ";".join(h.get("forwarded", [])).lower().replace('"', "")
    return (
        client in xff or re.search(rf"for={re.escape(client)}(?![\w.])", forwarded_for) is not None
    )


def came_over_https(h: dict[str, list[str]]) -> bool:
    proto = [v.lower() for v in h.get("x-forwarded-proto", [])]
    return proto[-1:] == ["https"] or "proto=https" in ";".join(h.get("forwarded", [])).lower()
