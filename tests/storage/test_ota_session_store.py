"""Listing over-the-air enrollment sessions on every backend: newest first, every phase,
cut at the limit, groups kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from orchardist.storage import OtaSession
from orchardist.storage.sql.repositories import SqlStorage

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


async def test_sessions_are_listed_newest_first(storage: SqlStorage) -> None:
    assert await storage.list_ota_sessions() == []
    phases = ["signed-in", "consented", "identified", "enrolled"]
    for n, phase in enumerate(phases):
        at = NOW + timedelta(minutes=n)
        await storage.save_ota_session(OtaSession(
            f"{n:064x}", f"user{n}", ("staff", f"team{n}"), phase, at, at + timedelta(minutes=30),
            device_id="UDID-3" if phase == "enrolled" else None,
        ))  # fmt: skip
    listed = await storage.list_ota_sessions()
    assert [(s.user, s.phase) for s in listed] == [
        ("user3", "enrolled"), ("user2", "identified"), ("user1", "consented"),
        ("user0", "signed-in"),
    ]  # fmt: skip
    assert (listed[0].groups, listed[0].device_id) == (("staff", "team3"), "UDID-3")
    assert [s.user for s in await storage.list_ota_sessions(limit=2)] == ["user3", "user2"]
