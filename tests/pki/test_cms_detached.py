"""The quick reader of a detached Mdm-Signature agrees with the full one on the shape
devices send, and declines everything else instead of guessing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchardist.pki import cms
from orchardist.pki.ca import CertificateAuthority, generate_ca
from orchardist.pki.cms_detached import read_detached
from orchardist.scep.client import make_csr
from tests.keys import rsa_key

BODY = b"<plist><dict><key>Status</key><string>Idle</string></dict></plist>"
NOW = datetime.now(UTC)
MESSAGE_DIGEST = "1.2.840.113549.1.9.4"


@pytest.fixture(scope="module")
def device() -> x509.Certificate:
    ca = CertificateAuthority(*generate_ca("Detached CA", "Orchardist tests"))
    return ca.issue_client_certificate(make_csr(rsa_key(71), "device"), validity_days=30, now=NOW)


def _signed(device: x509.Certificate, digest: str = "sha1", detached: bool = True) -> bytes:
    return cms.sign(BODY, device, rsa_key(71), digest=digest, detached=detached)  # type: ignore[arg-type]


@pytest.mark.parametrize("digest", ["sha1", "sha256"])
def test_agrees_with_the_full_reader(device: x509.Certificate, digest: str) -> None:
    der = _signed(device, digest)
    full = cms.verify(der, detached_content=BODY)
    quick = read_detached(der)
    assert quick is not None
    assert quick.certificates == (device.public_bytes(Encoding.DER),)
    assert (quick.issuer, quick.serial) == (device.issuer.public_bytes(), device.serial_number)
    assert quick.digest == digest
    # The attribute's DER value is an OCTET STRING: tag, length, then the digest.
    assert quick.message_digest == full.signed_attributes[MESSAGE_DIGEST][0][2:]
    assert quick.signing_time == full.signing_time
    public_key = device.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    algorithm = hashes.SHA1() if digest == "sha1" else hashes.SHA256()  # noqa: S303
    public_key.verify(quick.signature, quick.signed_bytes, padding.PKCS1v15(), algorithm)


def test_declines_other_shapes(device: x509.Certificate) -> None:
    assert read_detached(_signed(device, detached=False)) is None  # content carried
    assert read_detached(_signed(device, "sha512")) is None  # a digest devices do not use
    assert read_detached(_signed(device) + b"\x00") is None  # trailing bytes
    no_attributes = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(BODY)
        .add_signer(device, rsa_key(71), hashes.SHA256())  # type: ignore[arg-type]
        .sign(
            Encoding.DER,
            [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.NoAttributes],
        )
    )
    assert read_detached(no_attributes) is None
    assert read_detached(b"") is None
    assert read_detached(b"\x30\x80\x00\x00") is None  # BER indefinite length


def test_truncations_are_declined_never_raised(device: x509.Certificate) -> None:
    der = _signed(device)
    for end in range(len(der)):
        assert read_detached(der[:end]) is None


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 255)), max_size=4))
def test_mutations_never_raise(device: x509.Certificate, flips: list[tuple[int, int]]) -> None:
    """Structure-aware: bytes of a valid message changed; the reader answers or declines."""
    der = bytearray(_signed(device))
    for where, xor in flips:
        der[where % len(der)] ^= xor
    read_detached(bytes(der))
