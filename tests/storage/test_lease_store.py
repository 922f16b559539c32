"""Named leases and the clean-up's deletes on every backend: one holder at a time, taken
over once expired, renewed and released only by its holder, a periodic pass due once per
period; stale rows deleted in bounded batches, live ones and completed enrollments kept."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from orchardist.storage import Invitation, OtaSession
from orchardist.storage.accounts import ConsoleSession
from orchardist.storage.sql.repositories import SqlStorage

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


async def take(storage: SqlStorage, holder: str, at: datetime = NOW, **kwargs: datetime) -> bool:
    done_before = kwargs.get("done_before", at)
    lease = await storage.take_lease("job", holder, at, at + MINUTE, done_before=done_before)
    return lease is not None


async def test_one_holder_at_a_time_until_it_expires(storage: SqlStorage) -> None:
    assert await take(storage, "a")  # never taken: the row is made
    assert not await take(storage, "b")
    assert await take(storage, "a", NOW + MINUTE / 2)  # its own: renewed, to 1.5 minutes
    assert not await take(storage, "b", NOW + MINUTE)
    assert await take(storage, "b", NOW + 2 * MINUTE)  # a died: expired, taken over
    assert not await storage.renew_lease("job", "a", NOW + 3 * MINUTE)  # a is not the holder
    await storage.release_lease("job", "a", NOW + 2 * MINUTE, done=True)  # nor frees it
    assert not await take(storage, "c", NOW + 2 * MINUTE)
    assert await storage.renew_lease("job", "b", NOW + 10 * MINUTE)
    assert not await take(storage, "c", NOW + 5 * MINUTE)


async def test_released_it_is_free_and_a_periodic_pass_waits_for_its_period(
    storage: SqlStorage,
) -> None:
    lease = await storage.take_lease("job", "a", NOW, NOW + MINUTE, done_before=NOW - MINUTE)
    assert lease is not None
    assert lease.done_at is None  # never done: due whatever the period
    await storage.release_lease("job", "a", NOW, done=True)
    hour = timedelta(hours=1)
    later = NOW + 10 * MINUTE
    assert not await take(storage, "b", later, done_before=later - hour)  # done 10 min ago
    assert await take(storage, "b", later)  # free, for a job that is not periodic
    await storage.release_lease("job", "b", later, done=False)  # cancelled: done_at kept
    then = NOW + hour
    lease = await storage.take_lease("job", "c", then, then + MINUTE, done_before=then - hour)
    assert lease is not None
    assert (lease.holder, lease.done_at) == ("c", NOW)


async def test_of_many_asking_at_once_one_gets_it(storage: SqlStorage) -> None:
    taken = await asyncio.gather(*(take(storage, f"p{n}") for n in range(8)))
    assert sum(taken) == 1


async def test_stale_rows_are_purged_in_batches_and_the_live_kept(storage: SqlStorage) -> None:
    old, fresh = NOW - timedelta(days=8), NOW + timedelta(days=1)
    for n in range(5):  # dead, unused
        await storage.add_challenge(f"{n:064x}", old)
        await storage.add_enrollment_token(f"{n:064x}", old)
    await storage.add_challenge("f" * 64, fresh)
    await storage.add_challenge("e" * 64, fresh)
    await storage.consume_challenge("e" * 64, old)  # used long ago, expires later: dead
    await storage.add_enrollment_token("f" * 64, fresh)
    for n, expires in enumerate((old, fresh)):
        await storage.add_console_session(
            ConsoleSession(f"{n:064x}", "admin", "admin", "account", "x" * 64, old, old, expires)
        )
        await storage.add_invitation(
            Invitation(f"inv{n}", "ann", "ann@example.com", None, "sent", None, old, expires)
        )
    for n, phase in enumerate(("signed-in", "catalog", "enrolled")):
        device = "UDID-1" if phase == "enrolled" else None
        await storage.save_ota_session(
            OtaSession(f"{n:064x}", "ann", (), phase, old, old, device_id=device)
        )
    before = NOW - timedelta(days=7)
    assert await storage.purge_stale("scep_challenges", before, 4) == 4  # a bounded batch
    assert await storage.purge_stale("scep_challenges", before, 4) == 2
    assert await storage.purge_stale("scep_challenges", before, 4) == 0
    assert await storage.purge_stale("enrollment_tokens", before, 100) == 5
    assert await storage.purge_stale("console_sessions", before, 100) == 1
    assert await storage.purge_stale("invitations", before, 100) == 1
    assert await storage.purge_stale("ota_sessions", before, 100) == 2
    # What is left: the live challenge and link, the live session and invitation, and the
    # completed enrollment's session (who enrolled UDID-1).
    assert (await storage.consume_challenge("f" * 64, NOW)).outcome.value == "consumed"
    assert (await storage.consume_enrollment_token("f" * 64, NOW)).value == "consumed"
    assert await storage.console_session(f"{1:064x}") is not None
    assert [i.invitation_id for i in await storage.list_invitations()] == ["inv1"]
    assert [s.phase for s in await storage.list_ota_sessions()] == ["enrolled"]
    with pytest.raises(ValueError, match="no clean-up"):
        await storage.purge_stale("devices", before, 1)
