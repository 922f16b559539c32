"""What the console does to devices, the same for one device (its page's buttons) as for
many (the device list's selection): one function per action, each taking a list of UDIDs.

Each goes the way POST /api/v1/commands goes: the command's own permission
(`command_permission`: EraseDevice needs admin whatever the route), `queue_command` for
one command to every selected device, an audit entry `command.queue` with the API's
detail, then the pusher is woken. Unknown devices are refused with a page naming them
before anything is queued; a refusal changes nothing."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import structlog
from fastapi import Request

from orchardist.accounts.permissions import Actor, Permission, command_permission
from orchardist.audit import Actor as AuditActor
from orchardist.audit.safe import command_detail
from orchardist.mdm import builders
from orchardist.mdm.dispatch import Queued, UnknownDevicesError, queue_command
from orchardist.storage.audit import Outcome
from orchardist.web.console.session import ConsoleRefusalError, check, services_of
from orchardist.wiring import Services

log = structlog.get_logger("orchardist.console")
SHOWN = 10  # devices named in a refusal; the rest are counted
# What the device list's selection form offers: (value, label, the permission it needs,
# the same as the device page's button for it).
CHOICES = (
    ("query", "Query inventory", command_permission("DeviceInformation")),
    ("push", "Push now", Permission.PUSH),
    ("lock", "Lock", command_permission("DeviceLock")),
    ("clear_passcode", "Clear passcode", command_permission("ClearPasscode")),
    ("erase", "Erase", command_permission("EraseDevice")),
)


async def queue(
    request: Request,
    actor: Actor,
    udids: Sequence[str],
    request_type: str,
    params: dict[str, Any],
    *,
    confirmed: bool = False,
) -> Queued:
    """One command for these devices, queued and recorded as POST /api/v1/commands does."""
    await check(request, actor, command_permission(request_type))
    services = services_of(request)
    try:
        queued = await queue_command(
            services.storage, request_type, params, udids, now=datetime.now(UTC),
            confirmed=confirmed,
        )  # fmt: skip
    except UnknownDevicesError as exc:
        raise _unknown(exc.device_ids) from exc
    detail = command_detail(request_type, params)
    detail.update(command_uuid=queued.command.command_uuid, devices=queued.targets)
    await services.audit.record(_audit(actor), "command.queue", udids, detail=detail)
    log.info("console_command", request_type=request_type, devices=queued.targets, by=actor.name)
    _wake(services)
    return queued


async def query(request: Request, actor: Actor, udids: Sequence[str]) -> list[Queued]:
    """Query now: what `orchardist device query` asks for (builders.INVENTORY), one
    command each. An unknown device stops the first one, so nothing is queued."""
    return [
        await queue(request, actor, udids, *builders.QUERIES[what]) for what in builders.INVENTORY
    ]


async def erase(
    request: Request, actor: Actor, udids: Sequence[str], typed: str, expected: str, *, how: str
) -> Queued:
    """EraseDevice, only when the person typed `expected` (a device's name, or "ERASE 3
    devices"); otherwise a failed audit entry and a page saying what to type: "To erase,
    {how}: {expected}"."""
    await check(request, actor, command_permission("EraseDevice"))
    if " ".join(typed.split()) != " ".join(expected.split()):
        await services_of(request).audit.record(
            _audit(actor), "command.queue", udids, Outcome.FAILED,
            {"request_type": "EraseDevice", "devices": len(udids)},
            reason=f"{expected!r} was not typed to confirm",
        )  # fmt: skip
        raise ConsoleRefusalError(
            422, "Not erased", f"To erase, {how}: {expected}. Nothing was sent."
        )
    return await queue(request, actor, udids, *builders.erase_device(), confirmed=True)


async def clear_passcode(request: Request, actor: Actor, udids: Sequence[str]) -> list[Queued]:
    """ClearPasscode carries each device's own UnlockToken: one command per device, none
    queued unless every device sent its token."""
    await check(request, actor, command_permission("ClearPasscode"))
    storage = services_of(request).storage
    enrollments = {udid: await storage.get_enrollment(udid) for udid in udids}
    if unknown := [udid for udid, found in enrollments.items() if found is None]:
        raise _unknown(unknown)
    tokens = {udid: found.unlock_token for udid, found in enrollments.items() if found}
    if missing := [udid for udid, token in tokens.items() if token is None]:
        raise ConsoleRefusalError(
            409, "No unlock token",
            f"Never sent an UnlockToken, so the passcode cannot be cleared: {_named(missing)}. "
            "Nothing was sent.",
        )  # fmt: skip
    return [
        await queue(request, actor, [udid], *builders.clear_passcode(token))
        for udid, token in tokens.items()
        if token is not None
    ]


async def push(request: Request, actor: Actor, udids: Sequence[str]) -> None:
    """Push now: wake these devices, recorded as POST /api/v1/devices/{udid}/push is.
    Devices that are not enrolled have no push token: refused, none pushed."""
    await check(request, actor, Permission.PUSH)
    services = services_of(request)
    known = set(await services.storage.device_ids(udids))
    if unknown := [udid for udid in udids if udid not in known]:
        raise _unknown(unknown)
    enrolled = set(await services.storage.device_ids(udids, enrolled=True))
    if not_enrolled := [udid for udid in udids if udid not in enrolled]:
        raise ConsoleRefusalError(
            409, "Not pushed",
            f"Not enrolled, so no push token: {_named(not_enrolled)}. Nothing was pushed.",
        )  # fmt: skip
    await services.storage.request_push(udids, datetime.now(UTC))
    await services.audit.record(_audit(actor), "device.push", udids)
    _wake(services)


def erase_phrase(count: int) -> str:
    """What erasing `count` selected devices asks to be typed."""
    return f"ERASE {count} device" + ("" if count == 1 else "s")


def _unknown(udids: Sequence[str]) -> ConsoleRefusalError:
    return ConsoleRefusalError(
        422, "No such device",
        f"There is no device {_named(udids)}. Nothing was sent: reload the list and select "
        "again.",
    )  # fmt: skip


def _named(udids: Sequence[str]) -> str:
    shown = ", ".join(u if len(u) <= 64 else f"{u[:63]}…" for u in udids[:SHOWN])
    return shown + (f" and {len(udids) - SHOWN} more" if len(udids) > SHOWN else "")


def _audit(actor: Actor) -> AuditActor:
    return AuditActor.account(actor.name)


def _wake(services: Services) -> None:
    if services.pusher is not None:
        services.pusher.wake()
