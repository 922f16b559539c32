"""An administrator retires a device: its enrollment ends, by the device's hand or the
server's (`orchardist device retire`, POST /api/v1/devices/{udid}/retire)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from orchardist.mdm.builders import remove_profile
from orchardist.mdm.dispatch import queue_command
from orchardist.storage import CertificateStore, EndedBy, Enrollment, MdmStorage


@dataclass(frozen=True)
class Retired:
    enrollment: Enrollment  # as it is now
    command_uuid: str | None  # the RemoveProfile queued, when not forgotten


async def retire(
    store: MdmStorage,
    certificates: CertificateStore,
    device_id: str,
    *,
    forget: bool,
    profile_identifier: str,
    now: datetime,
) -> Retired | None:
    """Not `forget`: RemoveProfile for the enrollment profile (`profile_identifier`) is
    queued; the device unenrolls at its next check-in and its CheckOut ends the enrollment
    (the profile asks for CheckOutWhenRemoved). `forget` (a device that is gone, or one to
    re-enroll with a new certificate): the enrollment ends now, its queue is cancelled and
    its certificate revoked so that it cannot come back with it. None when unknown."""
    enrollment = await store.get_enrollment(device_id)
    if enrollment is None:
        return None
    if not forget:
        if enrollment.ended_by is not None:
            return Retired(enrollment, None)  # nothing left to remove
        queued = await queue_command(
            store, *remove_profile(profile_identifier), [device_id], now=now
        )
        return Retired(enrollment, queued.command.command_uuid)
    await store.check_out(device_id, now, EndedBy.RETIRED)
    bound = await certificates.certificate_by_sha256(enrollment.identity_sha256)
    if bound is not None:
        await certificates.revoke_certificate(bound.serial, now)
    forgotten = await store.get_enrollment(device_id)
    assert forgotten is not None
    return Retired(forgotten, None)
