"""/console/devices: the device list (paged by keyset, searched and filtered in the database,
as GET /api/v1/devices is) and a device's page (identity, inventory, compliance, profiles,
commands with their results) with its actions: lock, erase, clear passcode, query, push.

Actions go through the same services as the API: `queue_command` and the pusher, each
checked by the permission gate and written to the audit log."""

from __future__ import annotations

import plistlib
from datetime import UTC, datetime
from typing import Annotated, Any

import structlog
from fastapi import Request, Response
from fastapi.responses import RedirectResponse

from orchardist.accounts.permissions import Actor, Permission
from orchardist.audit import Actor as AuditActor
from orchardist.mdm import builders
from orchardist.mdm.device_list import CursorError, decode_cursor, encode_cursor, os_version_filter
from orchardist.mdm.dispatch import queue_command
from orchardist.mdm.reports import result_as_json
from orchardist.mdm.summary import device_fields, summarize
from orchardist.storage import Enrollment
from orchardist.storage.audit import Outcome
from orchardist.storage.compliance import ComplianceStatus
from orchardist.storage.listing import DEVICE_STATES, DeviceFilters, DeviceSort
from orchardist.web.console.forms import form_of
from orchardist.web.console.session import (
    ConsoleRefusalError,
    CurrentAccount,
    page_router,
    require,
    services_of,
)
from orchardist.web.console.templating import render
from orchardist.wiring import Services

log = structlog.get_logger("orchardist.console")
router = page_router()
PAGE_SIZE = 50
FILTERS = ("q", "model", "os", "compliance", "state", "group")


@router.get("/devices")
async def devices_page(request: Request, user: CurrentAccount) -> Response:
    params = {k: request.query_params.get(k, "").strip()[:255] for k in (*FILTERS, "sort")}
    descending = request.query_params.get("order") == "desc"
    sort = DeviceSort(params["sort"]) if params["sort"] in set(DeviceSort) else DeviceSort.NAME
    filters, problem = _filters(params)
    after = None
    cursor = request.query_params.get("cursor")
    if cursor and problem is None:
        try:
            after = decode_cursor(cursor, sort, descending)
        except CursorError as exc:
            problem = str(exc)
    storage = services_of(request).storage
    page = None
    if problem is None:
        page = await storage.list_devices(
            filters, sort=sort, descending=descending, after=after, limit=PAGE_SIZE
        )
    rows = [] if page is None else [device_fields(d.enrollment, d.compliance) for d in page.devices]
    following = None
    if page is not None and page.next is not None:
        following = encode_cursor(sort, descending, page.next)
    context = {
        "title": "Devices",
        "rows": rows,
        "params": params,
        "sort": sort.value,
        "descending": descending,
        "sorts": [s.value for s in DeviceSort],
        "states": DEVICE_STATES,
        "next_cursor": following,
        "problem": problem,
        "done": request.query_params.get("done"),
    }
    return render(request, "devices.html", context, status_code=422 if problem else 200)


def _filters(params: dict[str, str]) -> tuple[DeviceFilters, str | None]:
    try:
        os_version = os_version_filter(params["os"]) if params["os"] else None
    except ValueError as exc:
        return DeviceFilters(), f"OS version: {exc}"
    compliance = None
    if params["compliance"]:
        if params["compliance"] not in set(ComplianceStatus):
            return DeviceFilters(), "compliance: compliant, non_compliant or unknown"
        compliance = ComplianceStatus(params["compliance"])
    if params["state"] and params["state"] not in DEVICE_STATES:
        return DeviceFilters(), f"state: one of {', '.join(DEVICE_STATES)}"
    filters = DeviceFilters(
        search=params["q"] or None,
        model=params["model"] or None,
        os_version=os_version,
        group=params["group"] or None,
        compliance=compliance,
        state=params["state"] or None,
    )
    return filters, None


@router.get("/devices/{udid}")
async def device_page(request: Request, udid: str, user: CurrentAccount) -> Response:
    services = services_of(request)
    enrollment = await _enrollment(services, udid)
    now = datetime.now(UTC)
    storage = services.storage
    inventory = await storage.get_inventory(udid)
    compliance = await storage.get_compliance(udid)
    commands = await storage.device_commands(udid, now, limit=25)
    history = [
        {
            "command_uuid": t.command_uuid,
            "request_type": t.request_type,
            "status": t.status.value,
            "created_at": t.created_at,
            "answered_at": t.answered_at,
            "result": readable_result(t.result),
        }
        for t in commands
    ]
    context = {
        "title": enrollment.facts.device_name or udid,
        "device": device_fields(enrollment, compliance),
        "enrollment": enrollment,
        "summary": None if inventory is None else summarize(inventory, now),
        "inventory": inventory,
        "profiles": await storage.device_profiles(device_id=udid),
        "commands": history,
        "done": request.query_params.get("done"),
    }
    return render(request, "device.html", context)


def readable_result(result: bytes | None) -> str | None:
    """The device's answer as the plist it sent (XML), for a <details> on the page."""
    if result is None:
        return None
    readable = result_as_json(result)
    if readable is None:
        return "(unreadable)"
    try:
        return plistlib.dumps(plistlib.loads(result)).decode("utf-8", "replace")
    except (plistlib.InvalidFileException, ValueError, TypeError, OverflowError):
        return "(unreadable)"


Locker = Annotated[Actor, require(Permission.LOCK)]
Eraser = Annotated[Actor, require(Permission.ERASE)]
Clearer = Annotated[Actor, require(Permission.CLEAR_PASSCODE)]
Querier = Annotated[Actor, require(Permission.QUERY)]
Pusher = Annotated[Actor, require(Permission.PUSH)]


@router.post("/devices/{udid}/lock")
async def lock(request: Request, udid: str, actor: Locker) -> Response:
    form = await form_of(request)
    message = str(form.get("message") or "").strip()[:200] or None
    phone = str(form.get("phone") or "").strip()[:40] or None
    request_type, params = builders.device_lock(message, phone)
    return await _queue(request, udid, actor, request_type, params)


@router.post("/devices/{udid}/erase")
async def erase(request: Request, udid: str, actor: Eraser) -> Response:
    services = services_of(request)
    enrollment = await _enrollment(services, udid)
    form = await form_of(request)
    typed = str(form.get("confirm_name") or "").strip()
    expected = enrollment.facts.device_name or udid
    if typed != expected:
        await services.audit.record(_audit(actor), "command.queue", [udid], Outcome.FAILED,
                                    {"request_type": "EraseDevice"},
                                    reason="the device name was not typed to confirm")  # fmt: skip
        raise ConsoleRefusalError(
            422,
            "Not erased",
            f"To erase this device, type its name exactly: {expected}. Nothing was sent.",
        )
    request_type, params = builders.erase_device()
    return await _queue(request, udid, actor, request_type, params, confirmed=True)


@router.post("/devices/{udid}/clear-passcode")
async def clear_passcode(request: Request, udid: str, actor: Clearer) -> Response:
    enrollment = await _enrollment(services_of(request), udid)
    if enrollment.unlock_token is None:
        raise ConsoleRefusalError(
            409, "No unlock token", "The device never sent an UnlockToken: it cannot be cleared."
        )
    request_type, params = builders.clear_passcode(enrollment.unlock_token)
    return await _queue(request, udid, actor, request_type, params)


@router.post("/devices/{udid}/query")
async def query(request: Request, udid: str, actor: Querier) -> Response:
    services = services_of(request)
    await _enrollment(services, udid)
    now = datetime.now(UTC)
    for what in builders.INVENTORY:
        request_type, params = builders.QUERIES[what]
        queued = await queue_command(services.storage, request_type, params, [udid], now=now)
        detail = {"request_type": request_type, "command_uuid": queued.command.command_uuid}
        await services.audit.record(_audit(actor), "command.queue", [udid], detail=detail)
    _wake(services)
    return RedirectResponse(f"/console/devices/{udid}?done=queried", 303)


@router.post("/devices/{udid}/push")
async def push(request: Request, udid: str, actor: Pusher) -> Response:
    services = services_of(request)
    enrollment = await _enrollment(services, udid)
    if not enrollment.enrolled or enrollment.token is None:
        raise ConsoleRefusalError(409, "Not pushed", f"{udid} is not enrolled: no push token.")
    await services.storage.request_push([udid], datetime.now(UTC))
    await services.audit.record(_audit(actor), "device.push", [udid])
    _wake(services)
    return RedirectResponse(f"/console/devices/{udid}?done=pushed", 303)


async def _queue(
    request: Request,
    udid: str,
    actor: Actor,
    request_type: str,
    params: dict[str, Any],
    *,
    confirmed: bool = False,
) -> Response:
    """Queue the command as POST /api/v1/commands does, recorded as the API records it."""
    services = services_of(request)
    await _enrollment(services, udid)
    queued = await queue_command(
        services.storage, request_type, params, [udid], now=datetime.now(UTC), confirmed=confirmed
    )
    detail = {"request_type": request_type, "command_uuid": queued.command.command_uuid}
    await services.audit.record(_audit(actor), "command.queue", [udid], detail=detail)
    log.info("console_command", request_type=request_type, udid=udid, by=actor.name)
    _wake(services)
    return RedirectResponse(f"/console/devices/{udid}?done={request_type}", 303)


async def _enrollment(services: Services, udid: str) -> Enrollment:
    enrollment = await services.storage.get_enrollment(udid)
    if enrollment is None:
        raise ConsoleRefusalError(404, "No such device", f"There is no device {udid}.")
    return enrollment


def _audit(actor: Actor) -> AuditActor:
    return AuditActor.account(actor.name)


def _wake(services: Services) -> None:
    if services.pusher is not None:
        services.pusher.wake()
