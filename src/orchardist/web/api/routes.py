"""The /api/v1 endpoints: devices and commands."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.exceptions import RequestValidationError

from orchardist.accounts.permissions import Actor, Permission, command_permission, without_secrets
from orchardist.audit.safe import command_detail
from orchardist.mdm.commands import CommandError
from orchardist.mdm.dispatch import (
    ConfirmationRequiredError,
    UnknownDevicesError,
    UnknownGroupError,
    queue_command,
)
from orchardist.mdm.reports import result_as_json
from orchardist.mdm.retirement import retire
from orchardist.mdm.summary import device_fields, summarize
from orchardist.push.certificate import PushCertificateError
from orchardist.push.certificate import stored as stored_push_certificate
from orchardist.schema.jsonvalues import from_json
from orchardist.schema.validate import mdm_schema
from orchardist.storage import TargetState
from orchardist.storage.inventory import DeviceInventory
from orchardist.storage.scopes import InGroup
from orchardist.web.api.audited import AuditedRoute, audited, field_of, note, strings
from orchardist.web.api.auth import Reader, check, requires, services_of
from orchardist.web.api.inputs import storable_text
from orchardist.web.api.models import (
    AllDevices,
    CommandQueued,
    CommandRequest,
    CommandState,
    DeviceDetail,
    GroupDevices,
    Inventory,
    InvitationRequest,
    InvitationSent,
    PushCertificateInfo,
    PushRequested,
    Retirement,
    RetireRequest,
)
from orchardist.web.api.refusals import refusals
from orchardist.wiring import Services

router = APIRouter(
    prefix="/api/v1",
    tags=["MDM"],
    dependencies=[Depends(storable_text)],
    route_class=AuditedRoute,
)
NO_DEVICE = (404, "No device with this UDID")
NO_MDM = (503, "MDM is not configured on this server")
ServicesDep = Annotated[Services, Depends(services_of)]


@router.get("/devices/{udid}", response_model=DeviceDetail, responses=refusals(NO_DEVICE))
async def show_device(udid: str, services: ServicesDep, _: Reader) -> DeviceDetail:
    """One device: its enrollment, push state, who enrolled it, and its inventory (what it
    answered to queries) with a summary."""
    enrollment = await services.storage.get_enrollment(udid)
    if enrollment is None:
        raise HTTPException(404, f"no device {udid}")
    facts = enrollment.facts
    known = await services.storage.get_inventory(udid)
    return DeviceDetail(
        **device_fields(enrollment, await services.storage.get_compliance(udid)),
        topic=facts.topic,
        imei=facts.imei,
        meid=facts.meid,
        checked_out_at=enrollment.checked_out_at,
        pushed_at=enrollment.pushed_at,
        push_token_invalid_at=enrollment.token_invalid_at,
        enrolled_by=await _enrolled_by(services, udid),
        inventory=None if known is None else _inventory(known),
        summary=None if known is None else summarize(known, datetime.now(UTC)),
    )


@router.get(
    "/devices/{udid}/commands", response_model=list[CommandState], responses=refusals(NO_DEVICE)
)
async def device_commands(udid: str, services: ServicesDep, actor: Reader) -> list[CommandState]:
    """The device's commands, newest first (the last 100), with its answers."""
    store = services.storage
    if await store.get_enrollment(udid) is None:
        raise HTTPException(404, f"no device {udid}")
    return [command_state(t, actor) for t in await store.device_commands(udid, datetime.now(UTC))]


def _command(path: Mapping[str, str], body: Any) -> tuple[list[str], dict[str, Any]]:
    targets = field_of(body, "targets")
    detail = command_detail(field_of(body, "request_type"), field_of(body, "params"))
    if isinstance(targets, dict):
        group = targets.get("group")
        return ([f"group:{group}"] if isinstance(group, str) else ["all"]), detail
    return strings(targets), detail


@router.post(
    "/commands", response_model=CommandQueued, status_code=201, responses=refusals(write=True)
)
@audited("command.queue", _command)
async def send_command(
    request: Request,
    body: CommandRequest,
    services: ServicesDep,
    actor: Annotated[Actor, requires(Permission.COMMAND)],
) -> CommandQueued:
    """Queue an MDM command for devices, a group's enrolled members (`{"group": NAME}`) or
    every enrolled device (`{"all": true}`), resolved in the database however many, and
    push them. `params` are checked against Apple's schema for the RequestType: 422 names
    each bad key, an unknown device or group, or a destructive command sent without
    `confirm`. The command's own rule applies besides
    the route's: EraseDevice needs admin, DeviceLock operator (docs/console.md)."""
    await check(request, actor, command_permission(body.request_type))
    schema = mdm_schema().commands.get(body.request_type, ())
    now = datetime.now(UTC)
    expires = now + timedelta(seconds=body.expires_in_seconds) if body.expires_in_seconds else None
    try:
        queued = await queue_command(
            services.storage,
            body.request_type,
            from_json(body.params, schema),
            _targets(body),
            now=now,
            confirmed=body.confirm,
            priority=body.priority,
            expires_at=expires,
        )
    except CommandError as exc:
        raise _invalid(exc) from exc
    except (UnknownDevicesError, UnknownGroupError) as exc:
        raise RequestValidationError(
            [{"loc": ["body", "targets"], "msg": str(exc), "type": "value_error"}]
        ) from exc
    except ConfirmationRequiredError as exc:
        raise RequestValidationError(
            [{"loc": ["body", "confirm"], "msg": str(exc), "type": "value_error"}]
        ) from exc
    _wake_pusher(services)
    note(request).detail.update(command_uuid=queued.command.command_uuid, devices=queued.targets)
    return CommandQueued(command_uuid=queued.command.command_uuid, targets=queued.targets)


@router.post(
    "/devices/{udid}/push",
    response_model=PushRequested,
    status_code=202,
    responses=refusals(
        NO_DEVICE, (409, "Not enrolled (no push token), or APNs refused its token"), write=True
    ),
)
@audited("device.push")
async def push_device(
    udid: str, services: ServicesDep, _: Annotated[Actor, requires(Permission.PUSH)]
) -> PushRequested:
    """Wake the device now (it checks in), whether or not commands are waiting."""
    enrollment = await services.storage.get_enrollment(udid)
    if enrollment is None:
        raise HTTPException(404, f"no device {udid}")
    if not enrollment.enrolled or enrollment.token is None:
        raise HTTPException(409, f"{udid} is not enrolled: it has no push token")
    if enrollment.token_invalid_at is not None:
        raise HTTPException(
            409,
            f"APNs refused {udid}'s push token on {enrollment.token_invalid_at:%Y-%m-%d %H:%M} "
            "UTC (the device was probably wiped or unenrolled); it can be pushed again once "
            "it checks in with a new token",
        )
    await services.storage.request_push([udid], datetime.now(UTC))
    _wake_pusher(services)
    has_certificate = services.pki_files().has_push()
    return PushRequested(udid=udid, push_certificate=has_certificate)


@router.post(
    "/devices/{udid}/retire",
    response_model=Retirement,
    responses=refusals(
        NO_DEVICE, (409, "Not enrolled any more: retire it with forget"), NO_MDM, write=True
    ),
)
@audited("device.retire", lambda path, body: ([path["udid"]], {"forget": field_of(body, "forget")}))
async def retire_device(
    request: Request,
    udid: str,
    body: RetireRequest,
    services: ServicesDep,
    _: Annotated[Actor, requires(Permission.RETIRE)],
) -> Retirement:
    """Take a device out of management: RemoveProfile for its enrollment profile is queued
    and its CheckOut ends the enrollment. With `forget` (a device that is gone, or one to
    re-enroll with a new certificate) the enrollment ends now, its queue is cancelled and
    its identity certificate revoked."""
    if not body.confirm:
        raise RequestValidationError(
            [
                {
                    "loc": ["body", "confirm"],
                    "type": "value_error",
                    "msg": "retiring takes the device out of management: confirm it explicitly",
                }
            ]
        )
    if services.enrollment is None:
        raise HTTPException(503, "MDM is not configured on this server")
    retired = await retire(
        services.storage, services.storage, udid, forget=body.forget,
        profile_identifier=services.enrollment.identifier, now=datetime.now(UTC),
    )  # fmt: skip
    if retired is None:
        raise HTTPException(404, f"no device {udid}")
    if not body.forget and retired.command_uuid is None:
        raise HTTPException(
            409, f"{udid} is not enrolled any more ({retired.enrollment.state}): use forget"
        )
    if retired.command_uuid is not None:
        _wake_pusher(services)
        note(request).detail["command_uuid"] = retired.command_uuid
    return Retirement(**device_fields(retired.enrollment), command_uuid=retired.command_uuid)


@router.post(
    "/invitations", response_model=InvitationSent, status_code=201, responses=refusals(write=True)
)
@audited("invitation.send", lambda path, body: (
    strings([field_of(body, "user")]), {k: field_of(body, k) for k in ("email", "sms")}
))  # fmt: skip
async def invite(
    request: Request,
    body: InvitationRequest,
    services: ServicesDep,
    _: Annotated[Actor, requires(Permission.INVITE)],
) -> InvitationSent:
    """A one-time enrollment link for a user, sent by e-mail and/or SMS; `deliveries` say
    how each went (the link is in the answer either way, to pass on by hand)."""
    if not body.email and not body.sms:
        raise HTTPException(422, "give an email address and/or an sms number")
    assert services.inviter is not None
    invited = await services.inviter.invite(body.user, email=body.email, phone=body.sms)
    note(request).detail.update(
        invitation_id=invited.invitation.invitation_id,  # never the link: it is the secret
        delivered={d.channel: d.ok for d in invited.deliveries},
    )
    return InvitationSent(
        invitation_id=invited.invitation.invitation_id,
        link=invited.link,
        expires_at=invited.invitation.expires_at,
        deliveries=[asdict(d) for d in invited.deliveries],
    )


@router.get("/invitations", responses=refusals())
async def list_invitations(services: ServicesDep, _: Reader) -> list[dict[str, Any]]:
    """The latest 100 invitations, newest first, with how each delivery went."""
    return [asdict(i) for i in await services.storage.list_invitations()]


async def _enrolled_by(services: Services, udid: str) -> dict[str, Any] | None:
    session = await services.storage.enrolled_by(udid)
    if session is None:
        return None
    return {"user": session.user, "groups": list(session.groups), "at": session.created_at}


def _targets(body: CommandRequest) -> list[str] | InGroup | None:
    if isinstance(body.targets, AllDevices):
        return None
    if isinstance(body.targets, GroupDevices):
        return InGroup(body.targets.group)
    return body.targets


def _wake_pusher(services: Services) -> None:
    if services.pusher is not None:
        services.pusher.wake()


@router.get(
    "/pushcert",
    response_model=PushCertificateInfo,
    responses=refusals(
        (404, "No push certificate imported yet"),
        (503, "The stored push certificate cannot be read"),
    ),
)
async def push_certificate(services: ServicesDep, _: Reader) -> PushCertificateInfo:
    """The APNs certificate: its topic and expiry, with a warning from 30 days before."""
    try:
        pushed = stored_push_certificate(services.pki_files())
    except PushCertificateError as exc:
        raise HTTPException(503, f"the stored push certificate is unusable: {exc}") from exc
    if pushed is None:
        raise HTTPException(404, "no push certificate yet: see `orchardist pushcert csr`")
    now = datetime.now(UTC)
    return PushCertificateInfo(
        topic=pushed.topic,
        not_after=pushed.not_after,
        days_left=pushed.days_left(now),
        warning=pushed.warning(now),
    )


def _invalid(exc: CommandError) -> RequestValidationError:
    """422 with each bad key named, in FastAPI's usual error shape."""
    location = ["body", "request_type"] if exc.key == "request_type" else ["body", "params"]
    return RequestValidationError(
        [
            {
                "loc": location if problem.path == "request_type" else [*location, problem.path],
                "msg": problem.message,
                "type": "value_error",
            }
            for problem in exc.problems
        ]
    )


def _inventory(known: DeviceInventory) -> Inventory:
    return Inventory(
        updated_at=known.updated_at,
        facts=dict(known.facts),
        facts_seen_at=dict(known.facts_seen_at),
        security=dict(known.security),
        restrictions=dict(known.restrictions),
        apps=[asdict(app) for app in known.apps],
        certificates=[asdict(cert) for cert in known.certificates],
        profiles=[asdict(profile) for profile in known.profiles],
        provisioning_profiles=[asdict(p) for p in known.provisioning_profiles],
    )


def command_state(target: TargetState, reader: Actor) -> CommandState:
    result = None
    if target.result is not None:
        readable = result_as_json(target.result)
        # An unlock token, a bypass code: only for those who may see device secrets.
        result = (
            {"unreadable": True} if readable is None else without_secrets(readable, reader.role)
        )
    return CommandState(
        command_uuid=target.command_uuid,
        udid=target.device_id,
        request_type=target.request_type,
        status=target.status.value,
        created_at=target.created_at,
        answered_at=target.answered_at,
        result=result,
    )
