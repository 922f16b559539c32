"""/console/audit: the audit log for admins (audit.read), newest first, filtered by actor,
action, target and outcome and paged by `before=<id>` — what GET /api/v1/audit answers,
read through the same `services.audit` and shown through the same `entry_fields`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Request, Response

from orchardist.accounts.permissions import Actor, Permission
from orchardist.audit import AuditQuery, Outcome, entry_fields
from orchardist.web.console.session import page_router, require, services_of
from orchardist.web.console.templating import render

router = page_router()
PAGE_SIZE = 50
MAX_ID = 2**31 - 1  # entry_id is an INTEGER: a larger cursor could not even be compared
LIMITS = {"actor": 255, "action": 64, "target": 255}
Auditor = Annotated[Actor, require(Permission.AUDIT_READ)]


@router.get("/audit")
async def audit_page(request: Request, user: Auditor) -> Response:
    given = request.query_params
    params = {name: given.get(name, "").strip()[:size] for name, size in LIMITS.items()}
    params["outcome"] = given.get("outcome", "").strip()
    problem = None
    if params["outcome"] and params["outcome"] not in set(Outcome):
        problem = "outcome: ok, denied or failed"
    before = _before(given.get("before", ""))
    if before == -1:
        problem = f"before: an entry id from 1 to {MAX_ID}"
    entries = []
    if problem is None:
        query = AuditQuery(
            actor=params["actor"] or None,
            action=params["action"] or None,
            target=params["target"] or None,
            outcome=Outcome(params["outcome"]) if params["outcome"] else None,
            before=before,
            limit=PAGE_SIZE,
        )
        entries = [entry_fields(e) for e in await services_of(request).audit.entries(query)]
    context = {
        "title": "Audit log",
        "entries": entries,
        "params": params,
        "outcomes": [o.value for o in Outcome],
        "older": entries[-1]["id"] if len(entries) == PAGE_SIZE else None,
        "problem": problem,
    }
    return render(request, "audit.html", context, status_code=422 if problem else 200)


def _before(text: str) -> int | None:
    """The `before` cursor: None without one, -1 for one that is not an entry id."""
    if not text.strip():
        return None
    value = text.strip()
    if not value.isdigit() or not 1 <= int(value) <= MAX_ID:
        return -1
    return int(value)
