"""CMS sign / verify / encrypt / decrypt, held against OpenSSL as an independent peer."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asn1crypto import core
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from orchardist.pki import cms
from orchardist.pki.ca import CertificateAuthority, generate_ca
from orchardist.scep.client import make_csr
from tests.keys import rsa_key

CONTENT = b"<plist>\r\n\x00binary \xff content</plist>"


@dataclass
class Party:
    cert: x509.Certificate
    key: rsa.RSAPrivateKey
    cert_pem: Path
    key_pem: Path


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority(*generate_ca("CMS Test CA", "Orchardist tests"))


def _party(
    ca: CertificateAuthority,
    folder: Path,
    index: int,
    *,
    days: int = 30,
    now: datetime | None = None,
) -> Party:
    key = rsa_key(index)
    cert = ca.issue_client_certificate(
        make_csr(key, f"party-{index}"), validity_days=days, now=now or datetime.now(UTC)
    )
    cert_pem, key_pem = folder / f"p{index}.pem", folder / f"p{index}.key"
    cert_pem.write_bytes(cert.public_bytes(Encoding.PEM))
    key_pem.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    return Party(cert, key, cert_pem, key_pem)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory, ca: CertificateAuthority) -> Path:
    path = tmp_path_factory.mktemp("cms")
    (path / "ca.pem").write_bytes(ca.certificate.public_bytes(Encoding.PEM))
    (path / "content.bin").write_bytes(CONTENT)
    return path


@pytest.fixture(scope="module")
def alice(ca: CertificateAuthority, folder: Path) -> Party:
    return _party(ca, folder, 40)


def openssl(*args: str | Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["openssl", *map(str, args)], input=stdin, capture_output=True, check=False
    )


@pytest.mark.parametrize("digest", ["sha1", "sha256", "sha512"])
@pytest.mark.parametrize("detached", [False, True])
def test_round_trip(alice: Party, ca: CertificateAuthority, digest: str, detached: bool) -> None:
    extra = [("2.16.840.1.113733.1.9.2", core.PrintableString("19").dump())]
    der = cms.sign(
        CONTENT, alice.cert, alice.key, digest=digest, detached=detached, signed_attributes=extra
    )  # type: ignore[arg-type]
    signed = cms.verify(
        der, detached_content=CONTENT if detached else None, trusted=[ca.certificate]
    )
    assert signed.content == CONTENT
    assert signed.signer == alice.cert
    assert signed.digest == digest
    assert signed.signed_attributes["2.16.840.1.113733.1.9.2"] == (extra[0][1],)
    assert signed.signing_time is not None
    assert abs(signed.signing_time - datetime.now(UTC)) < timedelta(minutes=1)


@pytest.mark.parametrize("digest", ["sha1", "sha256"])
def test_openssl_verifies_our_signatures(alice: Party, folder: Path, digest: str) -> None:
    der = cms.sign(
        CONTENT,
        alice.cert,
        alice.key,
        digest=digest,
        signed_attributes=[("1.2.3.4", core.UTF8String("x").dump())] * 2,
    )  # type: ignore[arg-type]
    out = openssl(
        "cms",
        "-verify",
        "-inform",
        "DER",
        "-binary",
        "-CAfile",
        folder / "ca.pem",
        "-purpose",
        "any",
        stdin=der,
    )
    assert out.returncode == 0, out.stderr.decode()
    assert out.stdout == CONTENT
    detached = cms.sign(CONTENT, alice.cert, alice.key, digest=digest, detached=True)  # type: ignore[arg-type]
    (folder / "detached.der").write_bytes(detached)
    out = openssl(
        "cms",
        "-verify",
        "-inform",
        "DER",
        "-binary",
        "-in",
        folder / "detached.der",
        "-content",
        folder / "content.bin",
        "-CAfile",
        folder / "ca.pem",
        "-purpose",
        "any",
    )
    assert out.returncode == 0, out.stderr.decode()


@pytest.mark.parametrize("md", ["sha1", "sha256", "sha512"])
@pytest.mark.parametrize("mode", ["-nodetach", "detached"])
def test_we_verify_openssl_signatures(
    alice: Party, folder: Path, ca: CertificateAuthority, md: str, mode: str
) -> None:
    flags = ["-nodetach"] if mode == "-nodetach" else []
    out = openssl(
        "cms",
        "-sign",
        "-binary",
        "-md",
        md,
        *flags,
        "-outform",
        "DER",
        "-signer",
        alice.cert_pem,
        "-inkey",
        alice.key_pem,
        "-in",
        folder / "content.bin",
    )
    assert out.returncode == 0, out.stderr.decode()
    signed = cms.verify(
        out.stdout, detached_content=None if flags else CONTENT, trusted=[ca.certificate]
    )
    assert (signed.content, signed.digest) == (CONTENT, md)


def test_swapped_content_fails_on_the_message_digest(alice: Party) -> None:
    detached = cms.sign(CONTENT, alice.cert, alice.key, detached=True)
    with pytest.raises(cms.CmsError, match=r"(?i)digest"):
        cms.verify(detached, detached_content=CONTENT + b"!")


def test_flipped_signature_byte(alice: Party) -> None:
    der = bytearray(cms.sign(CONTENT, alice.cert, alice.key))
    der[-10] ^= 0x40  # inside the signature, the last field
    with pytest.raises(cms.CmsError, match=r"(?i)signature"):
        cms.verify(bytes(der))


def test_untrusted_and_expired_signers(
    ca: CertificateAuthority, alice: Party, folder: Path
) -> None:
    stranger = CertificateAuthority(*generate_ca("Stranger", "Elsewhere"))
    with pytest.raises(cms.CmsError):
        cms.verify(cms.sign(CONTENT, alice.cert, alice.key), trusted=[stranger.certificate])
    old = _party(ca, folder, 41, days=1, now=datetime.now(UTC) - timedelta(days=10))
    with pytest.raises(cms.CmsError, match=r"(?i)valid|expired"):
        cms.verify(cms.sign(CONTENT, old.cert, old.key), trusted=[ca.certificate])


@pytest.mark.parametrize("body", [b"", b"garbage", b"\x30\x82\x01", bytes(300)])
def test_garbage_is_a_cms_error(body: bytes) -> None:
    with pytest.raises(cms.CmsError):
        cms.verify(body)
    with pytest.raises(cms.CmsError):
        cms.decrypt(body, *_dummy())


def test_truncated_and_wrong_type(alice: Party) -> None:
    der = cms.sign(CONTENT, alice.cert, alice.key)
    with pytest.raises(cms.CmsError):
        cms.verify(der[:-20])
    with pytest.raises(cms.CmsError):
        cms.verify(cms.encrypt(CONTENT, [alice.cert]))


@pytest.mark.parametrize("cipher", ["aes128", "aes256", "des3", "des"])
def test_encrypt_decrypt_round_trip(alice: Party, cipher: str) -> None:
    envelope = cms.encrypt(CONTENT, [alice.cert], cipher=cipher)  # type: ignore[arg-type]
    opened = cms.decrypt(envelope, alice.cert, alice.key)
    assert (opened.content, opened.cipher) == (CONTENT, cipher)


@pytest.mark.parametrize("cipher", ["aes128", "aes256", "des3"])
def test_openssl_decrypts_ours(alice: Party, cipher: str) -> None:
    envelope = cms.encrypt(CONTENT, [alice.cert], cipher=cipher)  # type: ignore[arg-type]
    out = openssl(
        "cms",
        "-decrypt",
        "-inform",
        "DER",
        "-binary",
        "-recip",
        alice.cert_pem,
        "-inkey",
        alice.key_pem,
        stdin=envelope,
    )
    assert out.returncode == 0, out.stderr.decode()
    assert out.stdout == CONTENT


@pytest.mark.parametrize(
    ("flag", "cipher"), [("-aes128", "aes128"), ("-aes256", "aes256"), ("-des3", "des3")]
)
def test_we_decrypt_openssl_envelopes(alice: Party, folder: Path, flag: str, cipher: str) -> None:
    out = openssl(
        "cms",
        "-encrypt",
        "-binary",
        flag,
        "-outform",
        "DER",
        "-in",
        folder / "content.bin",
        alice.cert_pem,
    )
    assert out.returncode == 0, out.stderr.decode()
    opened = cms.decrypt(out.stdout, alice.cert, alice.key)
    assert (opened.content, opened.cipher) == (CONTENT, cipher)


def test_wrong_key_cannot_decrypt(alice: Party, ca: CertificateAuthority, folder: Path) -> None:
    bob = _party(ca, folder, 42)
    envelope = cms.encrypt(CONTENT, [alice.cert])
    with pytest.raises(cms.CmsError):
        cms.decrypt(envelope, bob.cert, bob.key)


def test_certificates_only(alice: Party, ca: CertificateAuthority) -> None:
    der = cms.certificates_only([alice.cert, ca.certificate])
    out = openssl("pkcs7", "-inform", "DER", "-print_certs", stdin=der)
    assert out.returncode == 0
    assert out.stdout.count(b"BEGIN CERTIFICATE") == 2


def _dummy() -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    key = rsa_key(43)
    ca = CertificateAuthority(*generate_ca("Dummy", "Dummy"))
    return ca.issue_client_certificate(
        make_csr(key, "dummy"), validity_days=1, now=datetime.now(UTC)
    ), key
