"""The local APNs peer and a sender holding a test push certificate."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from orchardist.push.sender import ApnsSender, client_context
from orchardist.simulator.apns_peer import ApnsPeer
from tests.push.identity import PushIdentity, push_identity


@pytest.fixture
def identity(tmp_path: Path) -> PushIdentity:
    return push_identity(tmp_path / "push")


@pytest.fixture
async def peer(identity: PushIdentity) -> AsyncIterator[ApnsPeer]:
    async with ApnsPeer(identity.ca_pem) as started:
        yield started


def make_sender(
    peer: ApnsPeer,
    identity: PushIdentity,
    tmp_path: Path,
    *,
    topic: str | None = None,
    concurrency: int = 50,
    retries: int = 3,
) -> ApnsSender:
    context = client_context(identity.cert_file, identity.key_file, peer.write_ca(tmp_path))
    return ApnsSender(
        peer.url,
        topic or identity.topic,
        context,
        concurrency=concurrency,
        retries=retries,
        backoff=0.01,
    )
