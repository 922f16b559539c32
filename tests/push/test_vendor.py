"""`pushcert vendor-sign`: the request file Apple's push certificates portal takes."""

from __future__ import annotations

import base64
import plistlib
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from orchardist.push.certificate import push_csr
from orchardist.push.vendor import VendorSignError, vendor_sign
from tests.keys import rsa_key
from tests.server import ORCHARDIST

NOW = datetime.now(UTC)
VENDOR = "MDM Vendor: Example Corp"  # how Apple names MDM vendor certificates
KEYS = {"root": rsa_key(140), "wwdr": rsa_key(141), "vendor": rsa_key(142)}

Key = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def _cert(
    subject: str, key: Key, issuer: tuple[str, Key] | None, *, days: int = 365
) -> x509.Certificate:
    """Signed by `issuer` (name, key), or self-signed; long-lived ones are CAs."""
    issuer_name, issuer_key = issuer or (subject, key)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=400))
        .not_valid_after(NOW + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=days > 1000, path_length=None), critical=True)
        .sign(issuer_key, hashes.SHA256())
    )


ROOT = _cert("Apple Root CA (test)", KEYS["root"], None, days=3650)
WWDR = _cert(
    "Apple Worldwide Developer Relations CA (test)",
    KEYS["wwdr"],
    ("Apple Root CA (test)", KEYS["root"]),
    days=3650,
)
WWDR_ISSUER: tuple[str, Key] = ("Apple Worldwide Developer Relations CA (test)", KEYS["wwdr"])


def _vendor_cert(name: str = VENDOR, days: int = 365) -> x509.Certificate:
    return _cert(name, KEYS["vendor"], WWDR_ISSUER, days=days)


VENDOR_CERT = _vendor_cert()


def _p12(
    cert: x509.Certificate | None,
    key: Key | None = None,
    cas: list[x509.Certificate] | None = None,
    password: bytes | None = b"secret",
) -> bytes:
    encryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return pkcs12.serialize_key_and_certificates(b"vendor", key, cert, cas, encryption)


def _vendor_p12(**changes: object) -> bytes:
    """The vendor's .p12 as Keychain Access exports it with its chain (root first: a .p12
    keeps no order)."""
    arguments: dict[str, object] = {
        "cert": VENDOR_CERT,
        "key": KEYS["vendor"],
        "cas": [ROOT, WWDR],
        "password": b"secret",
    }
    arguments.update(changes)
    return _p12(**arguments)  # type: ignore[arg-type]


def _csr_pem() -> bytes:
    _, csr = push_csr("Orchardist MDM push")
    return csr.public_bytes(serialization.Encoding.PEM)


def _decoded(data: bytes) -> dict[str, str]:
    parsed: dict[str, str] = plistlib.loads(base64.b64decode(data, validate=True))
    return parsed


def _chain(data: bytes) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(_decoded(data)["PushCertCertificateChain"].encode())


def test_the_request_apple_takes() -> None:
    csr_pem = _csr_pem()
    request = vendor_sign(csr_pem, _vendor_p12(), b"secret")
    assert request.warnings == []
    fields = _decoded(request.data)
    assert sorted(fields) == ["PushCertCertificateChain", "PushCertRequestCSR", "PushCertSignature"]
    assert all(isinstance(value, str) for value in fields.values())
    csr_der = base64.b64decode(fields["PushCertRequestCSR"], validate=True)
    assert csr_der == x509.load_pem_x509_csr(csr_pem).public_bytes(serialization.Encoding.DER)
    assert x509.load_der_x509_csr(csr_der).is_signature_valid
    # the vendor certificate first, then each issuer up to the root
    assert _chain(request.data) == [VENDOR_CERT, WWDR, ROOT]
    vendor_public = VENDOR_CERT.public_key()
    assert isinstance(vendor_public, rsa.RSAPublicKey)
    vendor_public.verify(  # raises unless the vendor key signed the CSR's DER with SHA-256
        base64.b64decode(fields["PushCertSignature"], validate=True),
        csr_der,
        padding.PKCS1v15(),
        hashes.SHA256(),
    )


def test_a_der_csr_and_a_p12_without_password_are_accepted_too() -> None:
    der = x509.load_pem_x509_csr(_csr_pem()).public_bytes(serialization.Encoding.DER)
    request = vendor_sign(der, _vendor_p12(password=None), None)
    assert base64.b64decode(_decoded(request.data)["PushCertRequestCSR"]) == der


def test_a_p12_without_chain_gives_the_vendor_certificate_alone_and_a_warning() -> None:
    request = vendor_sign(_csr_pem(), _vendor_p12(cas=None), b"secret")
    assert _chain(request.data) == [VENDOR_CERT]
    (warning,) = request.warnings
    assert "no issuer chain" in warning
    assert "Apple Worldwide Developer Relations" in warning
    assert "may refuse" in warning


def test_a_chain_without_its_root_is_kept_and_warned_about() -> None:
    request = vendor_sign(_csr_pem(), _vendor_p12(cas=[WWDR]), b"secret")
    assert _chain(request.data) == [VENDOR_CERT, WWDR]
    (warning,) = request.warnings
    assert "stops at CN=Apple Worldwide Developer Relations CA (test)" in warning
    assert "root" in warning


def test_a_certificate_not_named_as_an_mdm_vendor_is_warned_about() -> None:
    p12 = _vendor_p12(cert=_vendor_cert("Developer ID Installer: Example Corp"))
    request = vendor_sign(_csr_pem(), p12, b"secret")
    (warning,) = request.warnings
    assert "does not look like an MDM vendor certificate" in warning
    assert _decoded(request.data)["PushCertSignature"]  # a warning: the file is still made


def _tampered_csr() -> bytes:
    der = bytearray(x509.load_pem_x509_csr(_csr_pem()).public_bytes(serialization.Encoding.DER))
    der[-1] ^= 0xFF  # the last byte of the CSR's own signature
    return bytes(der)


EC_KEY = ec.generate_private_key(ec.SECP256R1())


@pytest.mark.parametrize(
    ("csr", "p12", "password", "message"),
    [
        (_csr_pem, lambda: _vendor_p12(), b"wrong", "wrong --password"),
        (_csr_pem, lambda: b"\x30\x03\x02\x01\x00", b"secret", "not a PKCS#12"),
        (_csr_pem, lambda: _vendor_p12(key=None), b"secret", "certificate and its private key"),
        (_csr_pem, lambda: _p12(None, KEYS["vendor"]), b"secret", "certificate and its private"),
        (lambda: b"not a csr", lambda: _vendor_p12(), b"secret", "neither PEM nor DER"),
        (lambda: b"-----BEGIN CERT", lambda: _vendor_p12(), b"secret", "neither PEM nor DER"),
        (_tampered_csr, lambda: _vendor_p12(), b"secret", "signature does not verify"),
        (_csr_pem, lambda: _vendor_p12(cert=_vendor_cert(days=-1)), b"secret", "expired on"),
        (
            _csr_pem,
            lambda: _vendor_p12(cert=_cert(VENDOR, EC_KEY, WWDR_ISSUER), key=EC_KEY),
            b"secret",
            "not RSA",
        ),
    ],
    ids=[
        "wrong-password",
        "not-pkcs12",
        "no-key",
        "no-certificate",
        "garbage-csr",
        "broken-pem-csr",
        "csr-signature",
        "expired",
        "ec-key",
    ],
)
def test_refusals_say_what_to_do(
    csr: Callable[[], bytes], p12: Callable[[], bytes], password: bytes, message: str
) -> None:
    with pytest.raises(VendorSignError, match=message):
        vendor_sign(csr(), p12(), password)


def _run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ORCHARDIST, "--data-dir", str(cwd / "data"), "pushcert", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_cli_writes_the_file_and_says_what_next(tmp_path: Path) -> None:
    (tmp_path / "vendor.p12").write_bytes(_vendor_p12(cas=None))
    made = _run(tmp_path, "csr")
    assert made.returncode == 0, made.stderr
    assert "vendor-sign" in made.stdout

    signed = _run(
        tmp_path, "vendor-sign", "--vendor-cert", "vendor.p12", "--password", "secret",
        "--csr", "push.csr",
    )  # fmt: skip
    assert signed.returncode == 0, signed.stderr
    out = tmp_path / "push-request.b64"  # the default, in the current folder like `csr`'s
    fields = _decoded(out.read_bytes())
    assert base64.b64decode(fields["PushCertRequestCSR"]) == x509.load_pem_x509_csr(
        (tmp_path / "push.csr").read_bytes()
    ).public_bytes(serialization.Encoding.DER)
    assert "Wrote push-request.b64" in signed.stdout
    assert "https://identity.apple.com/pushcert" in signed.stdout
    assert "orchardist pushcert import --cert" in signed.stdout
    assert "--key push.key" in signed.stdout
    assert "warning:" in signed.stderr
    assert "Apple Worldwide Developer Relations" in signed.stderr

    elsewhere = tmp_path / "out" / "request.b64"
    elsewhere.parent.mkdir()
    chosen = _run(
        tmp_path, "vendor-sign", "--vendor-cert", "vendor.p12", "--password", "secret",
        "--csr", "push.csr", "-o", str(elsewhere),
    )  # fmt: skip
    assert chosen.returncode == 0, chosen.stderr
    assert _decoded(elsewhere.read_bytes()).keys() == fields.keys()


def test_the_cli_refuses_with_exit_code_1(tmp_path: Path) -> None:
    (tmp_path / "vendor.p12").write_bytes(_vendor_p12())
    (tmp_path / "push.csr").write_bytes(_csr_pem())
    wrong = _run(
        tmp_path, "vendor-sign", "--vendor-cert", "vendor.p12", "--password", "nope",
        "--csr", "push.csr",
    )  # fmt: skip
    assert (wrong.returncode, "wrong --password" in wrong.stderr) == (1, True)
    missing = _run(tmp_path, "vendor-sign", "--vendor-cert", "vendor.p12", "--csr", "nope.csr")
    assert (missing.returncode, "cannot read nope.csr" in missing.stderr) == (1, True)
    assert not (tmp_path / "push-request.b64").exists()
