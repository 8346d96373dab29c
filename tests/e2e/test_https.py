"""HTTPS on a live lab: the reference passes every https check and the base design still grades
105/105 behind the redirect; `lab ca` says how to trust the lab CA and signs a request made on
lb-01, which installed elsewhere with other ciphers passes too; each sabotage (an expired,
wrong-name or self-signed certificate, no redirect, TLS 1.0, no HSTS, no X-Forwarded-Proto,
a fixed X-Forwarded-For) fails its check."""

from __future__ import annotations

import base64
import datetime
import subprocess
from dataclasses import dataclass
from shlex import quote

import pytest
from cryptography import x509

from lab.core import ca
from lab.core.state import LabState
from tests.e2e.conftest import (
    LabRunner,
    assert_base_design_passes,
    by_id,
    changed_count,
    check_json,
    lab_with,
)

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("https")]
CFG = "/etc/haproxy/haproxy.cfg"
PEM = "/etc/haproxy/certs/site.pem"
SAVED = "/root/https-e2e"
MACHINE = "192.168.82.1"  # this machine on the lab's network
RELOAD = f"sudo haproxy -c -q -f {CFG} && sudo systemctl reload haproxy"


@pytest.fixture(scope="module")
def https_lab(tmp_path_factory):
    """The reference lab with HTTPS built (e2e-tls, 192.168.82.0/24), its files saved."""
    with lab_with(tmp_path_factory, "e2e-tls", 82, "https") as runner:
        remote(runner, f"sudo mkdir -p {SAVED} && sudo cp {CFG} {PEM} {SAVED}/")
        yield runner


def remote(lab: LabRunner, command: str) -> str:
    """command on lb-01 over the lab's own SSH config (as `lab ssh`, without its start-up)."""
    config = LabState(lab.name).ssh_config_file
    result = subprocess.run(
        ["ssh", "-F", str(config), "lb-01", command], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, f"{command[:80]}: {result.stderr}"
    return result.stdout


def restore(lab: LabRunner) -> None:
    back = f"sudo cp {SAVED}/haproxy.cfg {CFG} && sudo cp {SAVED}/site.pem {PEM}"
    remote(lab, f"{back} && {RELOAD}")


def test_reference_passes_and_the_base_design_still_grades(https_lab):
    lab = https_lab
    https = check_json(lab, "https")
    failures = [(c["id"], c["evidence"]) for c in https["checks"] if c["status"] != "pass"]
    assert (https["passed"], https["score"]) == (6, 30), failures
    base = assert_base_design_passes(lab)
    assert "HTTP 200" in by_id(base)["http.www"]["evidence"]  # after the 301, over HTTPS


def test_lab_ca_says_how_to_trust_it_and_refuses_bad_requests(https_lab, tmp_path):
    lab = https_lab
    state = LabState(lab.name)
    out = lab("ca").stdout
    path = str(ca.Files.of(state).cert)
    assert path in out and "Firefox" in out and "certutil" in out
    assert f"curl --cacert {path} --resolve www.foobar.com:443:{lab.address('lb-01')}" in out
    pem = lab("ca", "--pem").stdout.encode()
    assert x509.load_pem_x509_certificate(pem) == ca.load(state).certificate
    garbage = tmp_path / "garbage.csr"
    garbage.write_text("hello")
    refused = lab("ca", "sign", str(garbage), check=False)
    assert refused.returncode == 2 and "not a PEM certificate signing request" in refused.stderr
    assert "Traceback" not in refused.stderr
    missing = lab("ca", "sign", str(tmp_path / "nothing.csr"), check=False)
    assert missing.returncode == 2 and "cannot read" in missing.stderr


def test_a_students_own_certificate_elsewhere_with_other_ciphers_passes(https_lab, tmp_path):
    """The exercise's way: key and request on lb-01, signed by `lab ca sign`, another file."""
    lab = https_lab
    remote(
        lab,
        "openssl req -new -newkey rsa:2048 -nodes -keyout own.key -out own.csr "
        "-subj /CN=www.foobar.com "
        "-addext subjectAltName=DNS:foobar.com,DNS:www.foobar.com 2>/dev/null",
    )
    csr = tmp_path / "own.csr"
    csr.write_text(remote(lab, "cat own.csr"))
    signed = lab("ca", "sign", str(csr), "--out", str(tmp_path / "own.crt"))
    assert "signed by the lab CA for foobar.com, www.foobar.com" in " ".join(signed.stdout.split())
    encoded = base64.b64encode((tmp_path / "own.crt").read_bytes()).decode()
    try:
        remote(
            lab,
            f"echo {encoded} | base64 -d > own.crt && sudo mkdir -p /etc/haproxy/tls && "
            "cat own.crt own.key | sudo tee /etc/haproxy/tls/mine.pem >/dev/null && "
            f"sudo chmod 600 /etc/haproxy/tls/mine.pem && sudo sed -i 's|ssl crt {PEM} "
            "ssl-min-ver TLSv1.2|ssl crt /etc/haproxy/tls/mine.pem ssl-min-ver TLSv1.2 "
            f"ciphers ECDHE+AESGCM:ECDHE+CHACHA20|' {CFG} && grep -q mine.pem {CFG} && {RELOAD}",
        )
        report = check_json(lab, "https")
        failures = [(c["id"], c["evidence"]) for c in report["checks"] if c["status"] != "pass"]
        assert report["passed"] == 6, failures
        assert "CN=www.foobar.com" in by_id(report)["https.trusted"]["evidence"]
    finally:
        restore(lab)


def upload(pem: bytes) -> str:
    encoded = base64.b64encode(pem).decode()
    return f"echo {encoded} | base64 -d | sudo tee {PEM} >/dev/null && {RELOAD}"


def issued(lab_name: str, names: list[str], days_ago: int = 0, days: int = 365) -> str:
    """Shell installing a certificate from the lab's own CA (with its key) as HAProxy's PEM."""
    authority = ca.load(LabState(lab_name))
    when = ca.now() - datetime.timedelta(days=days_ago)
    cert, key = ca.issue(authority, names, when, days)
    return upload(cert + key)


SELF_SIGNED = (
    "openssl req -x509 -newkey rsa:2048 -nodes -keyout ss.key -out ss.crt -days 30 "
    "-subj /CN=www.foobar.com -addext subjectAltName=DNS:foobar.com,DNS:www.foobar.com "
    f"2>/dev/null && cat ss.crt ss.key | sudo tee {PEM} >/dev/null && {RELOAD}"
)


@dataclass(frozen=True)
class Sabotage:
    name: str
    breaks: object  # shell on lb-01, or a function of the lab's name giving it; sed for CONFIG
    fails: str
    evidence: str


CERTIFICATES = [
    Sabotage(
        "expired",
        lambda name: issued(name, ["foobar.com", "www.foobar.com"], days_ago=400, days=30),
        "https.trusted",
        "the certificate expired on",
    ),
    Sabotage(
        "wrong-name",
        lambda name: issued(name, ["foobar.com"]),
        "https.names",
        "www.foobar.com is not among them",
    ),
    Sabotage("self-signed", SELF_SIGNED, "https.trusted", "(self-signed), not by the lab CA"),
]
# Each breaks one line of haproxy.cfg; they are made together (one check run: CI time) and
# each must fail its own check only.
CONFIG = [
    Sabotage(
        "no-redirect",
        "/redirect scheme https/d",
        "https.redirect",
        "answered HTTP 200, not 301 to https",
    ),
    Sabotage(
        "tls-1.0",
        "s/ssl-min-ver TLSv1.2/ssl-min-ver TLSv1.0 ciphers DEFAULT:@SECLEVEL=0/",
        "https.protocols",
        "accepts TLSv1, TLSv1.1",
    ),
    Sabotage("no-hsts", "/Strict-Transport-Security/d", "https.hsts", "no Strict-Transport"),
    Sabotage(
        "no-proto",
        "/X-Forwarded-Proto/d",
        "https.forwarded",
        "was not told the request came over HTTPS",
    ),
    Sabotage(  # this machine's address written in, whoever the client is
        "fixed-xff",
        (
            "s/^    option forwardfor$/    option forwardfor except 0.0.0.0\\/0/",
            f"/^    default_backend web$/i\\    http-request set-header X-Forwarded-For {MACHINE}",
        ),
        "https.forwarded",
        "not that client's address",
    ),
]


def assert_failed(result: dict, sabotage: Sabotage) -> None:
    assert result["status"] == "fail", (sabotage.name, result)
    assert sabotage.evidence in result["evidence"], (sabotage.name, result["evidence"])
    assert result["hint"]


@pytest.mark.parametrize("sabotage", CERTIFICATES, ids=[s.name for s in CERTIFICATES])
def test_each_bad_certificate_fails_its_check(https_lab, sabotage):
    lab = https_lab
    try:
        remote(lab, sabotage.breaks(lab.name) if callable(sabotage.breaks) else sabotage.breaks)
        assert_failed(by_id(check_json(lab, sabotage.fails))[sabotage.fails], sabotage)
    finally:
        restore(lab)


def test_each_broken_configuration_line_fails_its_own_check(https_lab):
    lab = https_lab
    script = " ".join(
        f"-e {quote(line)}"
        for s in CONFIG
        for line in (s.breaks if isinstance(s.breaks, tuple) else (s.breaks,))
    )
    try:
        remote(lab, f"sudo sed -i {script} {CFG} && {RELOAD}")
        results = by_id(check_json(lab, "https"))
        for sabotage in CONFIG:
            assert_failed(results[sabotage.fails], sabotage)
        for unharmed in ("https.trusted", "https.names"):
            assert results[unharmed]["status"] == "pass", results[unharmed]
    finally:
        restore(lab)


def test_restored_the_reference_passes_again_and_provisioning_changes_nothing(https_lab):
    report = check_json(https_lab, "https")
    assert report["passed"] == 6, [c["evidence"] for c in report["checks"]]
    assert changed_count(https_lab("provision", "https").stdout) == 0
