"""/console: the dashboard — the fleet in figures (`dashboard_of`, the same function as
GET /api/v1/dashboard) and the OS versions as a bar chart drawn here, without script."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import Request, Response

from orchardist.web.api.dashboard import dashboard_of
from orchardist.web.console.session import CurrentAccount, page_router, services_of
from orchardist.web.console.templating import render

router = page_router()
CHART_WIDTH = 400  # the longest bar, in the SVG's own units (it scales with the page)
BAR_HEIGHT = 22


@dataclass(frozen=True)
class Bar:
    label: str
    count: int
    y: int
    width: int


@router.get("")
async def dashboard(request: Request, user: CurrentAccount) -> Response:
    figures = await dashboard_of(services_of(request), datetime.now(UTC))
    bars = chart(figures.os_versions)
    context = {
        "title": "Dashboard",
        "figures": figures,
        "bars": bars,
        "chart_height": max(len(bars), 1) * BAR_HEIGHT,
        "chart_width": CHART_WIDTH,
    }
    return render(request, "dashboard.html", context)


def chart(counts: dict[str, int]) -> list[Bar]:
    """One bar per OS version, the longest for the most devices; a bar for one device
    still shows (at least 2 units wide). SVG width attributes, not styles: the CSP forbids
    `style=""`."""
    most = max(counts.values(), default=0)
    return [
        Bar(label, count, index * BAR_HEIGHT, max(2, round(CHART_WIDTH * count / most)))
        for index, (label, count) in enumerate(counts.items())
    ]
