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
from collections.abc import Sequence
from datetime import datetime
from urllib.parse import unquote

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm

from orchardist.pki import cms


class IdentityError(ValueError):
    """No acceptable device certificate; str(err) is the reason for the log and the 4xx."""


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
