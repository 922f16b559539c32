"""A CSR laid out as micromdm/scep's Go client writes it, built byte by byte.

Go's x509util puts the challengePassword attribute after the extensionRequest. A challenge of
16 characters or fewer makes that attribute the shorter encoding, so the attributes SET is
not in DER order (X.690 §11.6) — which is the point of this vector.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from orchardist.pki.der import oid, sequence, tlv

SHA256_WITH_RSA = "1.2.840.113549.1.1.11"
EXTENSION_REQUEST = "1.2.840.113549.1.9.14"
CHALLENGE_PASSWORD = "1.2.840.113549.1.9.7"
SUBJECT_ALT_NAME = "2.5.29.17"
COMMON_NAME = "2.5.4.3"


def go_style_csr(key: rsa.RSAPrivateKey, common_name: str, challenge: str, dns_name: str) -> bytes:
    """CertificationRequest (RFC 2986 §4) with [extensionRequest, challengePassword] in that
    order, signed with `key` over exactly these bytes."""
    subject = sequence(  # Name: one RDN, one AttributeTypeAndValue
        tlv(0x31, sequence(oid(COMMON_NAME), tlv(0x0C, common_name.encode())))
    )
    spki = key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    general_names = sequence(tlv(0x82, dns_name.encode()))  # [2] dNSName
    extensions = sequence(sequence(oid(SUBJECT_ALT_NAME), tlv(0x04, general_names)))
    extension_request = sequence(oid(EXTENSION_REQUEST), tlv(0x31, extensions))
    challenge_password = sequence(oid(CHALLENGE_PASSWORD), tlv(0x31, tlv(0x0C, challenge.encode())))
    attributes = tlv(0xA0, extension_request + challenge_password)  # as sent: not sorted
    info = sequence(tlv(0x02, b"\x00"), subject, spki, attributes)
    signature = key.sign(info, padding.PKCS1v15(), hashes.SHA256())
    algorithm = sequence(oid(SHA256_WITH_RSA), b"\x05\x00")
    return sequence(info, algorithm, tlv(0x03, b"\x00" + signature))
