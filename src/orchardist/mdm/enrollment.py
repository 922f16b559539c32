"""The enrollment profile: the CA to trust, a SCEP payload for the device identity, and the
MDM payload that uses it (Apple, "MDM" and "SCEP" payloads; Configuration Profile Reference).
"""

from __future__ import annotations

import dataclasses
import hashlib
import plistlib
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding

from orchardist.pki import cms
from orchardist.scep.challenges import ChallengeVerifier
from orchardist.schema.validate import Problem, mdm_schema, validate_dictionary
from orchardist.storage import ChallengeOutcome, EnrollmentTokenStore

# Every MDM right (Apple, "MDM payload" AccessRights): the sum of bits 1 … 4096.
ALL_ACCESS_RIGHTS = 8191


@dataclass(frozen=True)
class EnrollmentSettings:
    base_url: str  # https://host:port, as devices reach the server
    topic: str
    organization: str
    challenge: str = ""  # set per profile
    identifier: str = "org.orchardist.enrollment"


def enrollment_profile(settings: EnrollmentSettings, ca: x509.Certificate) -> dict[str, Any]:
    scep_uuid = _uuid()
    root = {
        **_common("com.apple.security.root", f"{settings.identifier}.ca", "Orchardist CA"),
        "PayloadContent": ca.public_bytes(Encoding.DER),
    }
    scep = {
        **_common("com.apple.security.scep", f"{settings.identifier}.scep", "Device identity"),
        "PayloadUUID": scep_uuid,
        "PayloadContent": {
            "URL": f"{settings.base_url}/scep",
            "Name": "Orchardist",
            "Subject": [[["O", settings.organization]], [["CN", "Orchardist device identity"]]],
            "Challenge": settings.challenge,
            "Keysize": 2048,
            "Key Type": "RSA",  # the spaced spelling is Apple's (see protocol notes §3h)
            "Key Usage": 5,  # signing and encryption
            "Retries": 3,
            "RetryDelay": 10,
        },
    }
    mdm = {
        **_common("com.apple.mdm", f"{settings.identifier}.mdm", "Device management"),
        "IdentityCertificateUUID": scep_uuid,
        "Topic": settings.topic,
        "ServerURL": f"{settings.base_url}/mdm/connect",
        "CheckInURL": f"{settings.base_url}/mdm/checkin",
        "SignMessage": True,
        "AccessRights": ALL_ACCESS_RIGHTS,
        "CheckOutWhenRemoved": True,
    }
    return {
        **_common(
            "Configuration", settings.identifier, f"{settings.organization} device management"
        ),
        "PayloadOrganization": settings.organization,
        "PayloadDescription": "Enrolls this device in Orchardist device management.",
        "PayloadContent": [root, scep, mdm],
    }


def profile_problems(profile: dict[str, Any]) -> list[Problem]:
    """Each payload's keys against Apple's schema for its PayloadType. The common keys
    (PayloadType, PayloadUUID…) are not in those files, so unknown keys are let through."""
    problems: list[Problem] = []
    for index, payload in enumerate(profile.get("PayloadContent", [])):
        keys = mdm_schema().profiles.get(payload.get("PayloadType", ""))
        if keys is None:
            problems.append(Problem(f"PayloadContent[{index}]", "unknown PayloadType"))
            continue
        problems += validate_dictionary(payload, keys, f"PayloadContent[{index}]", strict=False)
    return problems


def _common(payload_type: str, identifier: str, name: str) -> dict[str, Any]:
    return {
        "PayloadType": payload_type,
        "PayloadVersion": 1,
        "PayloadIdentifier": identifier,
        "PayloadUUID": _uuid(),
        "PayloadDisplayName": name,
    }


def _uuid() -> str:
    return str(uuid.uuid4()).upper()


class EnrollmentProfiles:
    """Signed enrollment profiles, and the one-time links that hand them out."""

    def __init__(
        self,
        settings: EnrollmentSettings,
        ca: x509.Certificate,
        signer: tuple[x509.Certificate, rsa.RSAPrivateKey],
        challenges: ChallengeVerifier,
        tokens: EnrollmentTokenStore,
        *,
        link_ttl: timedelta,
        clock: Callable[[], datetime],
    ) -> None:
        self._settings = settings
        self._ca = ca
        self._signer = signer
        self._challenges = challenges
        self._tokens = tokens
        self._link_ttl = link_ttl
        self._clock = clock

    @property
    def identifier(self) -> str:
        """The enrollment profile's PayloadIdentifier: RemoveProfile with it unenrolls."""
        return self._settings.identifier

    @property
    def challenges(self) -> ChallengeVerifier:
        return self._challenges

    async def profile(self, *, signed: bool = True, challenge: str | None = None) -> bytes:
        """A profile with `challenge`, or a fresh one-time challenge; signed with the server
        certificate (what iOS shows as "Verified") unless `signed` is False."""
        if challenge is None:
            challenge, _ = await self._challenges.issue()
        profile = enrollment_profile(
            dataclasses.replace(self._settings, challenge=challenge), self._ca
        )
        problems = profile_problems(profile)
        if problems:  # a bug in this module, never the admin's input
            raise ValueError(f"the profile does not match Apple's schema: {problems[0]}")
        body = plistlib.dumps(profile)
        if not signed:
            return body
        cert, key = self._signer
        return cms.sign(body, cert, key, extra_certs=[self._ca])

    async def new_link(self) -> tuple[str, datetime]:
        """A one-time URL that serves a profile, and when it stops working."""
        token = secrets.token_urlsafe(24)
        expires_at = self._clock() + self._link_ttl
        await self._tokens.add_enrollment_token(_digest(token), expires_at)
        return f"{self._settings.base_url}/mdm/enroll?token={token}", expires_at

    async def redeem(self, token: str) -> ChallengeOutcome:
        return await self._tokens.consume_enrollment_token(_digest(token), self._clock())


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
