"""The over-the-air enrollment a user walks: sign in with the directory, consent, then the
device's two signed POSTs (see `orchardist.enroll.ota`).

Each step checks the one before: the Profile Service challenge exists only after the user
consented, phase 3 needs the phase-2 session of the same UDID, and every token and
challenge is stored hashed, works once and expires. A declined enrollment leaves nothing.
Directory groups become static groups named `directory:<group>` on the device, so a
profile assigned to `directory:sales` reaches every device enrolled by someone in sales.
"""

from __future__ import annotations

import dataclasses
import hashlib
import plistlib
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from orchardist.enroll.directory import Directory, DirectoryUser
from orchardist.enroll.ota import (
    OtaError,
    profile_service,
    read_device_post,
    scep_profile,
)
from orchardist.mdm.enrollment import EnrollmentSettings, enrollment_profile
from orchardist.pki import cms
from orchardist.pki.ca import fingerprint_sha256
from orchardist.profiles import envelope
from orchardist.scep.challenges import ChallengeVerifier
from orchardist.storage import CertificateStatus, CertificateStore, OtaSession, OtaSessionStore
from orchardist.storage.profiles import ProfileStore

SESSION_TTL = timedelta(minutes=30)
GROUP_PREFIX = "directory:"


class FlowStore(OtaSessionStore, ProfileStore, CertificateStore, Protocol):
    """The storage roles the flow uses."""


@dataclass(frozen=True)
class SignedIn:
    token: str  # goes into the confirmation page's forms
    user: DirectoryUser
    profiles: list[str]  # what their groups will bring, by display name


class OtaEnrollment:
    def __init__(
        self,
        directory: Directory | None,
        store: FlowStore,
        challenges: ChallengeVerifier,
        settings: EnrollmentSettings,
        ca: x509.Certificate,
        signer: tuple[x509.Certificate, rsa.RSAPrivateKey],
        *,
        device_anchors: Sequence[x509.Certificate] = (),
        clock: Callable[[], datetime],
    ) -> None:
        self.directory, self.store, self.challenges = directory, store, challenges
        self.settings, self.ca, self.signer = settings, ca, signer
        self.device_anchors, self.clock = tuple(device_anchors), clock

    @property
    def ota_url(self) -> str:
        return f"{self.settings.base_url}/enroll/ota"

    async def sign_in(self, login: str, password: str) -> SignedIn:
        """DirectoryError when refused (its message is for the user)."""
        if self.directory is None:
            raise OtaError("enrollment with a directory login is not set up on this server")
        user = await self.directory.authenticate(login, password)
        token, now = secrets.token_urlsafe(24), self.clock()
        await self.store.save_ota_session(
            OtaSession(_digest(token), user.login, user.groups, "signed-in", now, now + SESSION_TTL)
        )
        return SignedIn(token, user, await self._profiles_for(user.groups))

    async def invitation_link(self, user: str, ttl: timedelta) -> tuple[str, datetime]:
        """A one-time link that stands in for the sign-in: it opens the review page for
        `user` (their groups read with the service account when a directory is set up)."""
        found = await self.directory.lookup(user) if self.directory is not None else None
        groups = found.groups if found is not None else ()
        token, now = secrets.token_urlsafe(24), self.clock()
        await self.store.save_ota_session(
            OtaSession(_digest(token), user, groups, "signed-in", now, now + ttl)
        )
        return f"{self.settings.base_url}/enroll?invite={token}", now + ttl

    async def invited(self, token: str) -> SignedIn:
        """The review for an invitation link; OtaError when unknown, used or expired."""
        session = await self._session(token, "signed-in")
        user = DirectoryUser(dn="", login=session.user, display_name=session.user,
                             email=None, groups=session.groups)  # fmt: skip
        return SignedIn(token, user, await self._profiles_for(session.groups))

    async def consent(self, token: str) -> bytes:
        """The signed Profile Service payload; OtaError for an unknown or used session."""
        session = await self._session(token, "signed-in")
        challenge = secrets.token_urlsafe(24)
        await self.store.save_ota_session(
            dataclasses.replace(session, phase="consented", challenge_sha256=_digest(challenge))
        )
        service = profile_service(self.ota_url, challenge, organization=self.settings.organization,
                                  identifier=self.settings.identifier)  # fmt: skip
        return self._signed(service)

    async def decline(self, token: str) -> None:
        await self.store.delete_ota_session(_digest(token))

    async def device_post(self, body: bytes) -> bytes:
        """Phase 2 or 3; OtaError with the reason when refused (nothing changes then)."""
        post = read_device_post(body, ours=self.ca, extra_anchors=self.device_anchors)
        session = await self.store.ota_session(challenge_sha256=_digest(post.challenge))
        now = self.clock()
        if session is None or session.expires_at <= now:
            raise OtaError("unknown or expired enrollment challenge: sign in again")
        if post.phase == 2:
            if session.phase != "consented":
                raise OtaError("this enrollment challenge was used already: sign in again")
            scep_challenge, _ = await self.challenges.issue(device_id=post.udid)
            await self.store.save_ota_session(
                dataclasses.replace(session, phase="identified", device_id=post.udid)
            )
            scep_url = f"{self.settings.base_url}/scep"
            return self._signed(scep_profile(scep_url, scep_challenge, post.udid, self.ca,
                                             identifier=self.settings.identifier))  # fmt: skip
        if session.phase != "identified" or session.device_id != post.udid:
            raise OtaError("phase 3 without the phase 2 of this device: sign in again")
        await self._refuse_unrecorded(post.signer)
        scep_challenge, _ = await self.challenges.issue(device_id=post.udid)
        final = enrollment_profile(
            dataclasses.replace(self.settings, challenge=scep_challenge), self.ca
        )
        await self.store.add_to_groups(post.udid, [GROUP_PREFIX + g for g in session.groups])
        await self.store.save_ota_session(dataclasses.replace(session, phase="enrolled"))
        return self._signed(envelope.encrypt_for(final, post.signer))

    async def _refuse_unrecorded(self, identity: x509.Certificate) -> None:
        """Phase 3's identity as /mdm takes it: one our records hold and have not revoked
        (the chain and dates alone would let a revoked identity fetch a fresh challenge)."""
        record = await self.store.get_certificate(identity.serial_number)
        if record is None or record.sha256 != fingerprint_sha256(identity):
            raise OtaError("the enrollment identity was not issued by this server")
        if record.status != CertificateStatus.VALID:
            raise OtaError("the enrollment identity is revoked")

    async def _session(self, token: str, phase: str) -> OtaSession:
        session = await self.store.ota_session(token_sha256=_digest(token))
        if session is None or session.expires_at <= self.clock() or session.phase != phase:
            raise OtaError("this sign-in has expired or was used: sign in again")
        return session

    async def _profiles_for(self, groups: Sequence[str]) -> list[str]:
        names = {GROUP_PREFIX + g for g in groups}
        found = []
        for assignment in await self.store.assignments():
            if assignment.kind.value == "all" or assignment.target in names:
                stored = await self.store.get_profile(assignment.identifier)
                if stored is not None and stored.display_name not in found:
                    found.append(stored.display_name)
        return found

    def _signed(self, profile: dict[str, Any]) -> bytes:
        cert, key = self.signer
        return cms.sign(plistlib.dumps(profile), cert, key, extra_certs=[self.ca])


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()
