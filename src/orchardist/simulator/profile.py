"""Read an enrollment profile the way a device does: what to enroll with and where."""

from __future__ import annotations

import plistlib
import ssl
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from orchardist.pki import cms


class ProfileError(ValueError):
    """Not an enrollment profile we can use; str(err) says why."""


@dataclass(frozen=True)
class EnrollmentPlan:
    scep_url: str
    challenge: str | None
    key_size: int
    checkin_url: str
    server_url: str
    topic: str
    anchors: tuple[x509.Certificate, ...]  # CA certificates the profile installs


def read_profile(data: bytes) -> EnrollmentPlan:
    body = data
    if not data.lstrip().startswith((b"<?xml", b"<plist", b"bplist")):
        try:
            body = cms.verify(data).content  # a device checks the signer; we only unwrap
        except cms.CmsError as exc:
            raise ProfileError(f"neither a plist nor a signed profile: {exc}") from exc
    try:
        profile = plistlib.loads(body)
        payloads: list[dict[str, Any]] = profile["PayloadContent"]
        by_type = {payload["PayloadType"]: payload for payload in payloads}
        scep = by_type["com.apple.security.scep"]["PayloadContent"]
        mdm = by_type["com.apple.mdm"]
        anchors = tuple(
            x509.load_der_x509_certificate(p["PayloadContent"])
            for p in payloads
            if p["PayloadType"] == "com.apple.security.root"
        )
        return EnrollmentPlan(
            scep_url=scep["URL"],
            challenge=scep.get("Challenge"),
            key_size=int(scep.get("Keysize", 2048)),
            checkin_url=mdm.get("CheckInURL", mdm["ServerURL"]),
            server_url=mdm["ServerURL"],
            topic=mdm["Topic"],
            anchors=anchors,
        )
    except (KeyError, TypeError, ValueError, plistlib.InvalidFileException) as exc:
        raise ProfileError(f"not an enrollment profile: {exc!r}") from exc


def tls_trust(plan: EnrollmentPlan) -> ssl.SSLContext | bool:
    """What the device trusts for HTTPS — the server, app manifests and downloads: the CA
    certificates its enrollment profile installs, or the system's when it has none."""
    if not plan.anchors:
        return True
    pem = "".join(cert.public_bytes(Encoding.PEM).decode() for cert in plan.anchors)
    return ssl.create_default_context(cadata=pem)
