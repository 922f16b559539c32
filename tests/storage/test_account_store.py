"""Accounts, console sessions, the sign-in throttle and API tokens on every SQL backend."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from orchardist.storage.accounts import Account, ApiToken, ConsoleSession
from orchardist.storage.sql.repositories import SqlStorage

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


async def test_accounts_round_trip_and_change(storage: SqlStorage) -> None:
    await storage.add_account(Account("zoe", "viewer", "$argon2id$x", NOW, NOW))
    await storage.add_account(Account("ann", "admin", "$argon2id$y", NOW, NOW))
    with pytest.raises(ValueError, match="exists already"):
        await storage.add_account(Account("ann", "viewer", "$argon2id$z", NOW, NOW))
    assert [a.name for a in await storage.list_accounts()] == ["ann", "zoe"]
    later = NOW + MINUTE
    assert await storage.update_account("ann", password_hash="$argon2id$new", changed_at=later)
    assert await storage.update_account("zoe", disabled_at=later)
    assert not await storage.update_account("nobody", disabled_at=later)
    ann, zoe = await storage.get_account("ann"), await storage.get_account("zoe")
    assert ann == Account("ann", "admin", "$argon2id$new", NOW, later)
    assert zoe is not None
    assert zoe.disabled_at == later
    assert await storage.get_account("nobody") is None
    assert await storage.enable_account("zoe")
    assert not await storage.enable_account("nobody")
    zoe = await storage.get_account("zoe")
    assert zoe is not None
    assert zoe.disabled_at is None


def _session(digest: str, name: str, *, seen: datetime = NOW) -> ConsoleSession:
    return ConsoleSession(digest, name, "admin", "account", "csrf", NOW, seen, NOW + 60 * MINUTE)


async def test_sessions_are_found_touched_and_removed(storage: SqlStorage) -> None:
    await storage.add_console_session(_session("a" * 64, "ann"))
    await storage.add_console_session(_session("b" * 64, "ann"))
    await storage.add_console_session(_session("c" * 64, "bob", seen=NOW - 40 * MINUTE))
    await storage.touch_console_session("a" * 64, NOW + MINUTE)
    found = await storage.console_session("a" * 64)
    assert found is not None
    assert found.last_seen_at == NOW + MINUTE
    # bob idle since before the cut, nobody past the absolute end yet
    assert await storage.purge_console_sessions(NOW, NOW - 30 * MINUTE) == 1
    assert await storage.console_session("c" * 64) is None
    assert await storage.delete_console_sessions(name="ann") == 2
    assert await storage.console_session("a" * 64) is None


async def test_failures_lock_at_the_limit_and_old_ones_are_forgotten(storage: SqlStorage) -> None:
    until = NOW + 15 * MINUTE

    async def fail(at: datetime) -> datetime | None:
        return await storage.record_sign_in_failure(
            "account:ann", at, window_start=at - 10 * MINUTE, limit=3, locked_until=until
        )

    assert await fail(NOW - 30 * MINUTE) is None  # outside the window by the third
    assert await fail(NOW) is None
    assert await fail(NOW) is None
    assert await storage.sign_in_locked_until(["account:ann"], NOW) is None
    assert await fail(NOW) == until
    assert await storage.sign_in_locked_until(["account:ann", "address:x"], NOW) == until
    assert await storage.sign_in_locked_until(["account:ann"], until) is None  # over
    await storage.clear_sign_in_failures("account:ann")
    assert await storage.sign_in_locked_until(["account:ann"], NOW) is None


async def test_racing_failures_are_all_counted(storage: SqlStorage) -> None:
    until = NOW + MINUTE
    locks = await asyncio.gather(*(
        storage.record_sign_in_failure(
            "address:10.0.0.1", NOW, window_start=NOW - MINUTE, limit=5, locked_until=until
        )
        for _ in range(10)
    ))  # fmt: skip
    assert locks.count(until) == 2  # the fifth and the tenth


async def test_tokens_expire_and_are_revoked(storage: SqlStorage) -> None:
    await storage.add_api_token(ApiToken("ci", "1" * 64, "operator", NOW, NOW + 60 * MINUTE))
    await storage.add_api_token(ApiToken("old", "2" * 64, "admin", NOW))
    found = await storage.find_api_token("1" * 64)
    assert found == ApiToken("ci", "1" * 64, "operator", NOW, NOW + 60 * MINUTE)
    assert found.refusal(NOW) is None
    assert "expired" in (found.refusal(NOW + 60 * MINUTE) or "")
    assert await storage.revoke_api_token("old", NOW)
    assert await storage.revoke_api_token("old", NOW + MINUTE)  # keeps the first time
    assert not await storage.revoke_api_token("nobody", NOW)
    listed = await storage.list_api_tokens()
    assert [(t.name, t.revoked_at) for t in listed] == [("ci", None), ("old", NOW)]
    assert "revoked" in (listed[1].refusal(NOW) or "")
