"""The pusher's HTTP/2 client's own shortcuts: HPACK made from cached bytes (the fixed
fields as dynamic-table indexes), and h2's count of open streams taken only now and then
(the sender's tests cover the rest)."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import hpack
import pytest

from orchardist.push.h2client import CachingEncoder, H2Client
from orchardist.push.sender import client_context
from orchardist.simulator.apns_peer import ApnsPeer
from tests.push.identity import PushIdentity

HEADERS = [
    (b":method", b"POST"),
    (b":scheme", b"https"),
    (b":authority", b"api.push.apple.com"),
    hpack.NeverIndexedHeaderTuple(b":path", b"/3/device/" + b"ab" * 32),
    (b"apns-push-type", b"mdm"),
    (b"apns-topic", b"com.apple.mgmt.External.e3b8ceac"),
    (b"apns-expiration", b"1764547200"),
]


def test_a_block_decodes_to_the_headers_and_leaves_no_state() -> None:
    encoder, decoder = CachingEncoder(), hpack.Decoder()
    first = encoder.encode(HEADERS)
    assert [tuple(h) for h in decoder.decode(first, raw=True)] == [tuple(h) for h in HEADERS]
    assert encoder.encode(HEADERS) == first  # made once, reused
    assert len(encoder.header_table.dynamic_entries) == 0
    # The receiver indexed nothing either: a second, fresh decoder reads the same block.
    assert hpack.Decoder().decode(encoder.encode(HEADERS), raw=True) == decoder.decode(
        first, raw=True
    )


INDEXED = frozenset({b":authority", b"apns-push-type", b"apns-topic"})


def test_fixed_fields_are_sent_as_indexes_after_the_first_block() -> None:
    encoder, decoder = CachingEncoder(indexed=INDEXED), hpack.Decoder()
    blocks = [encoder.encode(HEADERS) for _ in range(3)]
    for block in blocks:  # one decoder reads them in order, as the other side does
        assert [tuple(h) for h in decoder.decode(block, raw=True)] == [tuple(h) for h in HEADERS]
    assert decoder.header_table.dynamic_entries == encoder.header_table.dynamic_entries
    assert len(encoder.header_table.dynamic_entries) == len(INDEXED)
    # The three fixed fields shrink to a byte each; the :path and the rest stay literals.
    fixed = sum(len(name) + len(value) for name, value in HEADERS if name in INDEXED)
    assert len(blocks[0]) - len(blocks[1]) > fixed // 2
    assert blocks[1] == blocks[2]
    # A field that would evict an entry stays out of the table, a literal each time.
    topic = (b"apns-topic", b"x" * 4000)
    other = [*HEADERS[:4], topic]
    assert [tuple(h) for h in decoder.decode(encoder.encode(other), raw=True)] == other
    assert len(encoder.header_table.dynamic_entries) == len(INDEXED)
    # A second topic enters the table: every index cached before moves on by one.
    second = [*HEADERS[:4], (b"apns-topic", b"com.apple.mgmt.External.second")]
    for headers in (second, HEADERS, second):
        decoded = decoder.decode(encoder.encode(headers), raw=True)
        assert [tuple(h) for h in decoded] == [tuple(h) for h in headers]
    assert len(encoder.header_table.dynamic_entries) == len(INDEXED) + 1


@pytest.mark.parametrize("size", [0, 120])
def test_indexes_follow_a_smaller_table(size: int) -> None:
    encoder, decoder = CachingEncoder(indexed=INDEXED), hpack.Decoder()
    for _ in range(2):
        decoder.decode(encoder.encode(HEADERS))
    decoder.max_allowed_table_size = size  # as a server announcing a smaller table
    encoder.header_table_size = size  # what h2 does when that setting arrives: evictions
    for _ in range(3):
        block = encoder.encode(HEADERS)
        assert [tuple(h) for h in decoder.decode(block, raw=True)] == [tuple(h) for h in HEADERS]
    assert decoder.header_table.dynamic_entries == encoder.header_table.dynamic_entries
    assert len(encoder.header_table.dynamic_entries) == (0 if size == 0 else 1)


def test_a_smaller_table_announced_is_acknowledged_in_the_next_block() -> None:
    encoder, decoder = CachingEncoder(), hpack.Decoder()
    decoder.max_allowed_table_size = 0  # as a server announcing SETTINGS_HEADER_TABLE_SIZE 0
    encoder.header_table_size = 0  # what h2 does when that setting arrives
    block = encoder.encode(HEADERS)
    assert block[0] == 0x20  # dynamic table size update to 0 (RFC 7541 §6.3) comes first
    assert [tuple(h) for h in decoder.decode(block, raw=True)] == [tuple(h) for h in HEADERS]
    assert not encoder.encode(HEADERS).startswith(b"\x20")  # once only


@pytest.mark.anyio
async def test_many_streams_stay_within_the_servers_limit_and_closed_ones_are_forgotten(
    peer: ApnsPeer, identity: PushIdentity, tmp_path: Path
) -> None:
    peer.behaviour.max_streams = 4  # the peer refuses a fifth open stream (h2 enforces it)
    peer.behaviour.delay = 0.002  # answers overlap: the limit is reached again and again
    context = client_context(identity.cert_file, identity.key_file, peer.write_ca(tmp_path))
    client = H2Client(peer.url, context, connections=1)
    headers = [(b"apns-push-type", b"mdm"), (b"apns-topic", identity.topic.encode())]

    async def push(n: int) -> int:
        token = hashlib.sha256(f"token-{n}".encode()).hexdigest()
        status, _ = await client.post(f"/3/device/{token}", headers, b'{"mdm": "m"}')
        return status

    try:
        assert await push(0) == 200  # the peer's SETTINGS have arrived
        statuses = await asyncio.gather(*(push(n) for n in range(1, 301)))
        (connection,) = client._slots
        assert connection is not None
        kept = len(connection.h2.streams)
    finally:
        await client.close()
    assert statuses == [200] * 300
    assert peer.tally.connections == 1  # never cut for opening too many streams
    assert len(peer.tally.accepted) == 301
    assert kept <= 64 + 4  # closed streams are let go of, not kept for the connection's life
