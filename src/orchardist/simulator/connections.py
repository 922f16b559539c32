"""Kept-alive HTTP/1.1 connections that a whole fleet's check-ins share.

Check-ins are the simulator's hot path: thousands of devices, each a signed PUT or two per
session. httpx spent more CPU choosing a pooled connection (it checks every one for expiry
and readability on every request) than the device spent signing; here a request takes an
idle connection, or opens one, and gives it back — the pool grows to as many connections
as requests run at once (the fleet's --concurrency). h11 does the framing (what httpx uses
underneath). Everything else a device fetches (SCEP, app downloads) stays on httpx.

Failures are raised as httpx errors carrying the request, so a fleet reports them as it
reports any other (fleet.describe_failure).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import h11
import httpx

Origin = tuple[str, str, int]  # scheme, host, port


@dataclass(frozen=True)
class Reply:
    status_code: int
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


class Connections:
    """PUTs over kept-alive connections, per origin; `verify` as for httpx (True: the
    system's trust, False: none, or a context)."""

    def __init__(self, verify: ssl.SSLContext | bool = True, timeout: float = 60.0) -> None:
        if verify is True:
            verify = ssl.create_default_context()
        elif verify is False:
            verify = ssl.create_default_context()
            verify.check_hostname, verify.verify_mode = False, ssl.CERT_NONE
        self._tls = verify
        self._timeout = timeout
        self._idle: dict[Origin, list[_Connection]] = {}

    async def put(self, url: str, content: bytes, headers: Mapping[str, str]) -> Reply:
        """The reply to one PUT. A kept-alive connection the server closed meanwhile (its
        keep-alive timeout) is retried once on a new one, as browsers and httpx do."""
        parts = urlsplit(url)
        origin = (parts.scheme, parts.hostname or "", parts.port or _PORTS[parts.scheme])
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        request = [("Host", parts.netloc), ("Content-Length", str(len(content))),
                   *headers.items()]  # fmt: skip
        idle = self._idle.setdefault(origin, [])
        if idle:
            connection = idle.pop()
            try:
                reply = await self._put(connection, target, request, content)
            except _BROKEN:
                connection.close()  # closed by the server meanwhile: once more, on a new one
            else:
                return self._done(idle, connection, reply)
        connection = await self._open(origin, url)
        try:
            reply = await self._put(connection, target, request, content)
        except _BROKEN as exc:
            connection.close()
            raise _error(exc, url) from exc
        return self._done(idle, connection, reply)

    async def _put(
        self, connection: _Connection, target: str, headers: list[tuple[str, str]], body: bytes
    ) -> Reply:
        async with asyncio.timeout(self._timeout):
            return await connection.put(target, headers, body)

    @staticmethod
    def _done(idle: list[_Connection], connection: _Connection, reply: Reply) -> Reply:
        if connection.reusable:
            idle.append(connection)
        else:
            connection.close()
        return reply

    async def _open(self, origin: Origin, url: str) -> _Connection:
        scheme, host, port = origin
        try:
            async with asyncio.timeout(self._timeout):
                reader, writer = await asyncio.open_connection(
                    host, port, ssl=self._tls if scheme == "https" else None
                )
        except (OSError, TimeoutError) as exc:
            raise httpx.ConnectError(str(exc) or type(exc).__name__,
                                     request=httpx.Request("PUT", url)) from exc  # fmt: skip
        return _Connection(reader, writer)

    async def aclose(self) -> None:
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()


_PORTS = {"http": 80, "https": 443}
_BROKEN = (OSError, EOFError, h11.ProtocolError, TimeoutError)


def _error(exc: BaseException, url: str) -> httpx.TransportError:
    text = str(exc) or type(exc).__name__
    request = httpx.Request("PUT", url)
    if isinstance(exc, TimeoutError):
        return httpx.ReadTimeout(text, request=request)
    if isinstance(exc, h11.ProtocolError):
        return httpx.RemoteProtocolError(text, request=request)
    return httpx.ReadError(text, request=request)


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.h11 = h11.Connection(h11.CLIENT)

    @property
    def reusable(self) -> bool:
        return self.h11.our_state is h11.IDLE and self.h11.their_state is h11.IDLE

    async def put(self, target: str, headers: list[tuple[str, str]], body: bytes) -> Reply:
        wire = self.h11.send(h11.Request(method="PUT", target=target, headers=headers))
        self.writer.write(wire + self.h11.send(h11.Data(data=body)) +
                          self.h11.send(h11.EndOfMessage()))  # fmt: skip
        await self.writer.drain()
        status, chunks = 0, []
        while True:
            event = self.h11.next_event()
            if event is h11.NEED_DATA:
                data = await self.reader.read(65536)
                if not data and self.h11.their_state is h11.SEND_RESPONSE:
                    raise EOFError("the server closed the connection")
                self.h11.receive_data(data)
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise EOFError("the server closed the connection")
        if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE:
            self.h11.start_next_cycle()
        return Reply(status, b"".join(chunks))

    def close(self) -> None:
        self.writer.close()
