"""Identity renewal: before a device's SCEP identity expires, the enrollment profile goes to
it again, with a one-time challenge minted for its UDID, so it enrolls a new identity and
keeps working (mdm/binding.py `renews` moves the enrollment to it).

Why re-delivery: Apple's MDM payload names its identity by IdentityCertificateUUID, and an
installed MDM payload may be updated in place with InstallProfile of a profile with the
same PayloadIdentifier, as long as Topic, ServerURL and CheckInURL do not change (Apple,
device-management mdm/profiles/com.apple.mdm.yaml: "When updating the payload, the value of
this key must not change"; protocol-notes §3e: "replace the profile before any of those
certificates expires, otherwise the device can no longer reach the server"). A device whose
identity has expired can no longer sign a request we accept, so it must happen before.

Once per certificate: the command's UUID is derived from the serial it renews, a pass
skips a certificate whose command exists, and `serve` runs the passes in one process of
all those on the database (a lease: web/background.py).
"""

from __future__ import annotations

import plistlib
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

import structlog

from orchardist.mdm.commands import Command
from orchardist.mdm.enrollment import EnrollmentProfiles
from orchardist.storage import CertificateStore, IssuedCertificate, MdmStorage, NewCommand

log = structlog.get_logger("orchardist.renewal")
# Names the re-delivery of each certificate: uuid5(this, serial in hex).
_NAMESPACE = uuid.UUID("5b0f3c1e-2d7a-4e0b-9c61-6f7e4a2d9b10")
PRIORITY = 10  # before routine work: a device that falls off cannot be asked again


def renewal_command_uuid(serial: int) -> str:
    """The InstallProfile that renews the certificate with this serial."""
    return str(uuid.uuid5(_NAMESPACE, f"{serial:x}")).upper()


def due(cert: IssuedCertificate, before: timedelta, now: datetime) -> bool:
    """Within `before` of expiry, or past half its lifetime if that comes first (so a
    lifetime shorter than `before` does not renew every new certificate at once)."""
    window = min(before, (cert.not_after - cert.not_before) / 2)
    return cert.not_after - window <= now < cert.not_after


class IdentityRenewal:
    def __init__(
        self,
        certificates: CertificateStore,
        store: MdmStorage,
        profiles: EnrollmentProfiles,
        *,
        renew_before: timedelta,
        clock: Callable[[], datetime],
    ) -> None:
        self._certificates = certificates
        self._store = store
        self._profiles = profiles
        self._before = renew_before
        self._clock = clock

    async def run_pass(self) -> list[str]:
        """Queue the re-delivery for every enrolled device whose bound identity is due and
        has none yet; the devices queued for."""
        now = self._clock()
        queued = []
        # A holder killed mid-pass: the next skips what it queued (the command exists); one
        # killed between minting a challenge and queueing leaves that challenge unused.
        for cert in await self._certificates.certificates_expiring(now + self._before):
            if not due(cert, self._before, now):
                continue
            device_id = await self._store.device_bound_to(cert.sha256, "")
            if device_id is None or not await self._live(device_id, cert):
                continue  # a renewed device's old certificate, or an ended enrollment
            command_uuid = renewal_command_uuid(cert.serial)
            if await self._store.command_targets(command_uuid, now, limit=1):
                continue  # re-delivered already (whatever the device answered)
            await self._queue(device_id, cert, command_uuid, now)
            log.info("identity_renewal_queued", device_id=device_id, serial=f"{cert.serial:x}",
                     expires_at=cert.not_after.isoformat())  # fmt: skip
            queued.append(device_id)
        return queued

    async def _live(self, device_id: str, cert: IssuedCertificate) -> bool:
        enrollment = await self._store.get_enrollment(device_id)
        return (
            enrollment is not None
            and enrollment.enrolled
            and enrollment.ended_by is None
            and enrollment.identity_sha256 == cert.sha256
        )

    async def _queue(
        self, device_id: str, cert: IssuedCertificate, command_uuid: str, now: datetime
    ) -> None:
        # The challenge lasts as long as the command may wait: until the old identity
        # expires, after which the device could not fetch the command anyway.
        # Marked as renewing this certificate: only its certificate keeps the queue, not
        # one the device gets by re-enrolling afresh (mdm/binding.py `renews`).
        challenge, _ = await self._profiles.challenges.issue(
            device_id=device_id, expires_at=cert.not_after, renewal_of=cert.serial
        )
        profile = await self._profiles.profile(challenge=challenge)
        command = Command("InstallProfile", {"Payload": profile}, command_uuid)
        body = plistlib.dumps(command.as_plist())
        record = NewCommand(command_uuid, "InstallProfile", body, PRIORITY, cert.not_after)
        await self._store.enqueue(record, [device_id], now)

    async def serve_pass(self, wake: Callable[[], None]) -> None:
        """`serve`'s pass (under a lease, web/background.py): `wake` the pusher when one
        was queued."""
        if await self.run_pass():
            wake()
