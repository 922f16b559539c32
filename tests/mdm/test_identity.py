"""The device identity behind an /mdm request: Mdm-Signature or a forwarded certificate."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from orchardist.mdm.identity import (
    DeviceIdentity,
    IdentityError,
    SignatureVerifier,
    forwarded_certificate,
    signer_of,
)
from orchardist.pki import cms
from orchardist.pki.ca import CertificateAuthority, generate_ca
from orchardist.scep.client import make_csr
from tests.keys import rsa_key

BODY = b"<plist><dict><key>Status</key><string>Idle</string></dict></plist>"
NOW = datetime.now(UTC)


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority(*generate_ca("Identity CA", "Orchardist tests"))


@pytest.fixture(scope="module")
def device(ca: CertificateAuthority) -> x509.Certificate:
    return ca.issue_client_certificate(make_csr(rsa_key(70), "device"), validity_days=30, now=NOW)


def _signature(cert: x509.Certificate, body: bytes = BODY, digest: str = "sha1") -> str:
    der = cms.sign(body, cert, rsa_key(70), digest=digest, detached=True)  # type: ignore[arg-type]
    return base64.b64encode(der).decode()


@pytest.mark.parametrize("digest", ["sha1", "sha256"])
def test_mdm_signature(ca: CertificateAuthority, device: x509.Certificate, digest: str) -> None:
    assert signer_of(_signature(device, digest=digest), BODY, [ca.certificate], NOW) == device


def test_mdm_signature_refusals(ca: CertificateAuthority, device: x509.Certificate) -> None:
    with pytest.raises(IdentityError, match="not base64"):
        signer_of("%%%", BODY, [ca.certificate], NOW)
    with pytest.raises(IdentityError, match="does not verify"):
        signer_of(_signature(device), BODY + b" ", [ca.certificate], NOW)
    with pytest.raises(IdentityError, match="does not verify"):
        signer_of(base64.b64encode(b"junk").decode(), BODY, [ca.certificate], NOW)
    other = CertificateAuthority(*generate_ca("Other", "Elsewhere"))
    with pytest.raises(IdentityError):
        signer_of(_signature(device), BODY, [other.certificate], NOW)
    with pytest.raises(IdentityError):
        signer_of(_signature(device), BODY, [ca.certificate], NOW + timedelta(days=60))


def test_forwarded_rfc9440_and_nginx(ca: CertificateAuthority, device: x509.Certificate) -> None:
    rfc9440 = ":" + base64.b64encode(device.public_bytes(Encoding.DER)).decode() + ":"
    nginx = quote(device.public_bytes(Encoding.PEM).decode())
    for value in (rfc9440, nginx):
        assert forwarded_certificate(value, [ca.certificate], NOW) == device


def test_forwarded_refusals(ca: CertificateAuthority, device: x509.Certificate) -> None:
    other = CertificateAuthority(*generate_ca("Other", "Elsewhere"))
    stranger = other.issue_client_certificate(make_csr(rsa_key(71), "x"), validity_days=1, now=NOW)
    pem = quote(stranger.public_bytes(Encoding.PEM).decode())
    with pytest.raises(IdentityError, match="not issued by our CA"):
        forwarded_certificate(pem, [ca.certificate], NOW)
    with pytest.raises(IdentityError, match="expired"):
        forwarded_certificate(
            quote(device.public_bytes(Encoding.PEM).decode()),
            [ca.certificate],
            NOW + timedelta(days=90),
        )
    for junk in (":bm90IGEgY2VydA==:", "garbage", ":%%:", "-----BEGIN CERTIFICATE-----\nxx"):
        with pytest.raises(IdentityError):
            forwarded_certificate(junk, [ca.certificate], NOW)


@pytest.mark.parametrize("digest", ["sha1", "sha256"])
def test_verifier_accepts_what_signer_of_accepts(
    ca: CertificateAuthority, device: x509.Certificate, digest: str
) -> None:
    verifier = SignatureVerifier([ca.certificate])
    for _ in range(2):  # learning the certificate, then from what it learnt
        found = verifier.signer(_signature(device, digest=digest), BODY, NOW)
        assert found == DeviceIdentity.of(device)
        assert found.sha256 == hashlib.sha256(device.public_bytes(Encoding.DER)).hexdigest()


def test_verifier_refuses_with_the_reasons_of_signer_of(
    ca: CertificateAuthority, device: x509.Certificate
) -> None:
    verifier = SignatureVerifier([ca.certificate])
    good = _signature(device)
    verifier.signer(good, BODY, NOW)  # the certificate is known from now on
    with pytest.raises(IdentityError, match="not base64"):
        verifier.signer("%%%", BODY, NOW)
    with pytest.raises(IdentityError, match="message digest mismatch"):
        verifier.signer(good, BODY + b" ", NOW)
    with pytest.raises(IdentityError, match="does not verify"):
        verifier.signer(base64.b64encode(b"junk").decode(), BODY, NOW)
    # Known and valid once is not valid for ever: the dates are checked on every request.
    with pytest.raises(IdentityError, match="expired"):
        verifier.signer(good, BODY, NOW + timedelta(days=60))
    stranger = SignatureVerifier([CertificateAuthority(*generate_ca("Other", "Else")).certificate])
    with pytest.raises(IdentityError, match="not issued by a trusted CA"):
        stranger.signer(good, BODY, NOW)
    with pytest.raises(IdentityError, match="not issued by a trusted CA"):
        stranger.signer(good, BODY, NOW)  # declined certificates are remembered as such


def test_verifier_forgets_the_oldest_when_full(ca: CertificateAuthority) -> None:
    verifier = SignatureVerifier([ca.certificate], size=2)
    devices = [
        ca.issue_client_certificate(make_csr(rsa_key(70), f"d{n}"), validity_days=30, now=NOW)
        for n in range(3)
    ]
    for _ in range(2):
        for cert in devices:
            assert verifier.signer(_signature(cert), BODY, NOW).certificate == cert
