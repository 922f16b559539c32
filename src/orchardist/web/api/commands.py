"""/api/v1/commands/…: the commands newest first, one command with its counts, its targets
paged by UDID, and cancelling what its devices have not run yet (operators:
commands.cancel), as the console's "Cancel pending" does. Lists page by position (see
`web.api.paging`), so the last page of a million targets costs what the first does."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field

from orchardist.accounts.permissions import Actor, Permission
from orchardist.storage import TargetState
from orchardist.storage.command_log import CommandSummary
from orchardist.web.api.audited import AuditedRoute, audited, note
from orchardist.web.api.auth import Reader, requires, services_of
from orchardist.web.api.inputs import storable_text
from orchardist.web.api.models import CommandDetail, CommandState
from orchardist.web.api.paging import Cursor, decode_cursor, one_page
from orchardist.web.api.refusals import refusals
from orchardist.web.api.routes import command_state
from orchardist.wiring import Services

router = APIRouter(
    prefix="/api/v1",
    tags=["MDM"],
    dependencies=[Depends(storable_text)],
    route_class=AuditedRoute,
)
ServicesDep = Annotated[Services, Depends(services_of)]
NO_COMMAND = (404, "No command with this CommandUUID")
COMMANDS_PAGE = 100
TARGETS_PAGE = 1000
MAX_PAGE = 10_000


class CommandListed(BaseModel):
    command_uuid: str
    request_type: str
    created_at: datetime
    expires_at: datetime | None
    counts: dict[str, int] = Field(description="Targets by state, as GET /commands/{uuid} has")


class CommandCancelled(BaseModel):
    command_uuid: str
    cancelled: int = Field(description="Targets that were still queued, sent or NotNow'd")


@router.get("/commands", response_model=list[CommandListed], responses=refusals())
async def list_commands(
    request: Request,
    response: Response,
    services: ServicesDep,
    _: Reader,
    limit: Annotated[int, Query(ge=1, le=1000, description="Commands per page")] = COMMANDS_PAGE,
    cursor: Cursor = None,
) -> list[CommandListed]:
    """Commands newest first, each with its targets' counts by state. While more follow,
    the answer carries `Link: <…>; rel="next"` (and `X-Next-Cursor`): ask again with that
    cursor. 422 for a cursor this list did not make."""
    position = decode_cursor(cursor, ("t", "u"))
    before = None if position is None else (_time(position["t"], cursor), position["u"])
    found = await services.storage.recent_commands(
        datetime.now(UTC), limit=limit + 1, before=before
    )
    page = one_page(found, limit, request, response, _command_position)
    return [_listed(summary) for summary in page]


@router.get(
    "/commands/{command_uuid}", response_model=CommandDetail, responses=refusals(NO_COMMAND)
)
async def show_command(
    request: Request,
    response: Response,
    command_uuid: str,
    services: ServicesDep,
    actor: Reader,
    limit: Annotated[int, Query(ge=0, le=MAX_PAGE, description="Targets shown")] = TARGETS_PAGE,
    cursor: Cursor = None,
) -> CommandDetail:
    """The counts cover every target; `targets` is the first page of them by UDID. When
    more follow, `Link: <…>; rel="next"` points at the next page of
    /commands/{uuid}/targets."""
    now = datetime.now(UTC)
    store = services.storage
    counts = await store.command_counts(command_uuid, now)
    if not any(counts.values()):
        raise HTTPException(404, f"no command {command_uuid}")
    after = _after(cursor)
    found = await store.command_targets(command_uuid, now, limit=limit + 1, after=after)
    path = f"{request.url.path}/targets"
    targets = one_page(found, limit, request, response, _target_position, path=path)
    first = found or await store.command_targets(command_uuid, now, limit=1)
    return CommandDetail(
        command_uuid=command_uuid,
        request_type=first[0].request_type,
        counts=counts,
        targets=[command_state(t, actor) for t in targets],
    )


@router.get(
    "/commands/{command_uuid}/targets",
    response_model=list[CommandState],
    responses=refusals(NO_COMMAND),
)
async def command_targets(
    request: Request,
    response: Response,
    command_uuid: str,
    services: ServicesDep,
    actor: Reader,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Targets per page")] = TARGETS_PAGE,
    cursor: Cursor = None,
) -> list[CommandState]:
    """The command's devices by UDID, each with its state and answer. While more follow,
    the answer carries `Link: <…>; rel="next"` (and `X-Next-Cursor`). 404 for a command
    that does not exist; 422 for a cursor this list did not make."""
    now = datetime.now(UTC)
    store = services.storage
    found = await store.command_targets(command_uuid, now, limit=limit + 1, after=_after(cursor))
    if not found and not await store.command_targets(command_uuid, now, limit=1):
        raise HTTPException(404, f"no command {command_uuid}")
    page = one_page(found, limit, request, response, _target_position)
    return [command_state(t, actor) for t in page]


@router.post(
    "/commands/{command_uuid}/cancel",
    response_model=CommandCancelled,
    responses=refusals(NO_COMMAND, write=True),
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


def _listed(summary: CommandSummary) -> CommandListed:
    return CommandListed(
        command_uuid=summary.command_uuid,
        request_type=summary.request_type,
        created_at=summary.created_at,
        expires_at=summary.expires_at,
        counts=dict(summary.counts),
    )


def _command_position(summary: CommandSummary) -> dict[str, str]:
    return {"t": summary.created_at.isoformat(), "u": summary.command_uuid}


def _target_position(target: TargetState) -> dict[str, str]:
    return {"u": target.device_id}


def _after(cursor: str | None) -> str | None:
    position = decode_cursor(cursor, ("u",))
    return None if position is None else position["u"]


def _time(text: str, cursor: str | None) -> datetime:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise RequestValidationError(
            [{"loc": ["query", "cursor"], "msg": "not a cursor from this list: start again "
              "without one", "type": "value_error", "input": cursor}]
        )  # fmt: skip
    return when.astimezone(UTC)
