"""`record_enrolment`: a PKCSReq's one transaction, on every backend and in memory."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from orchardist.storage import ChallengeOutcome, ScepTransaction, ScepTransactionStatus, Storage
from orchardist.storage.memory import MemoryStorage
from tests.storage.test_repositories import certificate

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sql", "memory"])
def store(request: pytest.FixtureRequest, storage: Storage) -> Storage:
    return storage if request.param == "sql" else MemoryStorage()


def issued(name: str, serial: int) -> ScepTransaction:
    return ScepTransaction(name, ScepTransactionStatus.ISSUED, b"csr-" + name.encode(), NOW, serial)


async def test_consumes_the_challenge_and_binds_its_device(store: Storage) -> None:
    await store.add_challenge("a" * 64, NOW + timedelta(hours=1), "UDID-1")
    cert, tx = certificate(101), issued("tx-e1", 101)
    assert await store.record_enrolment(cert, tx, "a" * 64, NOW) == ChallengeOutcome.CONSUMED
    assert await store.get_certificate(101) == dataclasses.replace(cert, device_id="UDID-1")
    assert await store.get_transaction("tx-e1") == dataclasses.replace(tx, device_id="UDID-1")
    again = await store.record_enrolment(certificate(102), issued("tx-e2", 102), "a" * 64, NOW)
    assert again == ChallengeOutcome.ALREADY_USED
    assert await store.get_certificate(102) is None
    assert await store.get_transaction("tx-e2") is None


async def test_a_renewal_challenge_marks_the_certificate_it_yields(store: Storage) -> None:
    """An identity renewal's challenge (mdm/renewal.py) names the serial it renews; the
    certificate records it, which is what lets MDM keep the enrollment's queue."""
    renewed = 0x0123456789ABCDEF0123456789ABCDEF  # a full 128-bit serial survives the copy
    await store.add_challenge("e" * 64, NOW + timedelta(hours=1), "UDID-2", renewed)
    cert, tx = certificate(109), issued("tx-e9", 109)
    assert await store.record_enrolment(cert, tx, "e" * 64, NOW) == ChallengeOutcome.CONSUMED
    expected = dataclasses.replace(cert, device_id="UDID-2", renewal_of=renewed)
    assert await store.get_certificate(109) == expected
    recorded = dataclasses.replace(tx, device_id="UDID-2", renewal_of=renewed)
    assert await store.get_transaction("tx-e9") == recorded
    resent = await store.record_enrolment(certificate(111), issued("tx-e9", 111), None, NOW)
    assert resent == recorded  # a resend reads it back whole
    await store.add_challenge("f" * 64, NOW + timedelta(hours=1), "UDID-2")  # a plain one
    plain = certificate(110)
    assert await store.record_enrolment(plain, issued("tx-e10", 110), "f" * 64, NOW) == (
        ChallengeOutcome.CONSUMED
    )
    assert await store.get_certificate(110) == dataclasses.replace(plain, device_id="UDID-2")


async def test_refused_challenges_write_nothing(store: Storage) -> None:
    await store.add_challenge("b" * 64, NOW - timedelta(seconds=1))
    for digest, outcome in (("b" * 64, ChallengeOutcome.EXPIRED), ("c" * 64, "unknown")):
        result = await store.record_enrolment(certificate(103), issued("tx-e3", 103), digest, NOW)
        assert result == ChallengeOutcome(outcome)
    assert await store.get_certificate(103) is None
    assert await store.get_transaction("tx-e3") is None


async def test_a_resent_transaction_is_returned_untouched(store: Storage) -> None:
    first = issued("tx-e4", 104)
    assert await store.record_enrolment(certificate(104), first, None, NOW) == (
        ChallengeOutcome.CONSUMED
    )
    resent = await store.record_enrolment(certificate(105), issued("tx-e4", 105), None, NOW)
    assert resent == first
    assert await store.get_certificate(105) is None


async def test_twins_racing_record_once_and_see_the_winner(store: Storage) -> None:
    await store.add_challenge("d" * 64, NOW + timedelta(hours=1))
    for digest, name, serial in ((None, "tx-e6", 106), ("d" * 64, "tx-e7", 108)):
        twins = (issued(name, serial), issued(name, serial + 1))
        results = await asyncio.gather(
            *(store.record_enrolment(certificate(t.certificate_serial or 0), t, digest, NOW)
              for t in twins)
        )  # fmt: skip
        consumed = [result == ChallengeOutcome.CONSUMED for result in results]
        assert consumed.count(True) == 1
        winner = twins[consumed.index(True)]
        assert results[consumed.index(False)] == winner  # the loser is told it is a resend
        assert await store.get_transaction(name) == winner
