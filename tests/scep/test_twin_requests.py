"""RFC 8894 §3.3.1: the same PKCSReq sent twice at once (a client retrying before the first
answer came) gets the same certificate twice, on every storage backend, never a 500."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from orchardist.pki.ca import CertificateAuthority
from orchardist.scep import client
from orchardist.scep.challenges import ChallengeVerifier
from orchardist.scep.messages import PkiStatus
from orchardist.scep.service import ScepService
from orchardist.storage.sql.repositories import SqlStorage
from tests.keys import rsa_key
from tests.scep.conftest import ScepBench, make_bench

pytestmark = pytest.mark.anyio


def _service(
    ca: CertificateAuthority, storage: SqlStorage
) -> tuple[ScepService, ChallengeVerifier]:
    clock = lambda: datetime.now(UTC)  # noqa: E731
    challenges = ChallengeVerifier(
        storage, ttl=timedelta(hours=1), clock=clock, static_challenge="static-secret"
    )
    service = ScepService(
        ca,
        storage,
        storage,
        challenges,
        validity_days=30,
        max_clock_skew=timedelta(hours=1),
        clock=clock,
    )
    return service, challenges


@pytest.mark.parametrize("kind", ["static", "one-time"])
async def test_twin_requests_get_one_certificate_twice(
    ca: CertificateAuthority, storage: SqlStorage, kind: str
) -> None:
    service, challenges = _service(ca, storage)
    challenge = "static-secret" if kind == "static" else (await challenges.issue())[0]
    bench: ScepBench = make_bench(ca)  # only for building the request
    requester = bench.requester(rsa_key(40 if kind == "static" else 41), "twin")
    der = bench.pkcs_req(requester, challenge, "twin", txid=f"tx-twin-{kind}")
    replies = await asyncio.gather(service.pki_operation(der), service.pki_operation(der))
    reps = [client.read_cert_rep(reply.body, requester, ca.certificate) for reply in replies]
    assert [rep.status for rep in reps] == [PkiStatus.SUCCESS, PkiStatus.SUCCESS]
    (first,), (second,) = (rep.certificates for rep in reps)
    assert first == second
    recorded = await storage.get_transaction(f"tx-twin-{kind}")
    assert recorded is not None
    assert recorded.certificate_serial == first.serial_number


async def test_a_twin_for_another_csr_is_refused_not_a_500(
    ca: CertificateAuthority, storage: SqlStorage
) -> None:
    service, _ = _service(ca, storage)
    bench = make_bench(ca)
    one, other = bench.requester(rsa_key(42), "one"), bench.requester(rsa_key(43), "other")
    ders = [
        bench.pkcs_req(requester, "static-secret", cn, txid="tx-twin-clash")
        for requester, cn in ((one, "one"), (other, "other"))
    ]
    replies = await asyncio.gather(*(service.pki_operation(der) for der in ders))
    assert sorted(reply.status for reply in replies) == [PkiStatus.SUCCESS, PkiStatus.FAILURE]
