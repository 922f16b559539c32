"""Pushes from a local APNs peer to virtual devices in another process.

`simulate --apns-port` runs the peer and the devices in one process. For load tests the
two are better apart: the peer stands in for Apple and the devices for phones, and on one
machine the phones' work (an RSA signature per check-in) can then run at a lower priority
than the servers under test, or in several simulator processes fed by one peer.

The feed is a line per accepted push over a loopback TCP connection, tab-separated: token,
topic, magic, priority, expiration (the last two empty when absent). The peer writes each
push to every subscriber connected at the time; a subscriber that connects late misses
the pushes before it, as a phone that was off would.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from orchardist.simulator.apns_peer import ApnsPeer, Push

Forward = Callable[[Push], None]


class FeedServer:
    """Serves `peer`'s accepted pushes on 127.0.0.1:`port` (0: a free one)."""

    def __init__(self, peer: ApnsPeer, port: int = 0) -> None:
        self.peer, self.port = peer, port
        self._subscribers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._subscribe, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        self.peer.forward = self._send

    def _send(self, push: Push) -> None:
        line = "\t".join(
            (push.token, push.topic, push.magic, push.priority or "", push.expiration or "")
        )
        data = (line + "\n").encode()
        for writer in list(self._subscribers):
            if writer.is_closing():
                self._subscribers.discard(writer)
            else:
                writer.write(data)

    async def _subscribe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._subscribers.add(writer)
        with contextlib.suppress(ConnectionError):
            await reader.read()  # a subscriber sends nothing; this ends when it goes
        self._subscribers.discard(writer)
        writer.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in self._subscribers:
                writer.close()
            await self._server.wait_closed()


class FeedClient:
    """The devices' side: hands each push read from the feed at `address` (host:port) to
    `forward`, as ApnsPeer does in process (run_fleet sets `forward`)."""

    def __init__(self, address: str) -> None:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"--apns-feed wants HOST:PORT, not {address!r}")
        self.host, self.port = host, int(port)
        self._forward: Forward | None = None
        self._early: list[Push] = []  # read before `forward` was set: handed over then
        self._task: asyncio.Task[None] | None = None
        self._writer: asyncio.StreamWriter | None = None

    @property
    def forward(self) -> Forward | None:
        return self._forward

    @forward.setter
    def forward(self, forward: Forward | None) -> None:
        self._forward = forward
        if forward is not None:
            early, self._early = self._early, []
            for push in early:
                forward(push)

    async def start(self) -> None:
        reader, self._writer = await asyncio.open_connection(self.host, self.port)
        self._task = asyncio.ensure_future(self._read(reader))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while line := await reader.readline():
            token, topic, magic, priority, expiration = line.decode().rstrip("\n").split("\t")
            push = Push(token, topic, magic, priority or None, expiration or None)
            if self._forward is not None:
                self._forward(push)
            else:
                self._early.append(push)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._writer is not None:
            self._writer.close()
