"""Delivering queued webhook events: claim what is due, POST each (signed), and mark it
delivered, due again after a backoff, or given up.

A receiver answers 2xx to take an event; anything else (an error status, a refused
connection, a timeout) is retried along `schedule` with ±20 % jitter, then hourly, until
`give_up_after` has passed since the event was queued. Redirects are not followed: a
webhook URL that moved is the admin's to fix, and following one would send the signed
body somewhere it was not configured to go.

Signature: `X-Orchardist-Signature-256: sha256=<hex HMAC-SHA256 of the body>` with
`webhook_secret` (the same shape as GitHub's `X-Hub-Signature-256`), so a receiver can
check the body came from this server; `X-Orchardist-Event-Id` lets it drop a duplicate
(an event is delivered at least once: a crash after the POST and before the mark sends it
again).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import structlog

from orchardist.polling import Wake, drain_all, poll_forever
from orchardist.storage.webhooks import WebhookDelivery, WebhookOutcome, WebhookStore

if TYPE_CHECKING:
    # httpx is imported where it is used: every CLI command imports this module (through
    # wiring), and httpx would cost each a fifth of a second.
    import httpx

log = structlog.get_logger("orchardist.webhooks")

DEFAULT_SCHEDULE = (10, 30, 60, 300, 900, 3600)
SIGNATURE_HEADER = "X-Orchardist-Signature-256"


@dataclass(frozen=True)
class WebhookSettings:
    secret: str | None = None
    schedule: Sequence[int] = DEFAULT_SCHEDULE
    give_up_after: timedelta = timedelta(days=3)
    timeout_seconds: float = 10.0
    lease: timedelta = timedelta(seconds=120)
    poll_seconds: float = 1.0
    batch: int = 50


def _round_failed(error: str) -> None:
    log.error("webhook_round_failed", error=error)


def signature(secret: str, body: bytes) -> str:
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


class WebhookSender:
    def __init__(
        self,
        store: WebhookStore,
        settings: WebhookSettings,
        *,
        clock: Callable[[], datetime],
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        import httpx

        self._client = httpx.AsyncClient(
            timeout=settings.timeout_seconds, follow_redirects=False, transport=transport
        )
        self._wake = Wake()
        self.delivered = 0  # since start

    def wake(self) -> None:
        self._wake.set()

    async def run_once(self) -> int:
        """Deliver one batch of what is due; how many were claimed."""
        claimed = await self.store.claim_webhook_deliveries(
            self.clock(), self.settings.lease, self.settings.batch
        )
        if not claimed:
            return 0
        outcomes = await asyncio.gather(*(self._deliver(d) for d in claimed))
        await self.store.finish_webhook_deliveries(claimed[0].claim, outcomes, self.clock())
        self.delivered += sum(o.delivered for o in outcomes)
        return len(claimed)

    async def drain(self) -> int:
        return await drain_all(self.run_once)

    async def run(self) -> None:
        """Until cancelled: drain, then wait for a wake-up or the next poll."""
        await poll_forever(self.drain, self._wake, self.settings.poll_seconds, _round_failed)

    async def close(self) -> None:
        await self._client.aclose()

    async def _deliver(self, delivery: WebhookDelivery) -> WebhookOutcome:
        import httpx

        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "Orchardist webhook",
            "X-Orchardist-Event": delivery.topic,
            "X-Orchardist-Event-Id": delivery.event_id,
        }
        if self.settings.secret:
            headers[SIGNATURE_HEADER] = signature(self.settings.secret, delivery.body)
        try:
            answer = await self._client.post(delivery.url, content=delivery.body, headers=headers)
            error = None if answer.is_success else f"HTTP {answer.status_code}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if error is None:
            return WebhookOutcome(delivery.delivery_id, delivered=True, next_due=None)
        return self._failed(delivery, error)

    def _failed(self, delivery: WebhookDelivery, error: str) -> WebhookOutcome:
        now = self.clock()
        schedule = self.settings.schedule
        delay = schedule[min(delivery.attempts, len(schedule) - 1)] * random.uniform(0.8, 1.2)
        next_due = now + timedelta(seconds=delay)
        if next_due - delivery.created_at > self.settings.give_up_after:
            log.error(
                "webhook_given_up",
                url=delivery.url,
                event_id=delivery.event_id,
                topic=delivery.topic,
                attempts=delivery.attempts + 1,
                error=error,
            )
            return WebhookOutcome(delivery.delivery_id, delivered=False, next_due=None, error=error)
        log.warning(
            "webhook_failed",
            url=delivery.url,
            event_id=delivery.event_id,
            attempts=delivery.attempts + 1,
            retry_in_s=round(delay),
            error=error,
        )
        return WebhookOutcome(delivery.delivery_id, delivered=False, next_due=next_due, error=error)
