"""CMS (RFC 5652) for SCEP (RFC 8894) and MDM request signatures: sign, verify, encrypt,
decrypt. The public face; the work is in `cms_sign` and `cms_envelope`.

`verify` checks, each failure a `CmsError` with a short reason: the input is a DER
ContentInfo(SignedData) with at least one SignerInfo (the first is verified); the signer's
certificate is in the SignedData (by issuerAndSerialNumber or subjectKeyIdentifier); with
signed attributes, contentType is present and matches, messageDigest equals the hash of the
content, and the signature (RSA PKCS#1 v1.5 or PSS, or ECDSA) covers the attributes as a
DER SET OF (§5.4); without them, the signature covers the content. With `trusted`, the
signer must be issued by a trusted CA (directly, or through one CA certificate carried in
the message) and be valid at `at` (default: now) and at its signingTime. Without `trusted`
there is no chain or time check: a SCEP first request is signed by a throw-away
self-signed certificate (RFC 8894 §2.3).
"""

from __future__ import annotations

from orchardist.pki.cms_common import CmsError, ContentCipher, DigestName, digest_of
from orchardist.pki.cms_envelope import DecryptedEnvelope, decrypt, encrypt
from orchardist.pki.cms_sign import SignedMessage, certificates_only, sign, verify

__all__ = [
    "CmsError",
    "ContentCipher",
    "DecryptedEnvelope",
    "DigestName",
    "SignedMessage",
    "certificates_only",
    "decrypt",
    "digest_of",
    "encrypt",
    "sign",
    "verify",
]
