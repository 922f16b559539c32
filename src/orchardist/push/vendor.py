"""Sign a push-certificate CSR with an MDM vendor certificate, for Apple's portal.

Organisations enrolled as MDM vendors (Apple Developer Enterprise Program) can sign their
own push-certificate requests instead of going through a vendor. The portal
(identity.apple.com/pushcert) takes the base64 of an XML plist:

- `PushCertRequestCSR`: base64 of the CSR's DER,
- `PushCertCertificateChain`: PEM of the vendor certificate, then its issuers,
- `PushCertSignature`: base64 of an RSA PKCS#1 v1.5 SHA-256 signature by the vendor key
  over the CSR's DER.

(The format of MicroMDM's `mdmctl mdmcert` and other open implementations; protocol-notes
§3c.) No library does this; it is a few lines on `cryptography`.
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

# Apple marks MDM vendor (CSR signing) certificates with this extension.
MDM_VENDOR_OID = x509.ObjectIdentifier("1.2.840.113635.100.6.1.14")


class VendorSignError(ValueError):
    """The request cannot be signed; str(err) says what to do."""


@dataclass(frozen=True)
class VendorRequest:
    data: bytes  # the file to upload
    warnings: list[str] = field(default_factory=list)


def vendor_sign(
    csr_data: bytes, vendor_p12: bytes, password: bytes | None, *, now: datetime | None = None
) -> VendorRequest:
    csr = _csr(csr_data)
    try:
        key, cert, chain = pkcs12.load_key_and_certificates(vendor_p12, password)
    except ValueError as exc:
        raise VendorSignError(
            "cannot open the vendor .p12: wrong --password, or not a PKCS#12 file"
        ) from exc
    if key is None or cert is None:
        raise VendorSignError("the vendor .p12 must hold the certificate and its private key")
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
    warnings = _vendor_warnings(cert)
    if not chain:
        warnings.append(
            "the .p12 carries no issuer chain: append Apple's WWDR intermediate and root "
            "(PEM) if the portal refuses the file"
        )
    der = csr.public_bytes(serialization.Encoding.DER)
    signature = key.sign(der, padding.PKCS1v15(), hashes.SHA256())
    pem_chain = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in [cert, *chain])
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


def _vendor_warnings(cert: x509.Certificate) -> list[str]:
    names = " ".join(str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME))
    try:
        cert.extensions.get_extension_for_oid(MDM_VENDOR_OID)
        return []
    except x509.ExtensionNotFound:
        pass
    if "MDM" in names:
        return []
    return [
        f"'{names}' does not look like an MDM vendor certificate (no Apple MDM extension "
        "1.2.840.113635.100.6.1.14): Apple's portal will refuse a request signed with it"
    ]
