"""Which device is calling: the identity certificate behind every /mdm request.

Either the `Mdm-Signature` header — a detached CMS SignedData over the body, base64 —
(Apple, "Mdm-Signature"; devices sign with SHA-1 or SHA-256), or, behind a TLS-terminating
proxy, the client certificate the proxy forwards (RFC 9440 `Client-Cert`, or nginx's
`$ssl_client_escaped_cert`). Whether the certificate belongs to the enrollment is the
caller's business; here it only has to be ours and valid.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast
from urllib.parse import unquote

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from orchardist.pki import cms
from orchardist.pki.cms_quick import QuickSigned, read_signed


class IdentityError(ValueError):
    """No acceptable device certificate; str(err) is the reason for the log and the 4xx."""


@dataclass(frozen=True)
class DeviceIdentity:
    certificate: x509.Certificate
    sha256: str  # hex SHA-256 of the certificate's DER, as our records name it

    @classmethod
    def of(cls, certificate: x509.Certificate) -> DeviceIdentity:
        return cls(certificate, hashlib.sha256(certificate.public_bytes(Encoding.DER)).hexdigest())


class SignatureVerifier:
    """Mdm-Signature checks with the per-certificate work done once per certificate.

    What depends only on the certificate — parsing it, its fingerprint and public key, and
    that our CA issued it — is kept, keyed by the certificate's bytes; each request costs
    a TLV walk, one hash of the body and one RSA verification. The dates are checked on
    every request, and revocation is the storage's business on every request, so nothing
    kept here can let a revoked or expired certificate in. Anything but the common shape
    (see `pki/cms_quick`), and every failure, goes to the full `signer_of`, which gives
    the precise reason.
    """

    def __init__(self, trusted: Sequence[x509.Certificate], *, size: int = 10_000) -> None:
        self._trusted = tuple(trusted)
        self._size = size
        self._known: dict[bytes, _Known | None] = {}  # None: not one we can take fast
        self._learning = threading.Lock()  # large bodies are checked on worker threads

    def signer(self, mdm_signature: str, body: bytes, now: datetime) -> DeviceIdentity:
        try:
            der = base64.b64decode(mdm_signature.strip(), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise IdentityError("Mdm-Signature is not base64") from exc
        parsed = read_signed(der)
        known = None if parsed is None or parsed.content is not None else self._signer(parsed)
        if parsed is None or known is None or not known.verifies(parsed, body, now):
            return DeviceIdentity.of(signer_of(mdm_signature, body, self._trusted, now))
        return known.identity

    def _signer(self, parsed: QuickSigned) -> _Known | None:
        for certificate in parsed.certificates:
            found = self._known.get(certificate, _UNKNOWN)  # another thread may evict it
            known = cast("_Known | None", found)
            if found is _UNKNOWN:
                known = _Known.read(certificate, self._trusted)
                with self._learning:
                    if len(self._known) >= self._size:  # oldest first out
                        del self._known[next(iter(self._known))]
                    self._known[certificate] = known
            if (
                known is not None
                and known.issuer == parsed.issuer
                and known.serial == parsed.serial
            ):
                return known
        return None


_UNKNOWN = object()


@dataclass(frozen=True)
class _Known:
    """A certificate our CA issued directly (intermediates take the full path)."""

    identity: DeviceIdentity
    public_key: rsa.RSAPublicKey
    issuer: bytes  # the issuer Name, DER
    serial: int
    not_before: datetime
    not_after: datetime

    @classmethod
    def read(cls, der: bytes, trusted: Sequence[x509.Certificate]) -> _Known | None:
        try:
            certificate = x509.load_der_x509_certificate(der)
            public_key = certificate.public_key()
            if not isinstance(public_key, rsa.RSAPublicKey):
                return None
            if not any(_issued_by(certificate, ca) for ca in trusted):
                return None
            return cls(
                identity=DeviceIdentity(certificate, hashlib.sha256(der).hexdigest()),
                public_key=public_key,
                issuer=certificate.issuer.public_bytes(),
                serial=certificate.serial_number,
                not_before=certificate.not_valid_before_utc,
                not_after=certificate.not_valid_after_utc,
            )
        except (ValueError, TypeError, UnsupportedAlgorithm):
            return None

    def verifies(self, parsed: QuickSigned, body: bytes, now: datetime) -> bool:
        """The checks of `cms.verify` with `trusted`, for this shape; False on any doubt."""
        if not self.not_before <= now <= self.not_after:
            return False
        if parsed.signing_time is not None and not (
            self.not_before <= parsed.signing_time <= self.not_after
        ):
            return False
        # Without the digest check the signature says nothing about the body.
        if not hmac.compare_digest(
            hashlib.new(parsed.digest, body).digest(), parsed.message_digest
        ):
            return False
        # Devices sign with SHA-1 (Apple, "Mdm-Signature"): not ours to refuse.
        algorithm = hashes.SHA1() if parsed.digest == "sha1" else hashes.SHA256()  # noqa: S303
        try:
            self.public_key.verify(
                parsed.signature, parsed.signed_bytes, padding.PKCS1v15(), algorithm
            )
        except InvalidSignature:
            return False
        return True


def signer_of(
    mdm_signature: str, body: bytes, trusted: Sequence[x509.Certificate], now: datetime
) -> x509.Certificate:
    """The certificate that signed `body`, verified up to one of `trusted` and valid now."""
    try:
        der = base64.b64decode(mdm_signature.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise IdentityError("Mdm-Signature is not base64") from exc
    try:
        return cms.verify(der, detached_content=body, trusted=trusted, at=now).signer
    except cms.CmsError as exc:
        raise IdentityError(f"Mdm-Signature does not verify: {exc}") from exc


def forwarded_certificate(
    value: str, trusted: Sequence[x509.Certificate], now: datetime
) -> x509.Certificate:
    """The client certificate a proxy forwarded: RFC 9440 (`:base64-DER:`) or URL-escaped PEM
    (nginx). The proxy verified the TLS handshake; the chain and dates are checked again here
    so that a misconfigured proxy cannot hand us a stranger's certificate."""
    cert = _parse_forwarded(value.strip())
    if not any(_issued_by(cert, ca) for ca in trusted):
        raise IdentityError("the client certificate was not issued by our CA")
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise IdentityError("the client certificate is expired or not yet valid")
    return cert


def _parse_forwarded(value: str) -> x509.Certificate:
    try:
        if value.startswith(":") and value.endswith(":"):  # RFC 9440 §2.1 byte sequence
            return x509.load_der_x509_certificate(base64.b64decode(value[1:-1], validate=True))
        if "BEGIN" in value or "%" in value:
            return x509.load_pem_x509_certificate(unquote(value).encode("ascii"))
    except (binascii.Error, ValueError) as exc:
        raise IdentityError(f"the forwarded client certificate cannot be read: {exc}") from exc
    raise IdentityError("the forwarded client certificate is neither RFC 9440 nor PEM")


def _issued_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True
