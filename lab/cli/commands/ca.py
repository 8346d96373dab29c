"""`lab ca`: the lab's certificate authority: where it is, how to trust it, signing requests."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.markup import escape

from lab.core import ca
from lab.core.errors import ExitCode, LabError
from lab.core.state import write_private

HELP = "the lab's certificate authority: where it is and how to trust it; `lab ca sign CSR`"
DESCRIPTION = (
    "Each lab has its own certificate authority, made on first need and kept in the lab's state "
    "(0600; `lab destroy` removes it). It may only vouch for the lab's domain and addresses. "
    "`lab ca` says where it is and how to make a browser or curl trust it; `lab ca --pem` prints "
    "the CA certificate; `lab ca sign CSR` signs a certificate signing request (a file, or - for "
    "standard input) and prints the certificate."
)
ORDER = 200  # its place in `lab --help`


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = DESCRIPTION
    parser.add_argument("action", nargs="?", choices=("sign",), help="sign a request")
    parser.add_argument("csr", nargs="?", metavar="CSR", help="sign: the request (- for stdin)")
    parser.add_argument("--pem", action="store_true", help="print the CA certificate (PEM)")
    parser.add_argument("--out", metavar="FILE", help="sign: write the certificate to FILE")
    parser.add_argument(
        "--days", type=int, default=ca.SITE_DAYS, help=f"sign: validity (default {ca.SITE_DAYS})"
    )


def run(lab) -> ExitCode:
    lab.require_up()
    topology = lab.topology
    authority, made = ca.ensure(lab.state, topology.domain, topology.subnet)
    if lab.args.action == "sign":
        return sign(lab, authority)
    if lab.args.csr:
        raise LabError(f"unexpected {lab.args.csr!r}", hint="`lab ca sign CSR` signs a request")
    if lab.args.pem:
        sys.stdout.write(authority.cert_pem.decode())
        return ExitCode.OK
    lab.console.print(
        trust_text(lab, ca.Files.of(lab.state).cert, authority, made), soft_wrap=True
    )  # commands stay whole, to copy
    return ExitCode.OK


def sign(lab, authority: ca.Authority) -> ExitCode:
    if not lab.args.csr:
        raise LabError("which request? `lab ca sign CSR` (a file, or - for standard input)")
    source = lab.args.csr
    try:
        csr = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
    except OSError as exc:
        raise LabError(f"cannot read {source}: {exc.strerror or exc}") from None
    topology = lab.topology
    cert_pem = ca.sign_request(
        authority, csr, topology.domain, topology.subnet, ca.now(), lab.args.days
    )
    cert = ca.x509.load_pem_x509_certificate(cert_pem)
    summary = (
        f"signed by the lab CA for {', '.join(ca.names_of(cert))}, "
        f"valid until {cert.not_valid_after_utc:%Y-%m-%d}"
    )
    if lab.args.out:
        try:
            write_private(Path(lab.args.out), cert_pem)
        except OSError as exc:
            raise LabError(f"cannot write {lab.args.out}: {exc.strerror or exc}") from None
        lab.console.print(f"[ok]✓[/] {escape(lab.args.out)}: {escape(summary)}")
    else:
        sys.stdout.write(cert_pem.decode())
        print(summary, file=sys.stderr)
    return ExitCode.OK


def trust_text(lab, path: Path, authority: ca.Authority, made: bool) -> str:
    """Where the CA is and how each browser, and curl, come to trust it (rich markup)."""
    cert = authority.certificate
    domain = lab.topology.domain
    lb = lab.topology.one_with_role("lb").address
    where = escape(str(path))
    when = "made just now" if made else f"made {cert.not_valid_before_utc:%Y-%m-%d}"
    return "\n".join(
        [
            f"[section]lab CA of {escape(lab.topology.name)}[/]: {where}",
            f"[muted]{when}, valid until {cert.not_valid_after_utc:%Y-%m-%d}; it may only vouch "
            f"for {escape(domain)} and its subdomains and {lab.topology.subnet}; "
            "`lab destroy` removes it (remove it from your browser then)[/]",
            "",
            "The file is readable by its owner only; give your browser a copy:",
            "  [host]lab ca --pem > lab-ca.crt[/]",
            "",
            "[section]Trust it[/] (then open https://www." + escape(domain) + "/ with "
            "[host]lab hosts[/] in /etc/hosts):",
            "  Firefox      Settings → Privacy & Security → Certificates → View Certificates → "
            "Authorities → Import… → lab-ca.crt, tick “Trust this CA to identify websites”",
            "  Chrome/Chromium (Linux)  Settings → Privacy and security → Security → Manage "
            "certificates → Authorities → Import, or",
            '               certutil -d sql:$HOME/.pki/nssdb -A -t "C,," -n "webstack lab CA" '
            "-i lab-ca.crt",
            "  macOS        sudo security add-trusted-cert -d -r trustRoot "
            "-k /Library/Keychains/System.keychain lab-ca.crt  (or Keychain Access → Always Trust)",
            "  Windows      certutil -addstore -user Root lab-ca.crt  (or open it → Install "
            "Certificate → Trusted Root Certification Authorities)",
            "",
            "[section]curl[/] (no /etc/hosts needed):",
            f"  curl --cacert {where} --resolve www.{escape(domain)}:443:{lb} "
            f"https://www.{escape(domain)}/",
            "",
            "[section]A certificate of your own[/]: make a key and a request on the load balancer, "
            "sign it here:",
            "  [host]lab ssh lb-01 -- cat site.csr | lab ca sign - > site.crt[/]  "
            "([muted]lab exercise 09[/])",
        ]
    )
