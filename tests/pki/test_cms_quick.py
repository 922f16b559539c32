"""The quick SignedData reader agrees with the full one on the shape devices and SCEP
clients send, and declines everything else instead of guessing; cms.verify gives the same
answer through it as without it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchardist.pki import cms, cms_envelope, cms_sign
from orchardist.pki.ca import CertificateAuthority, generate_ca
from orchardist.pki.cms_quick import read_enveloped, read_signed
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
    quick = read_signed(der)
    assert quick is not None
    assert quick.content is None
    assert dict(quick.attributes) == {o: v for o, (v,) in full.signed_attributes.items()}
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


def test_reads_carried_content_and_every_attribute(device: x509.Certificate) -> None:
    extra = [("2.16.840.1.113733.1.9.7", b"\x13\x04abcd")]  # a SCEP transactionID
    der = cms.sign(BODY, device, rsa_key(71), signed_attributes=extra)  # type: ignore[arg-type]
    quick = read_signed(der)
    assert quick is not None
    assert quick.content == BODY
    assert quick.attributes["2.16.840.1.113733.1.9.7"] == b"\x13\x04abcd"


@pytest.mark.parametrize("detached", [True, False])
def test_verify_answers_the_same_with_and_without_the_quick_path(
    device: x509.Certificate, detached: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    der = _signed(device, detached=detached)
    content = BODY if detached else None
    quick = cms.verify(der, detached_content=content)
    monkeypatch.setattr(cms_sign, "read_signed", lambda _der: None)
    full = cms.verify(der, detached_content=content)
    assert quick == full
    refusal = "message digest mismatch" if detached else "carries content other than"
    with pytest.raises(cms.CmsError, match=refusal):
        cms.verify(der, detached_content=BODY + b"!")


def test_declines_other_shapes(device: x509.Certificate) -> None:
    assert read_signed(_signed(device) + b"\x00") is None  # trailing bytes
    no_attributes = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(BODY)
        .add_signer(device, rsa_key(71), hashes.SHA256())  # type: ignore[arg-type]
        .sign(
            Encoding.DER,
            [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.NoAttributes],
        )
    )
    assert read_signed(no_attributes) is None
    assert read_signed(b"") is None
    assert read_signed(b"\x30\x80\x00\x00") is None  # BER indefinite length


def test_truncations_are_declined_never_raised(device: x509.Certificate) -> None:
    der = _signed(device)
    for end in range(len(der)):
        assert read_signed(der[:end]) is None


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 255)), max_size=4))
def test_mutations_never_raise(device: x509.Certificate, flips: list[tuple[int, int]]) -> None:
    """Structure-aware: bytes of a valid message changed; the reader answers or declines."""
    der = bytearray(_signed(device))
    for where, xor in flips:
        der[where % len(der)] ^= xor
    read_signed(bytes(der))


@pytest.mark.parametrize("cipher", ["aes128", "aes256", "des3", "des"])
def test_decrypt_answers_the_same_with_and_without_the_quick_path(
    device: x509.Certificate, cipher: cms.ContentCipher, monkeypatch: pytest.MonkeyPatch
) -> None:
    envelope = cms.encrypt(BODY, [device], cipher=cipher)
    read = read_enveloped(envelope)
    assert read is not None
    assert len(read.recipients) == 1
    assert read.recipients[0].serial == device.serial_number
    quick = cms.decrypt(envelope, device, rsa_key(71))  # type: ignore[arg-type]
    monkeypatch.setattr(cms_envelope, "read_enveloped", lambda _der: None)
    assert cms.decrypt(envelope, device, rsa_key(71)) == quick  # type: ignore[arg-type]
    assert quick.content == BODY


def test_enveloped_reader_declines_other_shapes(device: x509.Certificate) -> None:
    envelope = cms.encrypt(BODY, [device], cipher="aes128")
    assert read_enveloped(_signed(device)) is None  # SignedData
    assert read_enveloped(envelope + b"\x00") is None
    for end in range(len(envelope)):
        assert read_enveloped(envelope[:end]) is None


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 255)), max_size=4))
def test_enveloped_mutations_never_raise(
    device: x509.Certificate, flips: list[tuple[int, int]]
) -> None:
    der = bytearray(cms.encrypt(BODY, [device], cipher="aes128"))
    for where, xor in flips:
        der[where % len(der)] ^= xor
    read_enveloped(bytes(der))
