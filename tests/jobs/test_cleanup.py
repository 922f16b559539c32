"""The clean-up pass on every backend: everything dead for longer than the grace period
goes, batch after batch; what died within it, and what lives, stays."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from orchardist.jobs.cleanup import Cleanup
from orchardist.storage import Invitation
from orchardist.storage.sql.repositories import SqlStorage

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


async def test_the_pass_deletes_what_died_before_the_grace_period(storage: SqlStorage) -> None:
    for n in range(5):
        await storage.add_challenge(f"{n:064x}", NOW - 10 * DAY)  # expired long ago
    await storage.add_challenge("a" * 64, NOW - DAY)  # expired yesterday: kept a while
    await storage.add_enrollment_token("b" * 64, NOW + DAY)
    await storage.consume_enrollment_token("b" * 64, NOW - 9 * DAY)  # used long ago
    await storage.add_invitation(Invitation("inv", "ann", None, "+1555", None, "sent",
                                            NOW - 20 * DAY, NOW - 9 * DAY))  # fmt: skip
    cleanup = Cleanup(storage, grace=7 * DAY, clock=lambda: NOW, batch=2)
    purged = await cleanup.run_pass()
    assert purged == {"console_sessions": 0, "ota_sessions": 0, "scep_challenges": 5,
                      "enrollment_tokens": 1, "invitations": 1}  # fmt: skip
    assert await cleanup.run_pass() == dict.fromkeys(purged, 0)  # nothing twice
    kept = await storage.consume_challenge("a" * 64, NOW)
    assert kept.outcome.value == "expired"  # still there, still refused
