"""A small HTTP/2 client for APNs: many small POSTs multiplexed over a few TLS connections.

Written by hand on top of h2 (which does the framing, HPACK and flow control) because
httpx's HTTP/2 path measured ~1.0 ms of CPU per push here, so 100,000 pushes could not
fit the 60-second target; this one spends a fraction of that. It only does what APNs
needs: POST with a small body, read status + body, honour the server's stream limit,
and on GOAWAY or a lost connection fail the affected streams with `ConnectionGoneError` (the
sender retries them on a fresh connection; Apple's notes ask for exactly that).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Iterable, Sequence
from typing import Any, cast
from urllib.parse import urlsplit

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import hpack

Header = tuple[str | bytes, str | bytes]  # lower-case names, as HTTP/2 wants them

# Stream ids are 31-bit; start a new connection long before they run out.
_MAX_STREAM_ID = 2**30
# After a failed connect, requests fail at once for this long instead of each waiting
# for its own connect timeout (a thousand pushes queued behind an unreachable host).
_BACKOFF_AFTER_CONNECT_FAILURE = 2.0
CONNECT_TIMEOUT = 10.0


class ConnectionGoneError(ConnectionError):
    """The request was not answered: connection lost, GOAWAY past it, or stream reset."""


class _Stream:
    def __init__(self) -> None:
        self.status = 0
        self.body = bytearray()
        self.done: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()


# h2's checks and rewriting of the headers we send cost a third of a push's CPU; ours are
# fixed, lower-case and valid by construction (the APNs sender's), so they are skipped.
# Responses are checked as ever.
# The fields that stay the same for a connection's life, sent as indexes after the first.
_INDEXED = frozenset({b":authority", b"apns-push-type", b"apns-topic", b"apns-priority"})
_CONFIG = h2.config.H2Configuration(
    client_side=True, validate_outbound_headers=False, normalize_outbound_headers=False
)


class CachingEncoder(hpack.Encoder):
    """HPACK whose blocks are made from bytes encoded once per field, not searched for and
    encoded field by field on every request (hpack's own encode cost a tenth of a push's
    CPU). A field named in `indexed` (one that stays the same for the connection's life:
    the topic, the push type) enters the dynamic table the first time, if it fits without
    evicting anything, and is then sent as its one-byte index: the other side decodes an
    index, not a Huffman-coded string, for each of them on each request. Every other field
    is a static-table entry or a literal never indexed (nor Huffman-coded), so the table
    only changes when an indexed field enters it; every cached index is dropped then (each
    counts from the newest entry). The fields named in `unique` (the :path, a device token
    sent once; the APNs peer's apns-id) are encoded each time. A smaller table the other
    side announces is acknowledged at the start of the next block, as RFC 7541 §4.2 asks,
    and the cache made again from what the table still holds."""

    def __init__(
        self,
        unique: frozenset[bytes] = frozenset({b":path"}),
        indexed: frozenset[bytes] = frozenset(),
    ) -> None:
        super().__init__()
        self.unique = unique
        self.indexed = indexed
        self._made: dict[tuple[bytes, bytes], bytes] = {}

    def encode(self, headers: Iterable[Any], huffman: bool = True) -> bytes:
        block = []
        if self.header_table.resized:
            block.append(self._encode_table_size_change())
            self.header_table.resized = False
            self._made.clear()  # a smaller table evicts: the cached indexes may be gone
        made = self._made
        for name, value in headers:
            if name in self.unique:
                block.append(self.add((name, value), sensitive=True, huffman=False))
                continue
            encoded = made.get((name, value))
            if encoded is None:
                encoded = self._field(name, value, huffman)
            block.append(encoded)
        return b"".join(block)

    def _field(self, name: bytes, value: bytes, huffman: bool) -> bytes:
        """The field's bytes, cached unless this block adds it to the dynamic table."""
        table = self.header_table
        match = table.search(name, value)
        literal = match is None or match[2] is None  # in neither table
        if literal and name in self.indexed and _fits(table, name, value):
            self._made.clear()  # every dynamic index moves on by one
            return self.add((name, value), sensitive=False, huffman=huffman)
        if len(self._made) > 64:  # apns-expiration changes every second
            self._made.clear()
        # Sensitive: a literal is never indexed (a match is sent as its index all the same);
        # and not Huffman-coded: a few bytes more, copied by the other side, not decoded bit
        # by bit on every request (the APNs peer's largest cost after h2's own checks).
        encoded = self._made[name, value] = self.add((name, value), True, huffman=False)
        return encoded


def _fits(table: hpack.table.HeaderTable, name: bytes, value: bytes) -> bool:
    """Whether the field enters the dynamic table without evicting an entry."""
    held = sum(hpack.table.table_entry_size(n, v) for n, v in table.dynamic_entries)
    return held + hpack.table.table_entry_size(name, value) <= table.maxsize


class _H2Connection(h2.connection.H2Connection):
    """h2 counts the open streams by walking all of them before opening each new one, and
    forgets closed streams only in that walk. `_Connection.post` keeps within the server's
    stream limit by its own count, so the walk is done for every 64th stream only: to forget
    the closed ones."""

    _opened = 0

    @property
    def open_outbound_streams(self) -> int:
        self._opened += 1
        if self._opened % 64:
            return 0
        return super().open_outbound_streams


class _Connection(asyncio.Protocol):
    def __init__(self, authority: str) -> None:
        self.pseudo = [(b":method", b"POST"), (b":scheme", b"https"),
                       (b":authority", authority.encode())]  # fmt: skip
        self.h2 = _H2Connection(config=_CONFIG)
        self.h2.encoder = CachingEncoder(indexed=_INDEXED)
        self.transport: asyncio.Transport | None = None
        self.streams: dict[int, _Stream] = {}
        self.closing = False
        self.room = asyncio.Event()  # set while another stream may be opened
        self.window = asyncio.Event()  # set when flow-control credit arrives
        self.flush_pending = False

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self.transport = cast(asyncio.Transport, transport)
        self.h2.initiate_connection()
        self._flush()
        self.room.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self._fail(lambda _sid: True)
        self.room.set()
        self.window.set()

    def data_received(self, data: bytes) -> None:
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError:
            self.abort()
            return
        for event in events:
            self._handle(event)
        self._flush()

    # -- requests

    @property
    def usable(self) -> bool:
        return not self.closing and self.h2.highest_outbound_stream_id < _MAX_STREAM_ID

    async def post(self, path: str, headers: Sequence[Header], body: bytes) -> tuple[int, bytes]:
        # Our own count of streams in flight: h2's (open_outbound_streams) walks them all.
        while self.usable and len(self.streams) >= self.h2.remote_settings.max_concurrent_streams:
            self.room.clear()
            await self.room.wait()
        if not self.usable:
            raise ConnectionGoneError("connection closing")
        stream_id = self.h2.get_next_available_stream_id()
        stream = self.streams[stream_id] = _Stream()
        # Each :path (a device token) is sent once: kept out of HPACK's table, where it would
        # only push out the headers every request repeats and lengthen each look-up.
        target = hpack.NeverIndexedHeaderTuple(b":path", path.encode())
        self.h2.send_headers(stream_id, [*self.pseudo, target, *headers])
        sent = 0
        while sent < len(body):
            room = min(self.h2.local_flow_control_window(stream_id), len(body) - sent)
            if room <= 0:
                self._flush()
                self.window.clear()
                await self.window.wait()
                if stream.done.done():
                    break
                continue
            last = sent + room >= len(body)  # END_STREAM on the last DATA: no frame of its own
            self.h2.send_data(stream_id, body[sent : sent + room], end_stream=last)
            sent += room
        if not body and not stream.done.done():
            self.h2.end_stream(stream_id)
        self._flush_soon()
        try:
            return await stream.done
        finally:
            if self.streams.pop(stream_id, None) is not None:  # timed out or cancelled
                with contextlib.suppress(h2.exceptions.H2Error):
                    self.h2.reset_stream(stream_id)  # free the stream slot on the server too
                    self._flush()

    def abort(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.abort()

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            with contextlib.suppress(h2.exceptions.ProtocolError):
                self.h2.close_connection()
                self._flush()
            self.transport.close()
        self.closing = True

    # -- events

    def _handle(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.ResponseReceived):
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                for name, value in event.headers or []:
                    if name == b":status":
                        stream.status = int(value)
        elif isinstance(event, h2.events.DataReceived):
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                stream.body.extend(event.data or b"")
            self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            self._finish(event.stream_id)
        elif isinstance(event, h2.events.StreamReset):
            self._fail(lambda sid: sid == event.stream_id)
        elif isinstance(event, h2.events.WindowUpdated):
            self.window.set()
        elif isinstance(event, h2.events.RemoteSettingsChanged):
            self.room.set()
        elif isinstance(event, h2.events.ConnectionTerminated):
            # GOAWAY: streams above last_stream_id were never processed; retry them elsewhere.
            self.closing = True
            last = event.last_stream_id if event.last_stream_id is not None else 0
            self._fail(lambda sid: sid > last)
            self.room.set()

    def _finish(self, stream_id: int) -> None:
        stream = self.streams.pop(stream_id, None)
        if stream is not None and not stream.done.done():
            stream.done.set_result((stream.status, bytes(stream.body)))
        self.room.set()

    def _fail(self, which: object) -> None:
        assert callable(which)
        for stream_id in [sid for sid in self.streams if which(sid)]:
            stream = self.streams.pop(stream_id)
            if not stream.done.done():
                stream.done.set_exception(ConnectionGoneError(f"stream {stream_id} not answered"))
        self.room.set()

    def _flush_soon(self) -> None:
        """Write at the end of this turn of the loop: the requests of a batch started in the
        same turn go out in one TLS record and one system call, not one each."""
        if not self.flush_pending:
            self.flush_pending = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self.flush_pending = False
        data = self.h2.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)


class H2Client:
    """POSTs to one origin over up to `connections` HTTP/2 connections, opened lazily and
    replaced when they go away."""

    def __init__(
        self, base_url: str, context: ssl.SSLContext, *, connections: int = 2, timeout: float = 30.0
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "https" or parts.hostname is None:
            raise ValueError(f"APNs URL must be https://host[:port], not {base_url!r}")
        self.host, self.port = parts.hostname, parts.port or 443
        self.authority = parts.netloc
        context.set_alpn_protocols(["h2"])
        self.context = context
        self.timeout = timeout
        self._slots: list[_Connection | None] = [None] * max(1, connections)
        self._opening: list[asyncio.Lock] = [asyncio.Lock() for _ in self._slots]
        self._next = 0
        self._down: tuple[float, str] | None = None  # (until, why) after a failed connect

    async def post(self, path: str, headers: Sequence[Header], body: bytes) -> tuple[int, bytes]:
        """(status, body); ConnectionGoneError or OSError when the request was not answered."""
        slot = self._next
        self._next = (self._next + 1) % len(self._slots)
        connection = await self._connection(slot)
        async with asyncio.timeout(self.timeout):
            return await connection.post(path, headers, body)

    async def _connection(self, slot: int) -> _Connection:
        async with self._opening[slot]:
            current = self._slots[slot]
            if current is not None and current.usable:
                return current
            if current is not None:
                current.close()
            loop = asyncio.get_running_loop()
            if self._down is not None and loop.time() < self._down[0]:
                raise ConnectionGoneError(f"{self.host}:{self.port} unreachable: {self._down[1]}")
            try:
                async with asyncio.timeout(min(self.timeout, CONNECT_TIMEOUT)):
                    transport, protocol = await loop.create_connection(
                        lambda: _Connection(self.authority), self.host, self.port, ssl=self.context
                    )
            except (OSError, TimeoutError) as exc:
                why = str(exc) or type(exc).__name__
                self._down = (loop.time() + _BACKOFF_AFTER_CONNECT_FAILURE, why)
                raise ConnectionGoneError(f"cannot reach {self.host}:{self.port}: {why}") from exc
            self._down = None
            ssl_object = transport.get_extra_info("ssl_object")
            if ssl_object is None or ssl_object.selected_alpn_protocol() != "h2":
                transport.close()
                raise ConnectionGoneError(f"{self.host}:{self.port} does not speak HTTP/2")
            self._slots[slot] = protocol
            return protocol

    async def close(self) -> None:
        for connection in self._slots:
            if connection is not None:
                connection.close()
        self._slots = [None] * len(self._slots)
