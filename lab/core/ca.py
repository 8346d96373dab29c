"""The lab's own certificate authority: made once per lab, kept in its state (0600).

It may only vouch for the lab's domain and subnet (name constraints), so a browser that trusts
it trusts nothing else. It signs the reference's certificate and the students' requests.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from lab.core.errors import LabError
from lab.core.state import LabState, write_private

CA_DAYS = 3650
SITE_DAYS = 365
RENEW_BEFORE = datetime.timedelta(days=30)  # a kept site certificate closer to its end is renewed
MAX_DAYS = 825  # the longest validity a leaf may ask for (what Apple's clients still accept)
BACKDATE = datetime.timedelta(minutes=5)  # tolerate a host clock slightly behind this machine's


@dataclass(frozen=True)
class Authority:
    """The CA's certificate and private key, as PEM."""

    cert_pem: bytes
    key_pem: bytes

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem)

    @property
    def key(self) -> ec.EllipticCurvePrivateKey:
        return serialization.load_pem_private_key(self.key_pem, password=None)


@dataclass(frozen=True)
class Files:
    """Where a lab keeps its CA and the site certificate it issued for the reference build."""

    dir: Path

    @classmethod
    def of(cls, state: LabState) -> Files:
        return cls(state.dir / "ca")

    @property
    def cert(self) -> Path:
        return self.dir / "ca.crt"

    @property
    def key(self) -> Path:
        return self.dir / "ca.key"

    @property
    def site_cert(self) -> Path:
        return self.dir / "site.crt"

    @property
    def site_key(self) -> Path:
        return self.dir / "site.key"


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def make_authority(
    lab_name: str, domain: str, subnet: ipaddress.IPv4Network, when: datetime.datetime
) -> Authority:
    """A new CA for one lab, allowed to sign only names under domain and addresses in subnet."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "webstack lab"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"webstack lab CA ({lab_name})"),
        ]
    )
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(when - BACKDATE)
        .not_valid_after(when + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            key_usage(signs_certificates=True),
            critical=True,
        )
        .add_extension(
            x509.NameConstraints(
                permitted_subtrees=[x509.DNSName(domain), x509.IPAddress(subnet)],
                excluded_subtrees=None,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Authority(cert.public_bytes(serialization.Encoding.PEM), _pem(key))


def issue(
    authority: Authority,
    names: list[str],
    when: datetime.datetime,
    days: int = SITE_DAYS,
    public_key=None,
    subject: x509.Name | None = None,
) -> tuple[bytes, bytes]:
    """A server certificate for names (DNS names or addresses) signed by authority, and its new
    private key as PEM (empty when public_key was given: the holder keeps the private key)."""
    key = None if public_key is not None else ec.generate_private_key(ec.SECP256R1())
    public = public_key if public_key is not None else key.public_key()
    ca = authority.certificate
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject or x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(when - BACKDATE)
        .not_valid_after(when + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([_general_name(n) for n in names]), False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            key_usage(key_encipherment=not isinstance(public, ec.EllipticCurvePublicKey)),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.public_key()), critical=False
        )
        .sign(authority.key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _pem(key) if key else b""


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def names_of(cert: x509.Certificate) -> list[str]:
    """The DNS names and addresses in a certificate's subjectAltName (what clients match)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [*san.get_values_for_type(x509.DNSName)] + [
        str(a) for a in san.get_values_for_type(x509.IPAddress)
    ]


def signed_by(cert: x509.Certificate, authority: Authority) -> bool:
    """Whether authority's key signed cert."""
    try:
        cert.verify_directly_issued_by(authority.certificate)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def outside(names: list[str], domain: str, subnet: ipaddress.IPv4Network) -> list[str]:
    """The names the lab CA may not vouch for: not under domain, not an address in subnet."""
    wrong = []
    for name in names:
        try:
            if ipaddress.ip_address(name) not in subnet:
                wrong.append(name)
        except ValueError:
            bare = name.lower().rstrip(".").removeprefix("*.")
            if bare != domain and not bare.endswith("." + domain):
                wrong.append(name)
    return wrong


def sign_request(
    authority: Authority,
    csr_pem: bytes,
    domain: str,
    subnet: ipaddress.IPv4Network,
    when: datetime.datetime,
    days: int = SITE_DAYS,
) -> bytes:
    """A certificate for a student's signing request, with the names the request asks for."""
    try:
        csr = x509.load_pem_x509_csr(csr_pem)
    except ValueError:
        raise LabError(
            "that is not a PEM certificate signing request (-----BEGIN CERTIFICATE REQUEST-----)",
            hint="make one with `openssl req -new ...` (see `lab exercise 09`)",
        ) from None
    if not csr.is_signature_valid:
        raise LabError("the signing request's signature does not match its key")
    if not 1 <= days <= MAX_DAYS:
        raise LabError(f"--days {days}: give 1 to {MAX_DAYS} days")
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [*san.get_values_for_type(x509.DNSName)] + [
            str(a) for a in san.get_values_for_type(x509.IPAddress)
        ]
    except x509.ExtensionNotFound:
        names = [a.value for a in csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    names = [str(n) for n in names]
    if not names:
        raise LabError(
            "the signing request names no host",
            hint=f'add -addext "subjectAltName=DNS:{domain},DNS:www.{domain}" to openssl req',
        )
    wrong = outside(names, domain, subnet)
    if wrong:
        raise LabError(
            f"the lab CA signs only names under {domain} and addresses in {subnet}, "
            f"not {', '.join(wrong)}"
        )
    cert_pem, _ = issue(authority, names, when, days, csr.public_key(), csr.subject)
    return cert_pem


def load(state: LabState) -> Authority | None:
    """The lab's CA, or None when it has none yet."""
    files = Files.of(state)
    if not (files.cert.is_file() and files.key.is_file()):
        return None
    return Authority(files.cert.read_bytes(), files.key.read_bytes())


def ensure(state: LabState, domain: str, subnet: ipaddress.IPv4Network) -> tuple[Authority, bool]:
    """The lab's CA, made on first need; and whether it was made just now."""
    found = load(state)
    if found:
        return found, False
    authority = make_authority(state.name, domain, subnet, now())
    files = Files.of(state)
    write_private(files.key, authority.key_pem)
    write_private(files.cert, authority.cert_pem)
    return authority, True


def renewal_reason(
    cert: x509.Certificate, authority: Authority, names: list[str], when: datetime.datetime
) -> str:
    """Why a kept certificate must be issued again ('' when it is still good)."""
    if not signed_by(cert, authority):
        return "the lab CA did not sign it"
    if sorted(names_of(cert)) != sorted(names):
        return f"it names {', '.join(names_of(cert))}, not {', '.join(names)}"
    if cert.not_valid_after_utc - RENEW_BEFORE < when:
        return f"it ends on {cert.not_valid_after_utc:%Y-%m-%d}"
    return ""


def site_certificate(
    state: LabState, domain: str, subnet: ipaddress.IPv4Network
) -> tuple[bytes, bytes]:
    """The reference's certificate (PEM) and key for domain and www.domain: kept in the lab's
    state and issued again only when it no longer fits, so a second provisioning changes nothing."""
    authority, _ = ensure(state, domain, subnet)
    files = Files.of(state)
    names = [domain, f"www.{domain}"]
    if files.site_cert.is_file() and files.site_key.is_file():
        cert_pem = files.site_cert.read_bytes()
        if not renewal_reason(x509.load_pem_x509_certificate(cert_pem), authority, names, now()):
            return cert_pem, files.site_key.read_bytes()
    cert_pem, key_pem = issue(authority, names, now())
    write_private(files.site_key, key_pem)
    write_private(files.site_cert, cert_pem)
    return cert_pem, key_pem


def key_usage(signs_certificates: bool = False, key_encipherment: bool = False) -> x509.KeyUsage:
    """Digital signature, plus signing certificates (a CA) or key encipherment (an RSA leaf)."""
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=key_encipherment,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=signs_certificates,
        crl_sign=signs_certificates,
        encipher_only=False,
        decipher_only=False,
    )
