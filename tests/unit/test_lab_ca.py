"""The lab CA: what it may sign, the certificates it issues, and signing students' requests."""

from __future__ import annotations

import datetime
import ipaddress
import os
import stat
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from lab.core import ca
from lab.core.errors import LabError
from lab.core.state import LabState

SUBNET = ipaddress.ip_network("192.168.72.0/24")
NOW = datetime.datetime(2026, 11, 28, 12, 0, tzinfo=datetime.UTC)
NAMES = ["foobar.com", "www.foobar.com"]


@pytest.fixture(scope="module")
def authority():
    return ca.make_authority("t", "foobar.com", SUBNET, NOW)


def ext(cert, kind):
    return cert.extensions.get_extension_for_class(kind)


def test_the_ca_may_sign_only_the_lab_domain_and_subnet(authority):
    cert = authority.certificate
    assert ext(cert, x509.BasicConstraints).value.ca
    assert ext(cert, x509.BasicConstraints).value.path_length == 0
    assert ext(cert, x509.KeyUsage).value.key_cert_sign
    constraints = ext(cert, x509.NameConstraints)
    assert constraints.critical
    assert constraints.value.permitted_subtrees == [
        x509.DNSName("foobar.com"),
        x509.IPAddress(SUBNET),
    ]
    assert cert.not_valid_after_utc - NOW == datetime.timedelta(days=ca.CA_DAYS)


def test_a_site_certificate_names_both_hosts_for_servers_only(authority):
    cert_pem, key_pem = ca.issue(authority, NAMES, NOW)
    cert = x509.load_pem_x509_certificate(cert_pem)
    assert ca.names_of(cert) == NAMES
    assert ca.signed_by(cert, authority)
    assert not ext(cert, x509.BasicConstraints).value.ca
    usage = ext(cert, x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_cert_sign
    assert list(ext(cert, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert cert.not_valid_after_utc - NOW == datetime.timedelta(days=ca.SITE_DAYS)
    assert cert.not_valid_before_utc < NOW  # a host clock a little behind still accepts it
    key = serialization.load_pem_private_key(key_pem, None)
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()


def test_openssl_verifies_the_chain_and_refuses_names_outside_the_lab(authority, tmp_path):
    good, _ = ca.issue(authority, NAMES, ca.now())
    other, _ = ca.issue(authority, ["example.org"], ca.now())
    (tmp_path / "ca.pem").write_bytes(authority.cert_pem)
    (tmp_path / "good.pem").write_bytes(good)
    (tmp_path / "other.pem").write_bytes(other)

    def verify(name, *extra):
        return subprocess.run(
            ["openssl", "verify", "-CAfile", tmp_path / "ca.pem", *extra, tmp_path / name],
            capture_output=True,
            text=True,
        )

    assert verify("good.pem", "-verify_hostname", "www.foobar.com").returncode == 0
    refused = verify("other.pem")
    assert refused.returncode != 0 and "permitted subtree violation" in refused.stderr


def test_a_certificate_from_another_ca_is_not_signed_by_the_lab_ca(authority):
    other = ca.make_authority("other", "foobar.com", SUBNET, NOW)
    cert_pem, _ = ca.issue(other, NAMES, NOW)
    cert = x509.load_pem_x509_certificate(cert_pem)
    assert not ca.signed_by(cert, authority)
    assert ca.renewal_reason(cert, authority, NAMES, NOW) == "the lab CA did not sign it"


def test_renewal_only_when_the_kept_certificate_no_longer_fits(authority):
    cert = x509.load_pem_x509_certificate(ca.issue(authority, NAMES, NOW)[0])
    assert ca.renewal_reason(cert, authority, NAMES, NOW) == ""
    assert "names foobar.com" in ca.renewal_reason(cert, authority, ["foobar.com", "x"], NOW)
    late = NOW + datetime.timedelta(days=ca.SITE_DAYS - 10)
    assert "ends on" in ca.renewal_reason(cert, authority, NAMES, late)


def request(names=None, common_name="www.foobar.com", key=None):
    key = key or ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    )
    if names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
        )
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM), key


def test_a_students_request_is_signed_with_its_names_and_key(authority):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    csr, _ = request(NAMES, key=key)
    cert = x509.load_pem_x509_certificate(
        ca.sign_request(authority, csr, "foobar.com", SUBNET, NOW, days=90)
    )
    assert ca.names_of(cert) == NAMES
    assert cert.public_key().public_numbers() == key.public_key().public_numbers()
    assert cert.subject.rfc4514_string() == "CN=www.foobar.com"  # the request's own subject
    assert ext(cert, x509.KeyUsage).value.key_encipherment  # an RSA key may also encipher
    assert cert.not_valid_after_utc - NOW == datetime.timedelta(days=90)


def test_a_request_with_only_a_common_name_gets_it_as_its_subject_alt_name(authority):
    csr, _ = request(common_name="foobar.com")
    cert = x509.load_pem_x509_certificate(
        ca.sign_request(authority, csr, "foobar.com", SUBNET, NOW)
    )
    assert ca.names_of(cert) == ["foobar.com"]


@pytest.mark.parametrize(
    "csr, days, words",
    [
        (b"not a request", 365, "not a PEM certificate signing request"),
        (None, 365, "not www.google.com"),
        (None, 0, "--days 0"),
    ],
)
def test_requests_the_ca_refuses_say_why_in_one_line(authority, csr, days, words):
    csr = csr or request(["foobar.com", "www.google.com"])[0]
    with pytest.raises(LabError) as caught:
        ca.sign_request(authority, csr, "foobar.com", SUBNET, NOW, days)
    assert words in str(caught.value) and "\n" not in str(caught.value)


def test_outside_names_and_addresses():
    assert ca.outside(["foobar.com", "WWW.foobar.com.", "*.foobar.com"], "foobar.com", SUBNET) == []
    assert ca.outside(["notfoobar.com", "192.168.1.1", "192.168.72.9"], "foobar.com", SUBNET) == [
        "notfoobar.com",
        "192.168.1.1",
    ]


def test_the_ca_and_the_site_certificate_are_kept_private_and_reused(tmp_path):
    state = LabState("t", home=tmp_path)
    first = ca.site_certificate(state, "foobar.com", SUBNET)
    assert ca.site_certificate(state, "foobar.com", SUBNET) == first  # nothing changes
    files = ca.Files.of(state)
    for path in (files.cert, files.key, files.site_cert, files.site_key):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
    authority, made = ca.ensure(state, "foobar.com", SUBNET)
    assert not made and authority == ca.load(state)
    files.cert.unlink()  # a new CA: the kept certificate no longer chains to it
    files.key.unlink()
    assert ca.site_certificate(state, "foobar.com", SUBNET)[0] != first[0]
