"""What `/metrics` reads from storage at scrape time: cheap questions, one query each."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class PoolUsage:
    checked_out: int  # connections lent to requests right now
    size: int  # connections the pool keeps open; under load it may open more for a while


class StatsStore(Protocol):
    async def queue_depth(self, now: datetime) -> dict[str, int]:
        """Command targets still waiting for an answer and not expired, by status: every
        one of queued, sent and not_now, zero included. One indexed count."""

    def pool_usage(self) -> PoolUsage:
        """The database connection pool of this process, without touching the database."""
