"""The audit log's storage contract, on every SQL backend and the in-memory stand-in: entries
come back whole, newest first, filtered, paged by keyset."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from orchardist.storage.audit import AuditQuery, AuditRecord, AuditStore, Outcome, Via
from orchardist.storage.memory import MemoryAuditStore
from orchardist.storage.sql.repositories import SqlStorage

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


@pytest.fixture(params=["sql", "memory"])
def store(request: pytest.FixtureRequest, storage: SqlStorage) -> AuditStore:
    return storage if request.param == "sql" else MemoryAuditStore()


def record(minute: int, actor: str = "ci", action: str = "command.queue", *targets: str,
           outcome: Outcome = Outcome.OK, reason: str | None = None) -> AuditRecord:  # fmt: skip
    return AuditRecord(
        at=NOW + timedelta(minutes=minute),
        actor=actor,
        via=Via.API,
        action=action,
        targets=targets,
        outcome=outcome,
        reason=reason,
        detail={"request_type": "DeviceLock", "n": minute, "nested": {"ok": True, "list": [1]}},
    )


async def test_an_entry_comes_back_whole(store: AuditStore) -> None:
    written = record(0, "alice", "profile.assign", "com.example.wifi", "UDID-2", "UDID-1",
                     outcome=Outcome.FAILED, reason="unknown device UDID-3")  # fmt: skip
    entry_id = await store.add_audit_entry(written)
    (entry,) = await store.audit_entries(AuditQuery())
    assert entry.entry_id == entry_id
    assert entry.targets == ("com.example.wifi", "UDID-2", "UDID-1")  # in the order given
    assert (entry.at, entry.actor, entry.via, entry.action) == (
        NOW, "alice", Via.API, "profile.assign"
    )  # fmt: skip
    assert (entry.outcome, entry.reason) == (Outcome.FAILED, "unknown device UDID-3")
    assert entry.detail == written.detail
    assert entry.at.tzinfo is not None


async def test_newest_first_and_pages_by_keyset(store: AuditStore) -> None:
    ids = [await store.add_audit_entry(record(n, "ci", "command.queue", f"U{n}")) for n in range(7)]
    assert ids == sorted(ids)
    first = await store.audit_entries(AuditQuery(limit=3))
    assert [e.targets for e in first] == [("U6",), ("U5",), ("U4",)]
    second = await store.audit_entries(AuditQuery(limit=3, before=first[-1].entry_id))
    assert [e.targets for e in second] == [("U3",), ("U2",), ("U1",)]
    last = await store.audit_entries(AuditQuery(limit=3, before=second[-1].entry_id))
    assert [e.targets for e in last] == [("U0",)]
    assert await store.audit_entries(AuditQuery(before=last[-1].entry_id)) == []


async def test_every_filter_narrows(store: AuditStore) -> None:
    await store.add_audit_entry(record(0, "alice", "device.push", "UDID-1"))
    await store.add_audit_entry(record(1, "ci", "command.queue", "UDID-1", "UDID-2"))
    await store.add_audit_entry(record(2, "ci", "command.queue", "all", outcome=Outcome.DENIED))
    await store.add_audit_entry(record(3, "cli:root", "token.create", "ci-2"))

    async def minutes(**where: object) -> list[int]:
        return [e.detail["n"] for e in await store.audit_entries(AuditQuery(**where))]  # type: ignore[arg-type]

    assert await minutes() == [3, 2, 1, 0]
    assert await minutes(actor="ci") == [2, 1]
    assert await minutes(action="command.queue") == [2, 1]
    assert await minutes(target="UDID-1") == [1, 0]
    assert await minutes(target="UDID") == []  # a whole target, not a part of one
    assert await minutes(outcome=Outcome.DENIED) == [2]
    assert await minutes(since=NOW + timedelta(minutes=1)) == [3, 2, 1]  # inclusive
    assert await minutes(until=NOW + timedelta(minutes=1)) == [0]  # exclusive
    assert await minutes(actor="ci", target="UDID-2", outcome=Outcome.OK) == [1]
    assert await minutes(actor="nobody") == []


async def test_an_entry_without_targets(store: AuditStore) -> None:
    await store.add_audit_entry(record(0, "cli:root", "ca.create_ra"))
    (entry,) = await store.audit_entries(AuditQuery(action="ca.create_ra"))
    assert entry.targets == ()
