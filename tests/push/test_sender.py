"""The APNs sender against the local peer, which enforces Apple's rules."""

from __future__ import annotations

import hashlib
import json
import ssl
from pathlib import Path

import pytest

from orchardist.push.h2client import H2Client
from orchardist.push.sender import Outcome, PushRequest, client_context
from orchardist.simulator.apns_peer import ApnsPeer, Push
from tests.push.conftest import make_sender
from tests.push.identity import PushIdentity

pytestmark = pytest.mark.anyio


def request(n: int) -> PushRequest:
    return PushRequest(f"device-{n}", hashlib.sha256(f"token-{n}".encode()).digest(), f"magic-{n}")


async def test_an_accepted_push_carries_what_apple_asks_for(
    peer: ApnsPeer, identity: PushIdentity, tmp_path: Path
) -> None:
    delivered: list[Push] = []
    peer.forward = delivered.append
    sender = make_sender(peer, identity, tmp_path)
    try:
        result = await sender.send(request(1))
    finally:
        await sender.close()
    assert result.outcome == Outcome.ACCEPTED
    assert result.status == 200
    (push,) = delivered
    assert push.token == request(1).token.hex()
    assert push.topic == identity.topic
    assert push.magic == "magic-1"
    assert push.priority == "10"
    assert push.expiration is not None
    assert int(push.expiration) > 0


async def test_410_marks_the_token_invalid(
    peer: ApnsPeer, identity: PushIdentity, tmp_path: Path
) -> None:
    peer.behaviour.unregistered.add(request(2).token.hex())
    sender = make_sender(peer, identity, tmp_path)
    try:
        gone, fine = await sender.send_many([request(2), request(3)])
    finally:
        await sender.close()
    assert (gone.outcome, gone.status, gone.reason) == (Outcome.INVALID_TOKEN, 410, "Unregistered")
    assert fine.outcome == Outcome.ACCEPTED
    assert peer.tally.requests == 2  # a dead token is not retried


async def test_429_backs_off_and_retries(
    peer: ApnsPeer, identity: PushIdentity, tmp_path: Path
) -> None:
    token = request(4).token.hex()
    peer.behaviour.throttled[token] = 2
    sender = make_sender(peer, identity, tmp_path, retries=3)
    try:
        result = await sender.send(request(4))
    finally:
        await sender.close()
    assert result.outcome == Outcome.ACCEPTED
    assert peer.tally.refused["TooManyRequests"] == 2
    assert peer.tally.accepted[token] == 1


async def test_throttling_beyond_the_retries_is_left_for_later(
    peer: ApnsPeer, identity: PushIdentity, tmp_path: Path
) -> None:
    peer.behaviour.throttled[request(5).token.hex()] = 10
    sender = make_sender(peer, identity, tmp_path, retries=2)
    try:
        result = await sender.send(request(5))
    finally:
        await sender.close()
    assert (result.outcome, result.status) == (Outcome.RETRY_LATER, 429)
    assert peer.tally.requests == 3


async def test_5xx_is_retried(peer: ApnsPeer, identity: PushIdentity, tmp_path: Path) -> None:
    peer.behaviour.failures[503] = 1
    sender = make_sender(peer, identity, tmp_path)
    try:
        result = await sender.send(request(6))
    finally:
        await sender.close()
    assert result.outcome == Outcome.ACCEPTED
    assert peer.tally.refused["ServiceUnavailable"] == 1


@pytest.mark.parametrize("cut", ["drop_after", "goaway_after"])
async def test_a_lost_connection_mid_flight_loses_no_push(
    cut: str, peer: ApnsPeer, identity: PushIdentity, tmp_path: Path
) -> None:
    setattr(peer.behaviour, cut, 7)
    sender = make_sender(peer, identity, tmp_path, concurrency=20)
    try:
        results = await sender.send_many([request(n) for n in range(40)])
    finally:
        await sender.close()
    assert [r.outcome for r in results] == [Outcome.ACCEPTED] * 40
    assert len(peer.tally.accepted) == 40  # every token got through
    assert peer.tally.connections >= 2  # on a new connection


async def test_a_topic_other_than_the_certificates_is_refused(
    peer: ApnsPeer, identity: PushIdentity, tmp_path: Path
) -> None:
    sender = make_sender(peer, identity, tmp_path, topic="com.apple.mgmt.External.other")
    try:
        result = await sender.send(request(7))
    finally:
        await sender.close()
    assert (result.outcome, result.status, result.reason) == (
        Outcome.REJECTED,
        400,
        "TopicDisallowed",
    )


async def test_the_peer_requires_a_client_certificate(peer: ApnsPeer, tmp_path: Path) -> None:
    context = ssl.create_default_context(cafile=peer.write_ca(tmp_path))
    client = H2Client(peer.url, context, connections=1, timeout=5)
    try:
        with pytest.raises((ConnectionError, OSError)):
            await client.post("/3/device/" + "ab" * 32, [("apns-push-type", "mdm")], b"{}")
    finally:
        await client.close()
    assert peer.tally.requests == 0


async def test_an_unanswered_push_times_out_and_frees_its_stream(
    peer: ApnsPeer, identity: PushIdentity, tmp_path: Path
) -> None:
    peer.behaviour.stalled.add(request(8).token.hex())
    context = client_context(identity.cert_file, identity.key_file, peer.write_ca(tmp_path))
    client = H2Client(peer.url, context, connections=1, timeout=0.3)
    headers = [("apns-push-type", "mdm"), ("apns-topic", identity.topic)]
    body = b'{"mdm": "m"}'
    try:
        with pytest.raises(TimeoutError):
            await client.post(f"/3/device/{request(8).token.hex()}", headers, body)
        status, _ = await client.post(f"/3/device/{request(9).token.hex()}", headers, body)
        (connection,) = client._slots
        assert connection is not None
        assert connection.streams == {}  # the stalled stream was reset, not kept
    finally:
        await client.close()
    assert status == 200
    assert peer.tally.connections == 1  # the connection itself stayed usable


@pytest.mark.parametrize(
    ("change", "status", "reason"),
    [
        ({":path": "/2/device/" + "ab" * 32}, 404, "BadPath"),
        ({":method": "GET"}, 405, "MethodNotAllowed"),
        ({":path": "/3/device/xyz"}, 400, "BadDeviceToken"),
        ({"apns-push-type": "alert"}, 400, "InvalidPushType"),
        ({"apns-topic": None}, 400, "MissingTopic"),
        ({"apns-priority": "7"}, 400, "BadPriority"),
        ({"apns-expiration": "soon"}, 400, "BadExpirationDate"),
    ],
)
def test_the_peer_answers_bad_requests_the_way_apple_does(
    change: dict[str, str | None], status: int, reason: str, identity: PushIdentity
) -> None:
    peer = ApnsPeer(identity.ca_pem)
    headers: dict[str, str | None] = {
        ":method": "POST",
        ":path": "/3/device/" + "ab" * 32,
        "apns-push-type": "mdm",
        "apns-topic": identity.topic,
        "apns-priority": "10",
        "apns-expiration": "0",
        **change,
    }
    present = {k: v for k, v in headers.items() if v is not None}
    body = json.dumps({"mdm": "m"}).encode()
    assert peer.answer(identity.topic, present, body)[:2] == (status, reason)


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        (b"", 400, "PayloadEmpty"),
        (b"not json", 400, "BadPayload"),
        (b'{"aps": {}}', 400, "BadPayload"),
        (json.dumps({"mdm": "x" * 5000}).encode(), 413, "PayloadTooLarge"),
    ],
)
def test_the_peer_checks_the_body(
    body: bytes, status: int, reason: str, identity: PushIdentity
) -> None:
    peer = ApnsPeer(identity.ca_pem)
    headers = {
        ":method": "POST",
        ":path": "/3/device/" + "ab" * 32,
        "apns-push-type": "mdm",
        "apns-topic": identity.topic,
    }
    assert peer.answer(identity.topic, headers, body)[:2] == (status, reason)
