"""Webhook deliveries: one row per (event, URL), kept until the receiver answers 2xx or the
delivery is given up (see `orchardist.webhooks`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol


@dataclass(frozen=True)
class WebhookEvent:
    event_id: str
    topic: str
    body: bytes  # the JSON sent, exactly as signed


@dataclass(frozen=True)
class WebhookDelivery:
    delivery_id: int
    url: str
    event_id: str
    topic: str
    body: bytes
    attempts: int  # failed attempts so far
    created_at: datetime
    claim: str


@dataclass(frozen=True)
class WebhookOutcome:
    delivery_id: int
    delivered: bool
    next_due: datetime | None  # None with delivered=False: given up
    error: str | None = None


class WebhookStore(Protocol):
    async def add_webhook_events(
        self, urls: Sequence[str], events: Sequence[WebhookEvent], now: datetime
    ) -> None:
        """Queue each event for each URL, due now."""

    async def claim_webhook_deliveries(
        self, now: datetime, lease: timedelta, limit: int
    ) -> list[WebhookDelivery]:
        """Due deliveries, oldest first, claimed until now + lease (a crashed sender's
        claims come due again when the lease ends)."""

    async def finish_webhook_deliveries(
        self, claim: str, outcomes: Sequence[WebhookOutcome], now: datetime
    ) -> None:
        """Delivered: removed. Failed: due again at next_due, attempts + 1, the error kept.
        Given up: kept with given_up_at set, for the record. Only rows still under `claim`."""

    async def webhook_backlog(self) -> dict[str, int]:
        """{"pending": …, "given_up": …}."""
