"""Sign a push-certificate CSR with an MDM vendor certificate, for Apple's portal.

Organisations enrolled as MDM vendors (Apple Developer Enterprise Program) can sign their
own push-certificate requests instead of going through a vendor. The portal
(identity.apple.com/pushcert) takes the base64 of an XML plist:

- `PushCertRequestCSR`: base64 of the CSR's DER,
- `PushCertCertificateChain`: PEM of the vendor certificate, then its issuers up to the root,
- `PushCertSignature`: base64 of an RSA PKCS#1 v1.5 SHA-256 signature by the vendor key
  over the CSR's DER (Apple's current instructions; older ones and MicroMDM said SHA-1).

No library does this; it is a few lines on `cryptography`, free of web and database imports.
"""

from __future__ import annotations

import base64
import plistlib
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID


class VendorSignError(ValueError):
    """The request cannot be signed; str(err) says what to do."""


@dataclass(frozen=True)
class VendorRequest:
    data: bytes  # the file to upload
    warnings: list[str] = field(default_factory=list)  # for a human; the file is still made


def vendor_sign(
    csr_data: bytes, vendor_p12: bytes, password: bytes | None, *, now: datetime | None = None
) -> VendorRequest:
    """The portal's request file for the CSR (PEM or DER), signed with the vendor .p12."""
    csr = _csr(csr_data)
    try:
        key, cert, extra = pkcs12.load_key_and_certificates(vendor_p12, password)
    except ValueError as exc:
        raise VendorSignError(
            "cannot open the vendor .p12: wrong --password, or not a PKCS#12 file"
        ) from exc
    if key is None or cert is None:
        raise VendorSignError(
            "the vendor .p12 must hold the certificate and its private key: export both "
            "together (Keychain Access: select the certificate with its key, Export)"
        )
    if not isinstance(key, rsa.RSAPrivateKey):
        raise VendorSignError("the vendor key is not RSA; Apple's MDM vendor certificates are")
    if cert.public_key() != key.public_key():
        raise VendorSignError("the key in the .p12 does not belong to its certificate")
    when = now or datetime.now(UTC)
    if cert.not_valid_after_utc <= when:
        raise VendorSignError(
            f"the vendor certificate expired on {cert.not_valid_after_utc:%Y-%m-%d}: renew "
            "it in the Apple Developer portal (Certificates → MDM CSR)"
        )
    chain = _ordered(cert, extra)
    warnings = _vendor_warnings(cert)
    if chain[-1].issuer != chain[-1].subject:
        missing = (
            'the .p12 carries no issuer chain: Apple\'s "Apple Worldwide Developer Relations" '
            "intermediate and root"
            if len(chain) == 1
            else f"the .p12's chain stops at {chain[-1].subject.rfc4514_string()}: its issuer "
            "and Apple's root"
        )
        warnings.append(
            f"{missing} should be appended, and the portal may refuse the file without them "
            "(put them in the .p12: openssl pkcs12 -export … -certfile apple-chain.pem)"
        )
    der = csr.public_bytes(serialization.Encoding.DER)
    signature = key.sign(der, padding.PKCS1v15(), hashes.SHA256())
    pem_chain = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain)
    request = {
        "PushCertRequestCSR": base64.b64encode(der).decode(),
        "PushCertCertificateChain": pem_chain.decode(),
        "PushCertSignature": base64.b64encode(signature).decode(),
    }
    return VendorRequest(base64.b64encode(plistlib.dumps(request)), warnings)


def _csr(data: bytes) -> x509.CertificateSigningRequest:
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            csr = x509.load_pem_x509_csr(data)
        else:
            csr = x509.load_der_x509_csr(data)
    except ValueError as exc:
        raise VendorSignError(
            "the CSR is neither PEM nor DER: make one with `orchardist pushcert csr`"
        ) from exc
    try:
        valid = csr.is_signature_valid
    except (InvalidSignature, ValueError):
        valid = False
    if not valid:
        raise VendorSignError("the CSR's own signature does not verify: make a new one")
    return csr


def _ordered(cert: x509.Certificate, extra: list[x509.Certificate]) -> list[x509.Certificate]:
    """The vendor certificate, then each issuer in turn (a .p12 keeps no order)."""
    chain = [cert]
    while chain[-1].issuer != chain[-1].subject:
        issuer = next((c for c in extra if c.subject == chain[-1].issuer), None)
        if issuer is None or issuer in chain:
            break
        chain.append(issuer)
    return chain


def _vendor_warnings(cert: x509.Certificate) -> list[str]:
    # Apple names these "MDM Vendor: <organisation>". (1.2.840.113635.100.6.1.14, sometimes
    # quoted as the MDM vendor extension, is Developer ID Installer's, so it is not checked.)
    names = " ".join(str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME))
    if "MDM" in names:
        return []
    return [
        f"'{names}' does not look like an MDM vendor certificate (Apple names them "
        "'MDM Vendor: …'): the portal will refuse a request signed with anything else"
    ]
