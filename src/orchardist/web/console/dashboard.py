"""/console: the dashboard (a placeholder until its figures arrive)."""

from __future__ import annotations

from fastapi import Request, Response

from orchardist.web.console.session import CurrentAccount, page_router
from orchardist.web.console.templating import render

router = page_router()


@router.get("")
async def dashboard(request: Request, user: CurrentAccount) -> Response:
    return render(request, "dashboard.html", {"title": "Dashboard"})
