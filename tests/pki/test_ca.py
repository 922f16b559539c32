"""The CA's certificates: what a device identity, a server certificate and an RA carry."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from orchardist.pki.ca import CertificateAuthority, CsrError, generate_ca
from orchardist.pki.store import KeyMaterialError, PkiFiles
from tests.keys import rsa_key

NOW = datetime.now(UTC)


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority(*generate_ca("Unit CA", "Orchardist tests", validity_days=400))


def csr_for(
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, *, san: bool = False
) -> x509.CertificateSigningRequest:
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, "iPhone"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Acme"),
            ]
        )
    )
    if san:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.RFC822Name("user@example.com")]), critical=False
        ).add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    return builder.sign(key, hashes.SHA256())


def test_device_identity_profile(ca: CertificateAuthority) -> None:
    cert = ca.issue_client_certificate(csr_for(rsa_key(30), san=True), validity_days=30, now=NOW)
    cert.verify_directly_issued_by(ca.certificate)
    assert cert.subject.rfc4514_string() == "O=Acme,CN=iPhone"
    assert 1 << 126 <= cert.serial_number < 1 << 127
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == timedelta(days=30, minutes=5)
    ext = cert.extensions
    assert ext.get_extension_for_class(x509.BasicConstraints).value.ca is False
    usage = ext.get_extension_for_class(x509.KeyUsage)
    assert usage.critical
    assert (usage.value.digital_signature, usage.value.key_encipherment) == (True, True)
    assert list(ext.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.CLIENT_AUTH
    ]
    aki = ext.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    ca_ski = ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert aki == ca_ski.value.digest
    ext.get_extension_for_class(x509.SubjectKeyIdentifier)
    # The requested SAN is kept; the requested CA flag is not.
    san = ext.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.RFC822Name) == ["user@example.com"]


def test_serials_are_unique(ca: CertificateAuthority) -> None:
    csr = csr_for(rsa_key(30))
    serials = {
        ca.issue_client_certificate(csr, validity_days=1, now=NOW).serial_number for _ in range(50)
    }
    assert len(serials) == 50


def test_leaf_never_outlives_the_ca(ca: CertificateAuthority) -> None:
    cert = ca.issue_client_certificate(csr_for(rsa_key(30)), validity_days=3650, now=NOW)
    assert cert.not_valid_after_utc == ca.certificate.not_valid_after_utc


def test_ec_keys_get_key_agreement(ca: CertificateAuthority) -> None:
    cert = ca.issue_client_certificate(
        csr_for(ec.generate_private_key(ec.SECP256R1())), validity_days=1, now=NOW
    )
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert (usage.key_agreement, usage.key_encipherment) == (True, False)


def test_small_rsa_keys_are_refused(ca: CertificateAuthority) -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 (the point)
    with pytest.raises(CsrError, match="2048"):
        ca.issue_client_certificate(csr_for(weak), validity_days=1, now=NOW)


def test_forged_csr_is_refused(ca: CertificateAuthority) -> None:
    der = bytearray(csr_for(rsa_key(30)).public_bytes(Encoding.DER))
    der[-3] ^= 0x01  # inside the signature
    with pytest.raises(CsrError, match="signature"):
        ca.issue_client_certificate(x509.load_der_x509_csr(bytes(der)), validity_days=1, now=NOW)


def test_openssl_accepts_the_chain(ca: CertificateAuthority, tmp_path: Path) -> None:
    leaf = ca.issue_client_certificate(csr_for(rsa_key(30)), validity_days=1, now=NOW)
    server, _ = ca.issue_server_certificate("mdm.example.test")
    (tmp_path / "ca.pem").write_bytes(ca.certificate.public_bytes(Encoding.PEM))
    for name, cert, purpose in (("leaf", leaf, "sslclient"), ("server", server, "sslserver")):
        (tmp_path / f"{name}.pem").write_bytes(cert.public_bytes(Encoding.PEM))
        done = subprocess.run(
            [
                "openssl",
                "verify",
                "-purpose",
                purpose,
                "-CAfile",
                str(tmp_path / "ca.pem"),
                str(tmp_path / f"{name}.pem"),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr


def test_registration_authority(ca: CertificateAuthority) -> None:
    ra = ca.issue_registration_authority("Test RA")
    ra.certificate.verify_directly_issued_by(ca.certificate)
    assert ra.certificate.public_key() == ra.key.public_key()
    usage = ra.certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    assert (usage.digital_signature, usage.key_encipherment, usage.key_cert_sign) == (
        True,
        True,
        False,
    )


def test_files_round_trip_and_refuse_mismatched_keys(
    ca: CertificateAuthority, tmp_path: Path
) -> None:
    files = PkiFiles.in_data_dir(tmp_path)
    with pytest.raises(KeyMaterialError, match="init"):
        files.load_ca()
    files.save_ca(ca)
    loaded = files.load_ca()
    assert loaded.certificate == ca.certificate
    assert loaded.key.private_numbers() == ca.key.private_numbers()
    assert files.load_ra() is None
    other = CertificateAuthority(*generate_ca("Other", "Elsewhere"))
    pem = other.key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    files.ca_key.write_bytes(pem)
    with pytest.raises(KeyMaterialError, match="not the key"):
        files.load_ca()
