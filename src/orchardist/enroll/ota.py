"""Over-the-air enrollment (Apple, "Over-the-Air Profile Delivery and Configuration";
protocol-notes §3f): the Profile Service payload, and the two signed device POSTs.

Phase 2: the device POSTs its attributes (UDID, CHALLENGE, …) as CMS SignedData made with
its built-in Apple certificate; the chain must lead to Apple's iPhone Device CA (shipped
in `data/`, public; it expired in 2014 and Apple says to trust it anyway, so time is not
checked there) or to an extra anchor (the virtual devices' test CA). The answer is a
profile with a SCEP payload whose one-time challenge and subject (CN=UDID) bind the
identity to this device.

Phase 3: the same attributes, signed with that new identity (issued by our CA, checked
with time): the answer is the enrollment profile (CA, SCEP, MDM), its payloads encrypted
to that identity.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from orchardist.mdm.plist import MAX_DEVICE_ID
from orchardist.pki import cms
from orchardist.plists import PlistError, load_dictionary

DEVICE_ATTRIBUTES = (
    "UDID", "IMEI", "ICCID", "VERSION", "PRODUCT", "SERIAL", "MAC_ADDRESS_EN0", "DEVICE_NAME",
)  # fmt: skip
APPLE_CHAIN = Path(__file__).with_name("data") / "apple-iphone-device-ca.pem"


class OtaError(ValueError):
    """A device POST we refuse; str(err) is the reason (logged, and sent as a 403)."""


@dataclass(frozen=True)
class DevicePost:
    phase: int  # 2: signed by the device's Apple certificate; 3: by the identity we issued
    udid: str
    challenge: str
    attributes: dict[str, Any]
    signer: x509.Certificate


@functools.cache
def apple_device_anchors() -> tuple[x509.Certificate, ...]:
    return tuple(x509.load_pem_x509_certificates(APPLE_CHAIN.read_bytes()))


def profile_service(
    url: str, challenge: str, *, organization: str, identifier: str
) -> dict[str, Any]:
    """The top-level Profile Service payload that starts phase 2 (not in Apple's schema)."""
    return {
        "PayloadType": "Profile Service",
        "PayloadVersion": 1,
        "PayloadIdentifier": f"{identifier}.profile-service",
        "PayloadUUID": str(uuid.uuid4()).upper(),
        "PayloadDisplayName": f"{organization} device enrollment",
        "PayloadDescription": "Identifies this device to enroll it in device management.",
        "PayloadOrganization": organization,
        "PayloadContent": {
            "URL": url,
            "DeviceAttributes": list(DEVICE_ATTRIBUTES),
            "Challenge": challenge,
        },
    }


def scep_profile(
    scep_url: str, challenge: str, udid: str, ca: x509.Certificate, *, identifier: str
) -> dict[str, Any]:
    """The phase-2 answer: trust our CA, get an identity named after the device."""

    def common(kind: str, suffix: str, name: str) -> dict[str, Any]:
        return {"PayloadType": kind, "PayloadVersion": 1,
                "PayloadIdentifier": f"{identifier}.ota.{suffix}",
                "PayloadUUID": str(uuid.uuid4()).upper(), "PayloadDisplayName": name}  # fmt: skip

    return {
        **common("Configuration", "identity", "Enrollment identity"),
        "PayloadIdentifier": f"{identifier}.ota",
        "PayloadContent": [
            {**common("com.apple.security.root", "ca", "Orchardist CA"),
             "PayloadContent": ca.public_bytes(Encoding.DER)},
            {**common("com.apple.security.scep", "scep", "Enrollment identity"),
             "PayloadContent": {
                 "URL": scep_url, "Name": "Orchardist", "Challenge": challenge,
                 "Subject": [[["CN", udid]]], "Keysize": 2048, "Key Type": "RSA",
                 "Key Usage": 5, "Retries": 3, "RetryDelay": 10,
             }},
        ],
    }  # fmt: skip


def read_device_post(
    body: bytes, *, ours: x509.Certificate, extra_anchors: Sequence[x509.Certificate] = ()
) -> DevicePost:
    """Verify a phase-2 or phase-3 POST and read its attributes; OtaError otherwise."""
    try:
        signed = cms.verify(body)
    except cms.CmsError as exc:
        raise OtaError(f"not a signed attributes message: {exc}") from exc
    signer = signed.signer
    if _issued_by(signer, ours):
        try:  # our identities: the chain and their validity are checked
            cms.verify(body, trusted=[ours])
        except cms.CmsError as exc:
            raise OtaError(f"the enrollment identity is not valid: {exc}") from exc
        phase = 3
    elif _chains_to(signer, signed.certificates, [*apple_device_anchors(), *extra_anchors]):
        phase = 2
    else:
        raise OtaError("the attributes are not signed by a device certificate we trust")
    try:
        attributes = load_dictionary(signed.content)
    except PlistError as exc:
        raise OtaError(f"the signed content is not a property list dictionary: {exc}") from exc
    udid, challenge = attributes.get("UDID"), attributes.get("CHALLENGE")
    if not isinstance(udid, str) or not udid or not isinstance(challenge, str) or not challenge:
        raise OtaError("the attributes lack UDID or CHALLENGE")
    if len(udid) > MAX_DEVICE_ID:
        raise OtaError(f"the UDID is longer than {MAX_DEVICE_ID} characters")
    if phase == 3 and _common_name(signer) != udid:
        raise OtaError("the enrollment identity was issued to another device")
    return DevicePost(phase, udid, challenge, attributes, signer)


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _chains_to(
    signer: x509.Certificate,
    carried: Sequence[x509.Certificate],
    anchors: Sequence[x509.Certificate],
) -> bool:
    """signer → (one carried or anchor intermediate) → anchor, signatures only: Apple's
    device CA expired in 2014 and is still what devices are signed under."""
    for anchor in anchors:
        if _issued_by(signer, anchor):
            return True
    return any(
        _issued_by(signer, middle) and any(_issued_by(middle, a) for a in anchors)
        for middle in [*carried, *anchors]
        if middle != signer
    )


def _common_name(cert: x509.Certificate) -> str | None:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else None
