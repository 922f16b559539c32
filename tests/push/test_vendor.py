"""`pushcert vendor-sign`: the request file Apple's push certificates portal takes."""

from __future__ import annotations

import base64
import plistlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from orchardist.push.certificate import push_csr
from orchardist.push.vendor import MDM_VENDOR_OID, VendorSignError, vendor_sign
from tests.cli.test_device_cli import cli
from tests.keys import rsa_key

NOW = datetime.now(UTC)


def _cert(
    subject: str,
    key: rsa.RSAPrivateKey,
    issuer: tuple[str, rsa.RSAPrivateKey] | None,
    *,
    ca: bool = False,
    vendor: bool = False,
    days: int = 365,
) -> x509.Certificate:
    issuer_name, issuer_key = issuer or (subject, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=400))
        .not_valid_after(NOW + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if vendor:
        builder = builder.add_extension(
            x509.UnrecognizedExtension(MDM_VENDOR_OID, b"\x05\x00"), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _vendor_p12(
    *, password: bytes | None = b"secret", chain: bool = True, vendor: bool = True,
    days: int = 365, name: str = "Example Corp",
) -> tuple[bytes, x509.Certificate, x509.Certificate]:  # fmt: skip
    wwdr_key, key = rsa_key(140), rsa_key(141)
    wwdr = _cert("Apple WWDR CA (test)", wwdr_key, None, ca=True)
    cert = _cert(name, key, ("Apple WWDR CA (test)", wwdr_key), vendor=vendor, days=days)
    encryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    data = pkcs12.serialize_key_and_certificates(
        b"vendor", key, cert, [wwdr] if chain else None, encryption
    )
    return data, cert, wwdr


def _csr_pem() -> bytes:
    _, csr = push_csr("Orchardist MDM push")
    return csr.public_bytes(serialization.Encoding.PEM)


def _decoded(data: bytes) -> dict[str, str]:
    parsed: dict[str, str] = plistlib.loads(base64.b64decode(data))
    return parsed


def test_the_request_apple_takes() -> None:
    p12, vendor, wwdr = _vendor_p12()
    csr_pem = _csr_pem()
    request = vendor_sign(csr_pem, p12, b"secret")
    assert request.warnings == []
    fields = _decoded(request.data)
    assert set(fields) == {"PushCertRequestCSR", "PushCertCertificateChain", "PushCertSignature"}
    csr_der = base64.b64decode(fields["PushCertRequestCSR"])
    assert csr_der == x509.load_pem_x509_csr(csr_pem).public_bytes(serialization.Encoding.DER)
    chain = x509.load_pem_x509_certificates(fields["PushCertCertificateChain"].encode())
    assert chain == [vendor, wwdr]
    public = vendor.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    public.verify(  # raises unless the vendor key signed the CSR's DER with SHA-256
        base64.b64decode(fields["PushCertSignature"]), csr_der, padding.PKCS1v15(), hashes.SHA256()
    )


def test_a_der_csr_is_accepted_too() -> None:
    p12, _, _ = _vendor_p12(password=None)
    der = x509.load_pem_x509_csr(_csr_pem()).public_bytes(serialization.Encoding.DER)
    fields = _decoded(vendor_sign(der, p12, None).data)
    assert base64.b64decode(fields["PushCertRequestCSR"]) == der


def test_warnings_for_a_missing_chain_and_a_non_vendor_certificate() -> None:
    p12, _, _ = _vendor_p12(chain=False, vendor=False)
    warnings = vendor_sign(_csr_pem(), p12, b"secret").warnings
    assert any("no issuer chain" in w for w in warnings)
    assert any("does not look like an MDM vendor certificate" in w for w in warnings)


@pytest.mark.parametrize(
    ("csr", "p12", "password", "message"),
    [
        ("good", "good", b"wrong", "wrong --password"),
        ("good", "garbage", b"secret", "not a PKCS#12"),
        ("garbage", "good", b"secret", "neither PEM nor DER"),
        ("good", "expired", b"secret", "expired"),
    ],
)
def test_refusals_say_what_to_do(csr: str, p12: str, password: bytes, message: str) -> None:
    csr_data = _csr_pem() if csr == "good" else b"not a csr"
    p12_data = {
        "good": lambda: _vendor_p12()[0],
        "garbage": lambda: b"\x30\x03\x02\x01\x00",
        "expired": lambda: _vendor_p12(days=-1)[0],
    }[p12]()
    with pytest.raises(VendorSignError, match=message):
        vendor_sign(csr_data, p12_data, password)


def test_the_cli_writes_the_file_and_says_what_next(tmp_path: Path) -> None:
    p12, _, _ = _vendor_p12()
    (tmp_path / "vendor.p12").write_bytes(p12)
    made = cli(
        tmp_path / "data", "pushcert", "csr",
        "--key-out", str(tmp_path / "push.key"), "--csr-out", str(tmp_path / "push.csr"),
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert "vendor-sign" in made.stdout
    out = tmp_path / "request.b64"
    signed = cli(
        tmp_path / "data", "pushcert", "vendor-sign", "--vendor-cert", str(tmp_path / "vendor.p12"),
        "--password", "secret", "--csr", str(tmp_path / "push.csr"), "-o", str(out),
    )  # fmt: skip
    assert signed.returncode == 0, signed.stderr
    assert "identity.apple.com/pushcert" in signed.stdout
    assert "pushcert import" in signed.stdout
    assert set(_decoded(out.read_bytes())) >= {"PushCertRequestCSR", "PushCertSignature"}
    wrong = cli(
        tmp_path / "data", "pushcert", "vendor-sign", "--vendor-cert", str(tmp_path / "vendor.p12"),
        "--password", "nope", "--csr", str(tmp_path / "push.csr"), "-o", str(out),
    )  # fmt: skip
    assert (wrong.returncode, "wrong --password" in wrong.stderr) == (1, True)
