"""One suite for every storage backend (and the in-memory stand-in): the contracts of
`orchardist.storage`."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from orchardist.storage import (
    ApiToken,
    CertificateStatus,
    ChallengeOutcome,
    ChallengeUse,
    IssuedCertificate,
    ScepTransaction,
    ScepTransactionStatus,
    Storage,
)
from orchardist.storage.memory import MemoryStorage

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sql", "memory"])
def store(request: pytest.FixtureRequest, storage: Storage) -> Storage:
    """The SQL storage of this backend, and the in-memory one held to the same contract."""
    return storage if request.param == "sql" else MemoryStorage()


def certificate(serial: int, *, days: int = 365, subject: str = "CN=device") -> IssuedCertificate:
    return IssuedCertificate(
        serial=serial,
        subject=subject,
        not_before=NOW,
        not_after=NOW + timedelta(days=days),
        sha256=f"{serial:064x}",
        der=b"\x30\x82" + serial.to_bytes(20, "big"),
    )


async def test_certificate_round_trip_keeps_every_field(store: Storage) -> None:
    cert = certificate((1 << 127) + 12345)
    await store.add_certificate(cert)
    loaded = await store.get_certificate(cert.serial)
    assert loaded == cert
    assert loaded is not None
    assert loaded.not_after.tzinfo is not None
    assert await store.get_certificate(42) is None


async def test_a_certificate_keeps_its_device_and_what_it_renews(store: Storage) -> None:
    bound = dataclasses.replace(
        certificate((1 << 126) + 3), device_id="UDID-A", renewal_of=(1 << 127) + 12345
    )
    tx = ScepTransaction("tx-bound", ScepTransactionStatus.PENDING, b"csr", NOW, None, "UDID-A")
    await store.record_issued(bound, tx)
    assert await store.get_certificate(bound.serial) == bound
    assert await store.certificate_by_sha256(bound.sha256) == bound
    assert await store.get_transaction("tx-bound") == tx


async def test_duplicate_serial_is_refused(store: Storage) -> None:
    await store.add_certificate(certificate(7))
    with pytest.raises(ValueError, match="7"):
        await store.add_certificate(dataclasses.replace(certificate(7), sha256="f" * 64))


async def test_revoke_keeps_the_first_time(store: Storage) -> None:
    await store.add_certificate(certificate(9))
    assert await store.revoke_certificate(9, NOW)
    assert await store.revoke_certificate(9, NOW + timedelta(hours=1))
    revoked = await store.get_certificate(9)
    assert revoked is not None
    assert (revoked.status, revoked.revoked_at) == (CertificateStatus.REVOKED, NOW)
    assert not await store.revoke_certificate(10, NOW)


async def test_certificates_expiring_soonest_first_without_revoked(store: Storage) -> None:
    for serial, days in ((1, 30), (2, 10), (3, 400), (4, 20)):
        await store.add_certificate(certificate(serial, days=days))
    await store.revoke_certificate(4, NOW)
    expiring = await store.certificates_expiring(NOW + timedelta(days=60))
    assert [c.serial for c in expiring] == [2, 1]


async def test_challenge_is_used_once(store: Storage) -> None:
    await store.add_challenge("a" * 64, NOW + timedelta(hours=1))
    assert await store.consume_challenge("a" * 64, NOW) == ChallengeUse(ChallengeOutcome.CONSUMED)
    used = ChallengeUse(ChallengeOutcome.ALREADY_USED)
    assert await store.consume_challenge("a" * 64, NOW) == used
    assert await store.consume_challenge("b" * 64, NOW) == ChallengeUse(ChallengeOutcome.UNKNOWN)


async def test_challenge_minted_for_a_device_says_which(store: Storage) -> None:
    await store.add_challenge("e" * 64, NOW + timedelta(hours=1), device_id="UDID-OTA")
    consumed = ChallengeUse(ChallengeOutcome.CONSUMED, "UDID-OTA")
    assert await store.consume_challenge("e" * 64, NOW) == consumed
    used = ChallengeUse(ChallengeOutcome.ALREADY_USED)
    assert await store.consume_challenge("e" * 64, NOW) == used


async def test_a_renewal_challenge_says_what_it_renews(store: Storage) -> None:
    """Consumed outside `record_enrolment` (a request held for approval), an identity
    renewal's challenge still names the serial it renews, 128 bits of it."""
    renewed = (1 << 127) + 0xABC
    await store.add_challenge("f" * 64, NOW + timedelta(hours=1), "UDID-R", renewed)
    consumed = ChallengeUse(ChallengeOutcome.CONSUMED, "UDID-R", renewed)
    assert await store.consume_challenge("f" * 64, NOW) == consumed


async def test_expired_challenge(store: Storage) -> None:
    await store.add_challenge("c" * 64, NOW + timedelta(hours=1))
    late = NOW + timedelta(hours=1, seconds=1)
    expired = ChallengeUse(ChallengeOutcome.EXPIRED)
    assert await store.consume_challenge("c" * 64, late) == expired


async def test_concurrent_consumers_one_winner(store: Storage) -> None:
    await store.add_challenge("d" * 64, NOW + timedelta(hours=1))
    uses = await asyncio.gather(*(store.consume_challenge("d" * 64, NOW) for _ in range(20)))
    outcomes = [use.outcome for use in uses]
    assert outcomes.count(ChallengeOutcome.CONSUMED) == 1
    assert set(outcomes) == {ChallengeOutcome.CONSUMED, ChallengeOutcome.ALREADY_USED}


async def test_transaction_upsert(store: Storage) -> None:
    pending = ScepTransaction("tx-1", ScepTransactionStatus.PENDING, b"csr", NOW)
    await store.save_transaction(pending)
    assert await store.get_transaction("tx-1") == pending
    issued = dataclasses.replace(
        pending, status=ScepTransactionStatus.ISSUED, certificate_serial=(1 << 127) + 1
    )
    await store.save_transaction(issued)
    assert await store.get_transaction("tx-1") == issued
    assert await store.get_transaction("tx-2") is None


async def test_a_held_transaction_keeps_what_it_renews(store: Storage) -> None:
    """A request held for approval carries its renewal challenge's serial (mdm/renewal.py)
    until the certificate is issued, which records it too."""
    renewed = (1 << 127) + 77
    held = ScepTransaction(
        "tx-r", ScepTransactionStatus.PENDING, b"csr", NOW, None, "UDID-R", renewed
    )
    await store.save_transaction(held)
    assert await store.get_transaction("tx-r") == held
    assert await store.pending_transactions() == [held]
    cert = dataclasses.replace(certificate(88), device_id="UDID-R", renewal_of=renewed)
    issued = dataclasses.replace(held, status=ScepTransactionStatus.ISSUED, certificate_serial=88)
    await store.record_issued(cert, issued)
    assert await store.get_transaction("tx-r") == issued
    assert await store.pending_transactions() == []


async def test_api_tokens(store: Storage) -> None:
    token = ApiToken("ci", "e" * 64, "admin", NOW)
    await store.add_api_token(token)
    assert await store.find_api_token("e" * 64) == token
    assert await store.find_api_token("0" * 64) is None
    with pytest.raises(ValueError, match="ci"):
        await store.add_api_token(dataclasses.replace(token, token_sha256="f" * 64))


async def test_naive_datetimes_are_refused(storage: Storage) -> None:
    naive = dataclasses.replace(certificate(11), not_after=datetime(2030, 1, 1))
    with pytest.raises(Exception, match="naive"):
        await storage.add_certificate(naive)


async def test_record_issued_is_all_or_nothing(store: Storage) -> None:
    tx = ScepTransaction("tx-9", ScepTransactionStatus.ISSUED, b"csr", NOW, 21)
    await store.record_issued(certificate(21), tx)
    assert await store.get_transaction("tx-9") == tx
    assert await store.get_certificate(21) == certificate(21)
    again = dataclasses.replace(tx, transaction_id="tx-10")
    with pytest.raises(ValueError, match="15"):  # serial 21 is 0x15
        await store.record_issued(certificate(21), again)
    assert await store.get_transaction("tx-10") is None


async def test_pending_transactions_oldest_first(store: Storage) -> None:
    for name, minutes, status in (
        ("late", 5, ScepTransactionStatus.PENDING),
        ("done", 1, ScepTransactionStatus.ISSUED),
        ("early", 2, ScepTransactionStatus.PENDING),
        ("no", 3, ScepTransactionStatus.REJECTED),
    ):
        created = NOW + timedelta(minutes=minutes)
        await store.save_transaction(ScepTransaction(name, status, b"csr", created))
    assert [tx.transaction_id for tx in await store.pending_transactions()] == ["early", "late"]
