"""Send MDM pushes to APNs over HTTP/2 with the push certificate as TLS client certificate.

One `ApnsSender` per push certificate (topic): one pool of HTTP/2 connections reused for
every push, as Apple asks (rapid reconnects look like an attack).
Concurrency is bounded; transport errors, GOAWAY, 429 and 5xx are retried with jittered
backoff; 410 Unregistered and 400 BadDeviceToken mean the token is dead (protocol-notes §3c).
The sender never touches the queue: a push that fails is simply tried again later by the
pusher, and the commands it was for stay queued.
"""

from __future__ import annotations

import asyncio
import enum
import json
import random
import ssl
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from orchardist.metrics import PUSHES
from orchardist.push.h2client import ConnectionGoneError, H2Client, Header

# Apple: these reasons are about the token, not us; stop pushing until the next TokenUpdate.
DEAD_TOKEN_REASONS = frozenset({"BadDeviceToken", "Unregistered", "ExpiredToken"})


class Outcome(enum.Enum):
    ACCEPTED = "accepted"
    INVALID_TOKEN = "invalid-token"  # noqa: S105 - 410, or 400 BadDeviceToken
    RETRY_LATER = "retry-later"  # 429, 5xx, transport errors, after the retries here
    REJECTED = "rejected"  # 403 and other 4xx: our configuration, not the device


@dataclass(frozen=True)
class PushRequest:
    device_id: str
    token: bytes
    push_magic: str


@dataclass(frozen=True)
class PushResult:
    device_id: str
    outcome: Outcome
    status: int | None = None  # None: no HTTP answer (transport error)
    reason: str | None = None


def client_context(
    cert_file: Path, key_file: Path, ca_file: Path | None, *, password: bytes | None = None
) -> ssl.SSLContext:
    """TLS for APNs: the system's trust plus `ca_file`, the push certificate as client
    (`password`: the key file's passphrase, PkiFiles.password_of)."""
    context = ssl.create_default_context()
    if ca_file is not None:
        context.load_verify_locations(cafile=ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file, password)
    return context


class ApnsSender:
    def __init__(
        self,
        base_url: str,
        topic: str,
        context: ssl.SSLContext,
        *,
        concurrency: int = 200,
        retries: int = 3,
        backoff: float = 0.5,
        expiration_seconds: int = 3600,
        timeout: float = 30.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.topic = topic
        self.retries = retries
        self.backoff = backoff
        self.expiration_seconds = expiration_seconds
        self._gate = asyncio.Semaphore(concurrency)
        self._headers: list[Header] = [
            (b"apns-push-type", b"mdm"),
            (b"apns-topic", topic.encode()),
            (b"apns-priority", b"10"),
            (b"content-type", b"application/json"),
        ]
        # A few connections, each multiplexing many streams (Apple: open several for
        # throughput, keep them open).
        self._client = H2Client(
            base_url, context, connections=max(1, concurrency // 250) + 1, timeout=timeout
        )

    async def close(self) -> None:
        await self._client.close()

    async def send_many(self, requests: Iterable[PushRequest]) -> list[PushResult]:
        """Every request sent, at most `concurrency` at a time; results in the same order."""
        return list(await asyncio.gather(*(self.send(request) for request in requests)))

    async def send(self, request: PushRequest) -> PushResult:
        result = await self.send_while(request, _always)
        assert result is not None
        return result

    async def send_while(
        self, request: PushRequest, allowed: Callable[[], bool]
    ) -> PushResult | None:
        """`send`, asking `allowed()` before each attempt (once through the concurrency
        gate, and before each retry): None when it says no before anything was accepted.
        A pusher's claim is only good for its lease; past it, another pusher may be pushing
        the same device, so the push is left to that one."""
        async with self._gate:
            result = await self._send_with_retries(request, allowed)
        if result is not None:
            PUSHES.labels(result.outcome.value).inc()
        return result

    async def _send_with_retries(
        self, request: PushRequest, allowed: Callable[[], bool]
    ) -> PushResult | None:
        result = None
        for attempt in range(self.retries + 1):
            if attempt:
                # Jittered exponential backoff, so a burst of 429s does not come back at once.
                await asyncio.sleep(self.backoff * 2 ** (attempt - 1) * random.uniform(0.5, 1.5))
            if not allowed():
                return None
            result = await self._send_once(request)
            if result.outcome != Outcome.RETRY_LATER:
                return result
        return result

    async def _send_once(self, request: PushRequest) -> PushResult:
        expiration = str(int(time.time()) + self.expiration_seconds).encode()
        headers = [*self._headers, (b"apns-expiration", expiration)]
        body = json.dumps({"mdm": request.push_magic}).encode()
        path = f"/3/device/{request.token.hex()}"
        try:
            status, answer = await self._client.post(path, headers, body)
        except (ConnectionGoneError, OSError, TimeoutError) as exc:  # dropped, GOAWAY, reset
            return PushResult(request.device_id, Outcome.RETRY_LATER, None, type(exc).__name__)
        return _classify(request.device_id, status, answer)


def _always() -> bool:
    return True


def _classify(device_id: str, status: int, body: bytes) -> PushResult:
    if status == 200:
        return PushResult(device_id, Outcome.ACCEPTED, status)
    reason = _reason(body)
    if status == 410 or (status == 400 and reason in DEAD_TOKEN_REASONS):
        return PushResult(device_id, Outcome.INVALID_TOKEN, status, reason)
    if status == 429 or status >= 500:
        return PushResult(device_id, Outcome.RETRY_LATER, status, reason)
    return PushResult(device_id, Outcome.REJECTED, status, reason)


def _reason(body: bytes) -> str | None:
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    reason = parsed.get("reason") if isinstance(parsed, dict) else None
    return str(reason) if reason is not None else None


def summary(results: Sequence[PushResult]) -> dict[str, int]:
    """How many of each outcome: for logs and the benchmark."""
    counts: dict[str, int] = {}
    for result in results:
        counts[result.outcome.value] = counts.get(result.outcome.value, 0) + 1
    return counts
