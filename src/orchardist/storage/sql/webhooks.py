"""Webhook deliveries on SQL (see `orchardist.storage.webhooks`). Claims take
`FOR UPDATE SKIP LOCKED` on PostgreSQL, as the pusher's do, so several processes share
the work; SQLite serialises writers."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import and_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.engine import Connection

from orchardist.storage.sql.database import Database
from orchardist.storage.sql.tables import webhook_deliveries as _deliveries
from orchardist.storage.webhooks import WebhookDelivery, WebhookEvent, WebhookOutcome

_ERROR_LENGTH = 500


class SqlWebhookStorage:
    database: Database

    async def add_webhook_events(
        self, urls: Sequence[str], events: Sequence[WebhookEvent], now: datetime
    ) -> None:
        rows = [
            {
                "url": url,
                "event_id": e.event_id,
                "topic": e.topic,
                "body": e.body,
                "attempts": 0,
                "created_at": now,
                "due_at": now,
            }
            for e in events
            for url in urls
        ]
        if rows:
            await self.database.write(lambda conn: conn.execute(insert(_deliveries), rows))

    async def claim_webhook_deliveries(
        self, now: datetime, lease: timedelta, limit: int
    ) -> list[WebhookDelivery]:
        claim = uuid.uuid4().hex
        due = (
            select(_deliveries)
            .where(
                and_(
                    _deliveries.c.given_up_at.is_(None),
                    _deliveries.c.due_at <= now,
                    or_(
                        _deliveries.c.claimed_until.is_(None),
                        _deliveries.c.claimed_until <= now,
                    ),
                )
            )
            .order_by(_deliveries.c.due_at, _deliveries.c.delivery_id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )

        def work(conn: Connection) -> list[WebhookDelivery]:
            rows = conn.execute(due).all()
            if rows:
                conn.execute(
                    update(_deliveries)
                    .where(_deliveries.c.delivery_id.in_([r.delivery_id for r in rows]))
                    .values(claim=claim, claimed_until=now + lease)
                )
            return [
                WebhookDelivery(
                    r.delivery_id,
                    r.url,
                    r.event_id,
                    r.topic,
                    r.body,
                    r.attempts,
                    r.created_at,
                    claim,
                )
                for r in rows
            ]

        return await self.database.write(work)

    async def finish_webhook_deliveries(
        self, claim: str, outcomes: Sequence[WebhookOutcome], now: datetime
    ) -> None:
        ours = and_(_deliveries.c.delivery_id == bindparam("d"), _deliveries.c.claim == claim)
        failed = (
            update(_deliveries)
            .where(ours)
            .values(
                attempts=_deliveries.c.attempts + 1,
                due_at=bindparam("due"),
                given_up_at=bindparam("gave_up"),
                last_error=bindparam("error"),
                claim=None,
                claimed_until=None,
            )
        )
        delivered = [o.delivery_id for o in outcomes if o.delivered]
        retries = [
            {
                "d": o.delivery_id,
                "due": o.next_due or now,
                "gave_up": None if o.next_due else now,
                "error": (o.error or "")[:_ERROR_LENGTH],
            }
            for o in outcomes
            if not o.delivered
        ]

        def work(conn: Connection) -> None:
            if delivered:
                conn.execute(
                    delete(_deliveries).where(
                        and_(_deliveries.c.delivery_id.in_(delivered), _deliveries.c.claim == claim)
                    )
                )
            if retries:
                conn.execute(failed, retries)

        await self.database.write(work)

    async def webhook_backlog(self) -> dict[str, int]:
        given_up = _deliveries.c.given_up_at.is_not(None)
        query = select(given_up.label("given_up"), func.count()).group_by(given_up)
        rows = await self.database.read(lambda conn: list(conn.execute(query).all()))
        counts = {"pending": 0, "given_up": 0}
        for is_given_up, count in rows:
            counts["given_up" if is_given_up else "pending"] += count
        return counts
