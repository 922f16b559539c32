"""GET /api/v1/audit: the audit log, newest first, for admins only.

It says who did what to which device, profile, token or account, and how each refusal
went: the kind of knowledge that belongs with managing tokens, accounts and settings, so an
admin token reads it and a viewer or operator token gets 403 (see docs/audit.md).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field

from orchardist.accounts.permissions import Actor, Permission
from orchardist.audit import AuditQuery, Outcome, entry_fields
from orchardist.web.api.auth import requires, services_of
from orchardist.web.api.inputs import storable_text
from orchardist.web.api.refusals import refusals
from orchardist.wiring import Services

router = APIRouter(prefix="/api/v1", tags=["Audit"], dependencies=[Depends(storable_text)])
ServicesDep = Annotated[Services, Depends(services_of)]
# entry_id is an INTEGER: a larger cursor could not even be compared on PostgreSQL.
MAX_ID = 2**31 - 1
NOT_ADMIN = (403, "Only an admin token may read the audit log")


class AuditRecordOut(BaseModel):
    id: int = Field(description="Grows with every entry; pass the last one as `before`")
    at: datetime
    actor: str = Field(description="An API token's name, a console account's, or cli:<OS user>")
    via: str = Field(description="api, console, cli or catalog")
    action: str = Field(examples=["command.queue"])
    targets: list[str] = Field(description="UDIDs, profile identifiers, group:NAME, names")
    outcome: Outcome = Field(description="ok, denied (the role may not) or failed (see reason)")
    reason: str | None
    detail: dict[str, Any] = Field(description="What else is known; never a secret")


Text = Annotated[str | None, Query(max_length=255)]


@router.get("/audit", response_model=list[AuditRecordOut], responses=refusals(NOT_ADMIN))
async def audit_log(
    request: Request,
    response: Response,
    services: ServicesDep,
    _: Annotated[Actor, requires(Permission.AUDIT_READ)],
    actor: Text = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    target: Text = None,
    outcome: Outcome | None = None,
    since: Annotated[datetime | None, Query(description="From this time (inclusive)")] = None,
    until: Annotated[datetime | None, Query(description="Before this time")] = None,
    before: Annotated[int | None, Query(ge=1, le=MAX_ID, description="An id: older")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AuditRecordOut]:
    """Who did what, newest first: every state-changing action from the API, the console
    and the CLI, with its targets and outcome. Every filter given must match (`target`: one
    of the entry's targets; a time without a zone is UTC). A full page has a `Link` header
    to the next one (`before` = the last id)."""
    query = AuditQuery(
        actor=actor, action=action, target=target, outcome=outcome,
        since=_utc(since, "since"), until=_utc(until, "until"), before=before, limit=limit,
    )  # fmt: skip
    entries = await services.audit.entries(query)
    if len(entries) == limit:
        following = request.url.include_query_params(before=entries[-1].entry_id)
        response.headers["Link"] = f'<{following}>; rel="next"'
    return [AuditRecordOut(**entry_fields(entry)) for entry in entries]


def _utc(value: datetime | None, name: str) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:  # 0001-01-01T00:00+01:00 is before year 1 in UTC
        raise RequestValidationError(
            [{"loc": ["query", name], "msg": "out of range", "type": "value_error"}]
        ) from exc
