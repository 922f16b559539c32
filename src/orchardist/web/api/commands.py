"""POST /api/v1/commands/{command_uuid}/cancel: stop a command on the devices that have
not run it yet (operators: commands.cancel), as the console's "Cancel pending" does."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field

from orchardist.accounts.permissions import Actor, Permission
from orchardist.web.api.audited import AuditedRoute, audited, note
from orchardist.web.api.auth import requires, services_of
from orchardist.web.api.inputs import storable_text
from orchardist.web.api.refusals import refusals
from orchardist.wiring import Services

router = APIRouter(
    prefix="/api/v1",
    tags=["MDM"],
    dependencies=[Depends(storable_text)],
    route_class=AuditedRoute,
)
ServicesDep = Annotated[Services, Depends(services_of)]


class CommandCancelled(BaseModel):
    command_uuid: str
    cancelled: int = Field(description="Targets that were still queued, sent or NotNow'd")


@router.post(
    "/commands/{command_uuid}/cancel",
    response_model=CommandCancelled,
    responses=refusals((404, "No command with this CommandUUID"), write=True),
)
@audited("command.cancel")
async def cancel_command(
    request: Request,
    command_uuid: str,
    services: ServicesDep,
    _: Annotated[Actor, requires(Permission.CANCEL)],
) -> CommandCancelled:
    """Mark the command cancelled on every device that has not answered it, so none is
    offered it again; answers already given stay. Cancelling twice cancels nothing more."""
    now = datetime.now(UTC)
    if not any((await services.storage.command_counts(command_uuid, now)).values()):
        raise HTTPException(404, f"no command {command_uuid}")
    cancelled = await services.storage.cancel_command(command_uuid, now)
    note(request).detail["cancelled"] = cancelled
    return CommandCancelled(command_uuid=command_uuid, cancelled=cancelled)
