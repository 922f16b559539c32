"""What the console's dashboard and GET /api/v1/dashboard show: the fleet in a few figures,
each read by one cheap query (see `storage.sql.dashboard`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class DashboardFigures:
    enrolled: int  # enrollments whose device sent TokenUpdate and has not left
    seen_24h: int  # of those, checked in within the last 24 hours
    seen_7d: int  # within the last 7 days (the 24 hours included)
    stale: int  # enrolled but not seen for 7 days (or never seen)
    non_compliant: int  # enrolled or not: what the compliance verdicts say
    commands_pending: int  # targets queued, sent or NotNow'd and not expired
    commands_failed_24h: int  # targets answered Error or CommandFormatError in the last 24 h
    profile_installs_failed: int  # (device, profile) pairs the device refused
    os_versions: dict[str, int] = field(default_factory=dict)  # enrolled devices per OS version


class DashboardStore(Protocol):
    async def dashboard_figures(self, now: datetime) -> DashboardFigures:
        """Every figure as of `now`; a handful of grouped counts, none reading rows one by
        one. OS versions are sorted numerically; a device that never said is "unknown"."""
