"""The console's device actions: the buttons on a device's page (lock, erase, clear
passcode, query, push) and the device list's "with the selected devices" form, which
sends the same actions to many devices at once (web/console/actions.py does the work for
both, so one device and a thousand take the same path).

The selection form posts the ticked rows' UDIDs as `udid`, or, with "every device on this
page" ticked, the page's UDIDs it carries as hidden `page_udid` fields (no script needed).
Erasing several devices asks for "ERASE n devices" typed out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import Request, Response
from fastapi.responses import RedirectResponse
from starlette.datastructures import FormData

from orchardist.accounts.permissions import Actor, Permission
from orchardist.mdm import builders
from orchardist.mdm.dispatch import Queued
from orchardist.web.console import actions
from orchardist.web.console.devices import enrollment_of
from orchardist.web.console.forms import form_of
from orchardist.web.console.session import (
    ConsoleRefusalError,
    CurrentAccount,
    check,
    page_router,
    require,
)

router = page_router()
MAX_SELECTED = 1000  # UDIDs per POST: a filtered list's pages, not the whole fleet
_PERMISSIONS = {value: permission for value, _, permission in actions.CHOICES}

Locker = Annotated[Actor, require(Permission.LOCK)]
Eraser = Annotated[Actor, require(Permission.ERASE)]
Clearer = Annotated[Actor, require(Permission.CLEAR_PASSCODE)]
Querier = Annotated[Actor, require(Permission.QUERY)]
Pusher = Annotated[Actor, require(Permission.PUSH)]


@router.post("/devices/{udid}/lock")
async def lock(request: Request, udid: str, actor: Locker) -> Response:
    await enrollment_of(request, udid)
    await actions.queue(request, actor, [udid], *_lock_of(await form_of(request)))
    return _back(udid, "DeviceLock")


@router.post("/devices/{udid}/erase")
async def erase(request: Request, udid: str, actor: Eraser) -> Response:
    enrollment = await enrollment_of(request, udid)
    typed = str((await form_of(request)).get("confirm_name") or "")
    name = enrollment.facts.device_name or udid
    await actions.erase(request, actor, [udid], typed, name, how="type its name exactly")
    return _back(udid, "EraseDevice")


@router.post("/devices/{udid}/clear-passcode")
async def clear_passcode(request: Request, udid: str, actor: Clearer) -> Response:
    await enrollment_of(request, udid)
    await actions.clear_passcode(request, actor, [udid])
    return _back(udid, "ClearPasscode")


@router.post("/devices/{udid}/query")
async def query(request: Request, udid: str, actor: Querier) -> Response:
    await enrollment_of(request, udid)
    await actions.query(request, actor, [udid])
    return _back(udid, "queried")


@router.post("/devices/{udid}/push")
async def push(request: Request, udid: str, actor: Pusher) -> Response:
    await enrollment_of(request, udid)
    await actions.push(request, actor, [udid])
    return _back(udid, "pushed")


@router.post("/devices/selected")
async def selected(request: Request, actor: CurrentAccount) -> Response:
    """The device list's form: the chosen action for the selected devices, then the
    command's page (several commands: the commands list)."""
    form = await form_of(request)
    choice = str(form.get("action") or "")
    if choice not in _PERMISSIONS:
        choices = ", ".join(label for _, label, _ in actions.CHOICES)
        raise ConsoleRefusalError(422, "Choose an action", f"Choose one of: {choices}.")
    await check(request, actor, _PERMISSIONS[choice])  # before anything else: 403 is 403
    udids = _selection(form)
    if choice == "push":
        await actions.push(request, actor, udids)
        return RedirectResponse(f"/console/devices?done=pushed+{len(udids)}+devices", 303)
    if choice == "query":
        return _to_commands(await actions.query(request, actor, udids))
    if choice == "clear_passcode":
        return _to_commands(await actions.clear_passcode(request, actor, udids))
    if choice == "lock":
        return _to_commands([await actions.queue(request, actor, udids, *_lock_of(form))])
    typed, phrase = str(form.get("confirm") or ""), actions.erase_phrase(len(udids))
    return _to_commands([await actions.erase(request, actor, udids, typed, phrase, how="type")])


def _selection(form: FormData) -> list[str]:
    """The UDIDs chosen (each once, in order): the ticked rows, or the whole page."""
    field = "page_udid" if form.get("all_on_page") else "udid"
    udids = list(dict.fromkeys(str(v).strip() for v in form.getlist(field) if str(v).strip()))
    if not udids:
        raise ConsoleRefusalError(
            422, "No devices selected",
            "Tick the devices to act on (or \u201cevery device on this page\u201d), then send.",
        )  # fmt: skip
    if len(udids) > MAX_SELECTED:
        raise ConsoleRefusalError(
            422, "Too many devices",
            f"{len(udids)} devices were selected; one action takes at most {MAX_SELECTED}. "
            "Nothing was sent: narrow the list with its filters and send in parts.",
        )  # fmt: skip
    return udids


def _lock_of(form: FormData) -> builders.Built:
    message = str(form.get("message") or "").strip()[:200] or None
    phone = str(form.get("phone") or "").strip()[:40] or None
    return builders.device_lock(message, phone)


def _to_commands(queued: Sequence[Queued]) -> Response:
    if len(queued) == 1:
        return RedirectResponse(f"/console/commands/{queued[0].command.command_uuid}", 303)
    return RedirectResponse("/console/commands", 303)


def _back(udid: str, done: str) -> Response:
    return RedirectResponse(f"/console/devices/{udid}?done={done}", 303)
