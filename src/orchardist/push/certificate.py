"""The APNs push certificate: the identity Apple issues for an MDM server's topic.

Its subject's UID attribute (0.9.2342.19200300.100.1.1) is the topic devices are enrolled
with (`com.apple.mgmt.External.<uuid>`, Apple, "Sending MDM push notifications"). Losing
or changing it loses every enrolled device, so imports are checked hard.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from orchardist.pki.store import KeyMaterialError, PkiFiles
from orchardist.push.stand_in import STAND_IN_CA_NAME

TOPIC_PREFIX = "com.apple.mgmt."
# Apple's push certificates last a year; renewal starts being urgent a month before.
PUSH_WARNING_DAYS = 30


class PushCertificateError(ValueError):
    """A push certificate we will not use; str(err) says what to do instead."""


@dataclass(frozen=True)
class PushCertificate:
    certificate: x509.Certificate
    key: rsa.RSAPrivateKey
    topic: str

    @property
    def not_after(self) -> datetime:
        return self.certificate.not_valid_after_utc

    def days_left(self, now: datetime) -> int:
        return (self.not_after - now).days

    @property
    def stand_in(self) -> bool:
        """Issued by `orchardist pushcert test-cert` for the local APNs peer: Apple's
        servers refuse it, and devices enrolled with its topic are not Apple's to wake."""
        return STAND_IN_CA_NAME in self.certificate.issuer.rfc4514_string()

    def warning(self, now: datetime) -> str | None:
        """What an admin must hear about the expiry, or None while it is far off."""
        days = self.days_left(now)
        if days < 0:
            return "expired: devices can no longer be woken; renew it now"
        if days <= PUSH_WARNING_DAYS:
            urgency = "now" if days <= 7 else "soon" if days <= 14 else "this month"
            return f"expires in {days} days: renew it {urgency} with the same Apple ID"
        return None


def describe(pushed: PushCertificate, now: datetime) -> dict[str, Any]:
    """What `orchardist pushcert show|import` print and the console shows."""
    return {
        "topic": pushed.topic,
        "subject": pushed.certificate.subject.rfc4514_string(),
        "not_after": pushed.not_after.isoformat(),
        "days_left": pushed.days_left(now),
        "warning": pushed.warning(now),
        "stand_in": pushed.stand_in,
    }


def from_pem(
    cert_pem: bytes, key_pem: bytes, *, password: bytes | None, now: datetime | None
) -> PushCertificate:
    """`now` None skips the expiry check (to show a stored certificate that has expired)."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError as exc:
        raise PushCertificateError(f"the certificate is not PEM: {exc}") from exc
    try:
        key = serialization.load_pem_private_key(key_pem, password=password)
    except (ValueError, TypeError) as exc:
        raise PushCertificateError(
            f"cannot read the private key ({exc}); give its password (--password) if it is "
            "encrypted"
        ) from exc
    return _checked(cert, key, now)


def from_p12(data: bytes, *, password: bytes | None, now: datetime) -> PushCertificate:
    try:
        key, cert, _ = pkcs12.load_key_and_certificates(data, password)
    except ValueError as exc:
        raise PushCertificateError(
            "cannot open the .p12: wrong --password, or not a PKCS#12 file"
        ) from exc
    if cert is None or key is None:
        raise PushCertificateError("the .p12 must hold the certificate and its private key")
    return _checked(cert, key, now)


def stored(files: PkiFiles) -> PushCertificate | None:
    """The imported push certificate, or None before the first import. An expired one is
    returned too: it is what `show` warns about."""
    if not files.has_push():
        return None
    try:
        cert = x509.load_pem_x509_certificate(files.push_cert.read_bytes())
        key = files.read_key(files.push_key)  # encrypted under the master key
    except (ValueError, KeyMaterialError) as exc:
        raise PushCertificateError(f"cannot read the stored push certificate: {exc}") from exc
    return _checked(cert, key, None)


def push_csr(
    common_name: str, key: rsa.RSAPrivateKey | None = None
) -> tuple[rsa.RSAPrivateKey, x509.CertificateSigningRequest]:
    """The key (made here unless given) and a CSR to start a push certificate with
    (RSA-2048, as Apple asks)."""
    key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .sign(key, hashes.SHA256())
    )
    return key, csr


def _checked(cert: x509.Certificate, key: object, now: datetime | None) -> PushCertificate:
    if not isinstance(key, rsa.RSAPrivateKey):
        raise PushCertificateError("the private key is not RSA; APNs certificates use RSA keys")
    if cert.public_key() != key.public_key():
        raise PushCertificateError("the private key does not belong to this certificate")
    if now is not None and cert.not_valid_after_utc <= now:
        raise PushCertificateError(
            f"the certificate expired on {cert.not_valid_after_utc:%Y-%m-%d}: renew it at "
            "Apple's push certificates portal with the same Apple ID, then import the new one"
        )
    topics = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.USER_ID)]
    topic = next((t for t in topics if t.startswith(TOPIC_PREFIX)), None)
    if topic is None:
        raise PushCertificateError(
            "this is not an MDM push certificate: its subject has no UID com.apple.mgmt.…"
        )
    return PushCertificate(cert, key, topic)
