"""A push claim ranges over the partial index of its kind (migration 0027): first pushes
over ix_push_jobs_first_due, re-pushes over ix_push_jobs_repush_due, on every backend.
(The queries spell each index's condition as a literal, so that a generic plan of
PostgreSQL's, made without the parameters' values, can use it too; the plans read here are
made with the values.)

Plans are read with sequential scans priced out, as in test_search_indexes: on a table of
a few rows, which index a claim can range over, as one of 100,000 would choose it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert
from sqlalchemy.engine import Connection

from orchardist.storage.sql.repositories import SqlStorage
from orchardist.storage.sql.tables import enrollments, push_jobs
from tests.storage.test_search_indexes import _plan, _statements

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


async def _jobs(storage: SqlStorage, attempts: int) -> None:
    """Three enrolled devices with a token, each with a job of `attempts` due a minute ago."""
    devices = [f"CLAIM-{n}" for n in range(3)]
    rows = [{"device_id": d, "topic": "com.apple.mgmt.test", "identity_sha256": "a" * 64,
             "enrolled": True, "token": b"\x01" * 32, "push_magic": "M",
             "authenticated_at": NOW} for d in devices]  # fmt: skip
    jobs = [{"device_id": d, "due_at": NOW - timedelta(minutes=1), "attempts": attempts,
             "forced": True} for d in devices]  # fmt: skip

    def work(conn: Connection) -> None:
        conn.execute(insert(enrollments), rows)
        conn.execute(insert(push_jobs), jobs)

    await storage.database.write(work)


async def _claim_plans(storage: SqlStorage) -> list[str]:
    """The plan of each statement that reads push_jobs by due time while claiming, each
    joined into one string."""
    with _statements(storage) as ran:
        claimed = await storage.claim_pushes(NOW, timedelta(minutes=1), limit=10)
    assert len(claimed) == 3
    by_due = [(s, p) for s, p in ran if "push_jobs.due_at <=" in s and "FROM push_jobs" in s]
    plans = await storage.database.write(
        lambda conn: [_plan(conn, statement, parameters) for statement, parameters in by_due]
    )
    return ["\n".join(plan) for plan in plans]


async def test_first_pushes_are_claimed_from_their_index(storage: SqlStorage) -> None:
    await _jobs(storage, attempts=0)
    plans = await _claim_plans(storage)
    assert len(plans) == 1  # first pushes found: no look at re-pushes
    assert "ix_push_jobs_first_due" in plans[0], plans[0]


async def test_re_pushes_are_claimed_from_their_index(storage: SqlStorage) -> None:
    await _jobs(storage, attempts=2)
    plans = await _claim_plans(storage)
    # No first push due, none in flight: then the re-pushes.
    assert len(plans) == 3, plans
    first, in_flight, repush = plans
    assert "ix_push_jobs_first_due" in first, first
    assert "ix_push_jobs_first_due" in in_flight, in_flight
    assert "ix_push_jobs_repush_due" in repush, repush
