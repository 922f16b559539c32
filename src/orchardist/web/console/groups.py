"""/console/groups: static groups with their member counts, a group's page (its members
and the profiles assigned to it), and for operators (groups.edit) creating a group, adding
and removing members (by UDID or serial number) and deleting a group.

Every change goes through `ProfileLibrary.set_group`, as PUT /api/v1/groups/{name} and
`orchardist group set` do: unknown devices are refused with nothing changed, and the
profiles assigned to the group follow its members (the pusher is woken for them). Each is
recorded as `group.set` with the targets the API records: `group:NAME`, then the group's
UDIDs. A group exists while it has members, so deleting one sets it to none.

Names are any text up to 255 characters (directory groups arrive as `directory:sales`):
they travel in links quoted whole (a slash, a quote, `?`) and in forms as hidden fields.
"""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.responses import RedirectResponse

from orchardist.accounts.permissions import Actor, Permission
from orchardist.mdm.summary import device_fields
from orchardist.storage.listing import DeviceFilters, DeviceSort
from orchardist.storage.profiles import TargetKind
from orchardist.web.api.profiles import library_of, reconciled
from orchardist.web.console import auditing
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

router = page_router()
Editor = Annotated[Actor, require(Permission.GROUPS_EDIT)]
PAGE = "/console/groups"
MAX_NAME = 255  # what storage keeps: a longer name is refused, not cut (cut names collide)
MEMBERS_SHOWN = 500
MAX_GIVEN = 1000  # devices named in one form
_SEPARATORS = re.compile(r"[\s,;]+")


def group_href(name: str) -> str:
    """The group's page, its name quoted whole: `/console/groups/a%2Fb` for `a/b`."""
    return f"{PAGE}/{quote(name, safe='')}"


@router.get("/groups")
async def groups_page(request: Request, user: CurrentAccount) -> Response:
    storage = services_of(request).storage
    sizes = await storage.group_sizes()
    assigned = await _assigned(services_of(request))
    names = sorted({*sizes, *assigned})
    rows = [
        {"name": n, "href": group_href(n), "members": sizes.get(n, 0),
         "profiles": len(assigned.get(n, []))}
        for n in names
    ]  # fmt: skip
    return render(request, "groups.html", {"title": "Groups", "groups": rows,
                                           "max_name": MAX_NAME})  # fmt: skip


@router.get("/groups/{name:path}")
async def group_page(request: Request, name: str, user: CurrentAccount) -> Response:
    services = services_of(request)
    count = (await services.storage.group_sizes()).get(name, 0)
    profiles = (await _assigned(services)).get(name, [])
    if not count and not profiles:
        raise ConsoleRefusalError(404, "No such group", f"There is no group named {name!r}. "
                                  "A group exists while it has members: create it on the "
                                  "Groups page.")  # fmt: skip
    listed = await services.storage.list_devices(
        DeviceFilters(group=name), sort=DeviceSort.NAME, limit=MEMBERS_SHOWN
    )
    names = {p.identifier: p.display_name for p in await services.storage.list_profiles()}
    context = {
        "title": f"Group {name}",
        "name": name,
        "count": count,
        "members": [device_fields(d.enrollment) for d in listed.devices],
        "all_members": f"/console/devices?group={quote(name, safe='')}",
        "profiles": [(identifier, names.get(identifier, identifier)) for identifier in profiles],
        "done": request.query_params.get("done"),
    }
    return render(request, "group.html", context)


@router.post("/groups")
async def create_group(request: Request, actor: Editor) -> Response:
    form = await form_of(request)
    name = str(form.get("name") or "").strip()
    given = _given(str(form.get("devices") or ""))
    targets = [f"group:{name}"]
    problem = _name_problem(name) or (
        None if given else "Name at least one device: a group exists while it has members."
    )
    if problem is not None:
        raise await _refused(request, actor, targets, 422, "Group not created", problem)
    if name in await services_of(request).storage.group_sizes():
        raise await _refused(request, actor, targets, 409, "Group not created",
                             f"A group named {name!r} exists already: add members on its "
                             "page.")  # fmt: skip
    members = await _resolved(request, actor, name, given)
    await _set(request, actor, name, members)
    return RedirectResponse(f"{group_href(name)}?done=created", 303)


@router.post("/groups/members/add")
async def add_members(request: Request, actor: Editor) -> Response:
    form = await form_of(request)
    name = await _existing(request, actor, str(form.get("name") or ""))
    given = _given(str(form.get("devices") or ""))
    if not given:
        raise await _refused(request, actor, [f"group:{name}"], 422, "Nothing added",
                             "Give one or more UDIDs or serial numbers.")  # fmt: skip
    current = (await services_of(request).storage.groups()).get(name, [])
    added = await _resolved(request, actor, name, given)
    await _set(request, actor, name, list(dict.fromkeys([*current, *added])))
    return RedirectResponse(f"{group_href(name)}?done=added", 303)


@router.post("/groups/members/remove")
async def remove_member(request: Request, actor: Editor) -> Response:
    form = await form_of(request)
    name = await _existing(request, actor, str(form.get("name") or ""))
    udid = str(form.get("udid") or "")
    current = (await services_of(request).storage.groups()).get(name, [])
    if udid not in current:
        raise await _refused(request, actor, [f"group:{name}", udid], 404, "Not removed",
                             f"{udid!r} is not a member of {name!r}.")  # fmt: skip
    await _set(request, actor, name, [d for d in current if d != udid])
    remaining = len(current) - 1
    return RedirectResponse(f"{group_href(name)}?done=removed" if remaining else PAGE, 303)


@router.post("/groups/delete")
async def delete_group(request: Request, actor: Editor) -> Response:
    form = await form_of(request)
    name = await _existing(request, actor, str(form.get("name") or ""))
    await _set(request, actor, name, [])
    return RedirectResponse(PAGE, 303)


async def _set(request: Request, actor: Actor, name: str, members: list[str]) -> None:
    """The group becomes `members` through the library, as the API's PUT does."""
    services = services_of(request)
    try:
        done = await library_of(services).set_group(name, members)
    except LookupError as exc:  # a device gone since it was resolved
        reason = str(exc)
        message = f"{reason[:1].upper()}{reason[1:]}."
        raise await _refused(
            request, actor, [f"group:{name}", *members], 422, "Nothing changed", message
        ) from exc
    reconciled(done, services)  # wakes the pusher for what was queued
    await auditing.record(request, actor, "group.set", [f"group:{name}", *members])


async def _resolved(request: Request, actor: Actor, name: str, given: list[str]) -> list[str]:
    """The UDIDs meant by UDIDs and serial numbers; a 422 page naming what matched no
    device, or a serial that several devices reported (then its UDID is needed)."""
    if len(given) > MAX_GIVEN:
        raise await _refused(request, actor, [f"group:{name}"], 422, "Nothing changed",
                             f"At most {MAX_GIVEN} devices at a time: this form named "
                             f"{len(given)}.")  # fmt: skip
    storage = services_of(request).storage
    udids = set(await storage.device_ids(given))
    by_serial = await storage.device_ids_by_serial([g for g in given if g not in udids])
    problems = [
        f"Serial number {serial} belongs to {len(found)} devices ({', '.join(found[:5])}): "
        "give the UDID of the one you mean."
        for serial, found in by_serial.items()
        if len(found) > 1
    ]
    unknown = [g for g in given if g not in udids and g not in by_serial]
    if unknown:
        problems.insert(0, f"No device has the UDID or serial number {', '.join(unknown[:10])}.")
    if problems:
        raise await _refused(request, actor, [f"group:{name}", *given], 422,
                             "Nothing changed", " ".join(problems))  # fmt: skip
    return [g if g in udids else by_serial[g][0] for g in given]


async def _existing(request: Request, actor: Actor, name: str) -> str:
    if name not in await services_of(request).storage.groups():
        raise await _refused(request, actor, [f"group:{name}"], 404, "No such group",
                             f"There is no group named {name!r}.")  # fmt: skip
    return name


async def _refused(
    request: Request, actor: Actor, targets: list[str], status: int, title: str, message: str
) -> ConsoleRefusalError:
    return await auditing.refused(request, actor, "group.set", targets, (status, title, message))


async def _assigned(services: Services) -> dict[str, list[str]]:
    """Group name → the identifiers of the profiles assigned to it."""
    found: dict[str, list[str]] = {}
    for assignment in await services.storage.assignments():
        if assignment.kind == TargetKind.GROUP:
            found.setdefault(assignment.target, []).append(assignment.identifier)
    return found


def _given(text: str) -> list[str]:
    """UDIDs or serial numbers, one a line or separated by spaces, commas or semicolons."""
    return list(dict.fromkeys(t for t in _SEPARATORS.split(text) if t))


def _name_problem(name: str) -> str | None:
    if not name:
        return "Give the group a name."
    if len(name) > MAX_NAME:
        return f"A group's name may be at most {MAX_NAME} characters (this one has {len(name)})."
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "A group's name may not contain control characters (tabs, line breaks, NUL)."
    if set(name) == {"."}:
        return "A name of dots only cannot be linked to: add a letter."
    return None
