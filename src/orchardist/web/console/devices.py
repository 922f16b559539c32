"""/console/devices: the device list (paged by keyset, searched and filtered in the database,
as GET /api/v1/devices is) and a device's page (identity, inventory, compliance, profiles,
commands with their results). Their actions (lock, erase, clear passcode, query, push, for
one device or a selection) are in device_actions.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import Request, Response

from orchardist.accounts.permissions import allowed
from orchardist.mdm.device_list import CursorError, decode_cursor, encode_cursor, os_version_filter
from orchardist.mdm.summary import device_fields, summarize
from orchardist.storage import Enrollment
from orchardist.storage.compliance import ComplianceStatus
from orchardist.storage.listing import DEVICE_STATES, DeviceFilters, DeviceSort
from orchardist.web.console.actions import CHOICES, erase_phrase
from orchardist.web.console.device_details import (
    HARDWARE,
    NETWORK,
    facts_table,
    push_state,
    readable_result,
    restrictions_table,
)
from orchardist.web.console.session import (
    ConsoleRefusalError,
    CurrentAccount,
    page_router,
    services_of,
)
from orchardist.web.console.templating import render

router = page_router()
PAGE_SIZE = 50
FILTERS = ("q", "model", "os", "compliance", "state", "group", "enrolled_by", "seen")
# Last seen, as the dashboard counts it: within a day, within a week, or stale (not for a week).
SEEN = {"24h": ("after", timedelta(hours=24)), "7d": ("after", timedelta(days=7)),
        "stale": ("before", timedelta(days=7))}  # fmt: skip


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
        # The selection form's actions this account may take (none: no checkboxes).
        "actions": [(value, label) for value, label, need in CHOICES if allowed(user.role, need)],
        "erase_page": erase_phrase(len(rows)),
        "group_names": list(await storage.group_sizes()),
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
    if params["seen"] and params["seen"] not in SEEN:
        return DeviceFilters(), "last seen: 24h, 7d or stale"
    side, span = SEEN.get(params["seen"], ("", timedelta()))
    cutoff = datetime.now(UTC) - span
    filters = DeviceFilters(
        search=params["q"] or None,
        model=params["model"] or None,
        os_version=os_version,
        group=params["group"] or None,
        compliance=compliance,
        state=params["state"] or None,
        enrolled_by=params["enrolled_by"] or None,
        seen_after=cutoff if side == "after" else None,
        seen_before=cutoff if side == "before" else None,
    )
    return filters, None


@router.get("/devices/{udid}")
async def device_page(request: Request, udid: str, user: CurrentAccount) -> Response:
    enrollment = await enrollment_of(request, udid)
    now = datetime.now(UTC)
    storage = services_of(request).storage
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
            "result": readable_result(t.result, user.role),
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
        "enrolled_by": await storage.enrolled_by(udid),
        "groups": await storage.groups_of(udid),
        "push": push_state(enrollment),
        "hardware": facts_table(inventory, HARDWARE),
        "network": facts_table(inventory, NETWORK),
        "restrictions": restrictions_table(inventory),
        "done": request.query_params.get("done"),
    }
    return render(request, "device.html", context)


async def enrollment_of(request: Request, udid: str) -> Enrollment:
    """The device named in the path, or a 404 page."""
    enrollment = await services_of(request).storage.get_enrollment(udid)
    if enrollment is None:
        raise ConsoleRefusalError(404, "No such device", f"There is no device {udid}.")
    return enrollment
