"""/console/commands: recent commands with their counts per status, a command's page with
each device's status and answer, and "Cancel pending" (operators: commands.cancel) for
the devices that have not run it — recorded in the audit log as command.cancel, as
POST /api/v1/commands/{uuid}/cancel records it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Request, Response
from fastapi.responses import RedirectResponse

from orchardist.accounts.permissions import Actor, Permission
from orchardist.audit import Actor as AuditActor
from orchardist.web.console.device_details import readable_result
from orchardist.web.console.session import (
    ConsoleRefusalError,
    CurrentAccount,
    page_router,
    require,
    services_of,
)
from orchardist.web.console.templating import render

router = page_router()
PAGE_SIZE = 50
TARGETS_SHOWN = 500
PENDING = ("queued", "pushed", "sent", "not_now")
Canceller = Annotated[Actor, require(Permission.CANCEL)]


@router.get("/commands")
async def commands_page(request: Request, user: CurrentAccount) -> Response:
    before, problem = _cursor(request.query_params.get("at"), request.query_params.get("before"))
    found = []
    if problem is None:
        now = datetime.now(UTC)
        found = await services_of(request).storage.recent_commands(
            now, limit=PAGE_SIZE, before=before
        )
    last = found[-1] if len(found) == PAGE_SIZE else None
    context = {
        "title": "Commands",
        "commands": found,
        "pending": PENDING,
        "older": None
        if last is None
        else {"at": last.created_at.isoformat(), "before": last.command_uuid},
        "problem": problem,
    }
    return render(request, "commands.html", context, status_code=422 if problem else 200)


def _cursor(at: str | None, uuid: str | None) -> tuple[tuple[datetime, str] | None, str | None]:
    """(created_at, CommandUUID) of the last command shown, or why the link is broken."""
    if not at and not uuid:
        return None, None
    try:
        when = datetime.fromisoformat(at or "")
    except ValueError:
        return None, "at: the time of the last command shown (ISO 8601)"
    if when.tzinfo is None or not uuid:
        return None, "at (with its zone) and before (a CommandUUID) go together"
    return (when.astimezone(UTC), uuid[:64]), None


@router.get("/commands/{command_uuid}")
async def command_page(request: Request, command_uuid: str, user: CurrentAccount) -> Response:
    storage = services_of(request).storage
    now = datetime.now(UTC)
    counts = await storage.command_counts(command_uuid, now)
    if not any(counts.values()):
        raise ConsoleRefusalError(404, "No such command", f"There is no command {command_uuid}.")
    targets = await storage.command_targets(command_uuid, now, limit=TARGETS_SHOWN)
    rows = [
        {
            "udid": t.device_id,
            "status": t.status.value,
            "answered_at": t.answered_at,
            "result": readable_result(t.result, user.role),
        }
        for t in targets
    ]
    context = {
        "title": f"{targets[0].request_type} {command_uuid}",
        "command_uuid": command_uuid,
        "request_type": targets[0].request_type,
        "counts": counts,
        "waiting": sum(counts[status] for status in PENDING),
        "targets": rows,
        "more": sum(counts.values()) > len(rows),
        "done": request.query_params.get("done"),
    }
    return render(request, "command.html", context)


@router.post("/commands/{command_uuid}/cancel")
async def cancel(request: Request, command_uuid: str, actor: Canceller) -> Response:
    services = services_of(request)
    now = datetime.now(UTC)
    if not any((await services.storage.command_counts(command_uuid, now)).values()):
        raise ConsoleRefusalError(404, "No such command", f"There is no command {command_uuid}.")
    cancelled = await services.storage.cancel_command(command_uuid, now)
    await services.audit.record(
        AuditActor.account(actor.name), "command.cancel", [command_uuid],
        detail={"cancelled": cancelled},
    )  # fmt: skip
    return RedirectResponse(f"/console/commands/{command_uuid}?done={cancelled}", 303)
