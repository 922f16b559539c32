"""A local stand-in for Apple's push service, for tests, `make bench` and `simulate`.

Apple's servers cannot be reached from here, so this peer enforces the rules an MDM
provider meets at api.push.apple.com (protocol-notes §3c): HTTP/2 over TLS with a client
certificate, `POST /3/device/<hex token>`, `apns-push-type: mdm`, an `apns-topic` equal to
the client certificate's subject UID, a JSON body `{"mdm": PushMagic}` of at most 4 KB;
answers 200 with `apns-id`, or the status and `{"reason": …}` body Apple sends. It can be
told to answer 410 for a token, throttle with 429, answer slowly, cut a connection
mid-flight or send GOAWAY, and it hands each accepted push to `forward` so a virtual
device can check in.

h2 does the framing (a well-kept library); this file only plays Apple's part.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime
import ipaddress
import json
import ssl
import string
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from orchardist.push.h2client import CachingEncoder

MAX_PAYLOAD = 4096
PRIORITIES = frozenset({"10", "5", "1"})


@dataclass(frozen=True)
class Push:
    """An accepted push, as Apple would deliver it."""

    token: str  # hex, lower case
    topic: str
    magic: str
    priority: str | None
    expiration: str | None


@dataclass
class Behaviour:
    """What the peer does besides accepting: set these from a test."""

    unregistered: set[str] = field(default_factory=set)  # tokens answered 410
    throttled: collections.Counter[str] = field(default_factory=collections.Counter)  # 429s left
    failures: collections.Counter[int] = field(default_factory=collections.Counter)  # 5xx left
    drop_after: int | None = None  # cut the connection after this many more requests
    goaway_after: int | None = None  # send GOAWAY after this many more requests
    stalled: set[str] = field(default_factory=set)  # tokens whose requests are never answered
    delay: float = 0.0  # seconds before each answer: a slow APNs (or a long way to it)
    max_streams: int = 1000  # SETTINGS_MAX_CONCURRENT_STREAMS announced; h2 enforces it


@dataclass
class Tally:
    requests: int = 0
    accepted: collections.Counter[str] = field(default_factory=collections.Counter)
    refused: collections.Counter[str] = field(default_factory=collections.Counter)  # by reason
    connections: int = 0
    # time.monotonic() (one clock for every process here) of the last push accepted for a
    # token not pushed before: when the last device got its first push.
    last_first_push: float = 0.0


class ApnsPeer:
    def __init__(
        self,
        client_ca_pem: bytes,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        forward: Callable[[Push], None] | None = None,
    ) -> None:
        self.client_ca_pem = client_ca_pem
        self.host, self.port = host, port
        self.forward = forward
        self.behaviour = Behaviour()
        self.tally = Tally()
        self.ca_pem, self._context = _server_context(client_ca_pem, host)
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    def write_ca(self, directory: Path) -> Path:
        """The peer's CA as a file, for ORCHARDIST_APNS_CA_FILE."""
        path = directory / "apns-peer-ca.pem"
        path.write_bytes(self.ca_pem)
        return path

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self), self.host, self.port, ssl=self._context, backlog=512
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for connection in list(self._connections):
                connection.abort()
            await self._server.wait_closed()

    async def __aenter__(self) -> ApnsPeer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def answer(
        self, topic: str | None, headers: dict[str, str], body: bytes
    ) -> tuple[int, str | None, Push | None]:
        """Apple's verdict on one request: (status, reason, the push when accepted)."""
        behaviour, path = self.behaviour, headers.get(":path", "")
        if headers.get(":method") != "POST":
            return 405, "MethodNotAllowed", None
        if not path.startswith("/3/device/"):
            return 404, "BadPath", None
        token = path.removeprefix("/3/device/")
        if len(token) != 64 or not set(token) <= set(string.hexdigits):
            return 400, "BadDeviceToken", None
        token = token.lower()
        if headers.get("apns-push-type") != "mdm":
            return 400, "InvalidPushType", None
        if "apns-topic" not in headers:
            return 400, "MissingTopic", None
        if topic is None or headers["apns-topic"] != topic:
            return 400, "TopicDisallowed", None
        if headers.get("apns-priority", "10") not in PRIORITIES:
            return 400, "BadPriority", None
        if not headers.get("apns-expiration", "0").isdigit():
            return 400, "BadExpirationDate", None
        if not body:
            return 400, "PayloadEmpty", None
        if len(body) > MAX_PAYLOAD:
            return 413, "PayloadTooLarge", None
        try:
            payload = json.loads(body)
        except ValueError:
            return 400, "BadPayload", None
        if not isinstance(payload, dict) or not isinstance(payload.get("mdm"), str):
            return 400, "BadPayload", None
        if token in behaviour.unregistered:
            return 410, "Unregistered", None
        if behaviour.throttled[token] > 0:
            behaviour.throttled[token] -= 1
            return 429, "TooManyRequests", None
        for status in list(behaviour.failures):
            if behaviour.failures[status] > 0:
                behaviour.failures[status] -= 1
                reason = "InternalServerError" if status == 500 else "ServiceUnavailable"
                return status, reason, None
        push = Push(
            token,
            topic,
            payload["mdm"],
            headers.get("apns-priority"),
            headers.get("apns-expiration"),
        )
        return 200, None, push


class _Connection(asyncio.Protocol):
    def __init__(self, peer: ApnsPeer) -> None:
        self.peer = peer
        # Requests are checked as h2 does; the peer's own (fixed) answers are not.
        config = h2.config.H2Configuration(
            client_side=False,
            header_encoding="utf-8",
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
        )
        self.h2 = h2.connection.H2Connection(config=config)
        # Its answers' fields made once (the pusher's encoder); each apns-id is new.
        self.h2.encoder = CachingEncoder(unique=frozenset({b"apns-id"}))
        self.transport: asyncio.Transport | None = None
        self.topic: str | None = None
        self.requests: dict[int, tuple[dict[str, str], bytearray]] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self.transport = cast(asyncio.Transport, transport)
        self.peer._connections.add(self)
        self.peer.tally.connections += 1
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is None or ssl_object.selected_alpn_protocol() != "h2":
            transport.close()  # Apple speaks HTTP/2 only
            return
        self.topic = _topic_of(ssl_object.getpeercert(binary_form=True))
        self.h2.local_settings = h2.settings.Settings(
            client=False,
            initial_values={
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: self.peer.behaviour.max_streams
            },
        )
        self.h2.initiate_connection()
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.peer._connections.discard(self)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def data_received(self, data: bytes) -> None:
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError:
            self._flush()
            self.abort()
            return
        for event in events:
            if isinstance(event, h2.events.RequestReceived):
                headers = {str(k): str(v) for k, v in event.headers or []}
                self.requests[event.stream_id] = (headers, bytearray())
            elif isinstance(event, h2.events.DataReceived):
                if event.stream_id in self.requests:
                    self.requests[event.stream_id][1].extend(event.data or b"")
                self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                if self._request_complete(event.stream_id):
                    return
            elif isinstance(event, h2.events.ConnectionTerminated):
                self.abort()
                return
        self._flush()

    def _request_complete(self, stream_id: int) -> bool:
        """Answer one request; True when the connection was cut on purpose."""
        peer, behaviour = self.peer, self.peer.behaviour
        headers, body = self.requests.pop(stream_id, ({}, bytearray()))
        peer.tally.requests += 1
        if behaviour.drop_after is not None:
            if behaviour.drop_after <= 0:
                behaviour.drop_after = None
                self.abort()  # mid-flight: this request is never answered
                return True
            behaviour.drop_after -= 1
        if headers.get(":path", "").removeprefix("/3/device/") in behaviour.stalled:
            return False  # left hanging: the client's timeout must deal with it
        verdict = peer.answer(self.topic, headers, bytes(body))
        apns_id = headers.get("apns-id") or str(uuid.uuid4()).upper()
        if behaviour.delay > 0:
            # Answered later, in arrival order; what is tallied and forwarded then.
            asyncio.get_running_loop().call_later(
                behaviour.delay, self._respond_late, stream_id, apns_id, verdict
            )
        else:
            self._respond(stream_id, apns_id, verdict)
        if behaviour.goaway_after is not None:
            if behaviour.goaway_after <= 0:
                behaviour.goaway_after = None
                # Apple puts the reason in the debug data; streams after this one are refused.
                self.h2.close_connection(
                    error_code=0,
                    additional_data=json.dumps({"reason": "Shutdown"}).encode(),
                    last_stream_id=stream_id,
                )
                self._flush()
                assert self.transport is not None
                self.transport.close()
                return True
            behaviour.goaway_after -= 1
        return False

    def _respond(
        self, stream_id: int, apns_id: str, verdict: tuple[int, str | None, Push | None]
    ) -> None:
        """Answer, and count what was answered: a stream the client reset already (it gave
        up, or was cancelled, even in the same packet as its request) gets nothing."""
        peer = self.peer
        status, reason, push = verdict
        response = [(":status", str(status)), ("apns-id", apns_id)]
        try:
            if push is not None:
                self.h2.send_headers(stream_id, response, end_stream=True)
            else:
                assert reason is not None
                error: dict[str, object] = {"reason": reason}
                if status == 410:
                    error["timestamp"] = int(time.time() * 1000)
                response.append(("content-type", "application/json"))
                self.h2.send_headers(stream_id, response)
                self.h2.send_data(stream_id, json.dumps(error).encode(), end_stream=True)
        except h2.exceptions.ProtocolError:
            # The client reset the stream, or its GOAWAY came in the same read as this
            # request's end and closed the connection: either way nothing was delivered.
            return
        if push is None:
            peer.tally.refused[str(reason)] += 1
            return
        peer.tally.accepted[push.token] += 1
        if peer.tally.accepted[push.token] == 1:
            peer.tally.last_first_push = time.monotonic()
        if peer.forward is not None:
            asyncio.get_running_loop().call_soon(peer.forward, push)

    def _respond_late(
        self, stream_id: int, apns_id: str, verdict: tuple[int, str | None, Push | None]
    ) -> None:
        if self.transport is None or self.transport.is_closing():
            return  # the client went away meanwhile: nothing was delivered
        self._respond(stream_id, apns_id, verdict)
        self._flush()

    def _flush(self) -> None:
        data = self.h2.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)


def _topic_of(der: bytes | None) -> str | None:
    if der is None:
        return None
    cert = x509.load_der_x509_certificate(der)
    uids = cert.subject.get_attributes_for_oid(NameOID.USER_ID)
    return str(uids[0].value) if uids else None


def _server_context(client_ca_pem: bytes, host: str) -> tuple[bytes, ssl.SSLContext]:
    """A throw-away CA and server certificate for `host`; client certificates required."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Orchardist APNs peer CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=7))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    try:
        names.append(x509.IPAddress(ipaddress.ip_address(host)))
    except ValueError:
        names.append(x509.DNSName(host))
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=7))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cadata=client_ca_pem.decode())
    context.set_alpn_protocols(["h2"])
    with tempfile.TemporaryDirectory() as tmp:  # load_cert_chain reads files only
        chain, key_file = Path(tmp, "peer.pem"), Path(tmp, "peer.key")
        chain.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        context.load_cert_chain(chain, key_file)
    return ca.public_bytes(serialization.Encoding.PEM), context


async def serve_forever(
    client_ca: bytes, port: int, ca_out: Path, delay: float = 0.0, feed_port: int | None = None
) -> None:
    """Run the peer until cancelled; print its URL once listening (for `make bench`). With
    `feed_port`, accepted pushes go to `simulate --apns-feed` processes (push_feed.py)."""
    from orchardist.simulator.push_feed import FeedServer  # it imports this module

    peer = ApnsPeer(client_ca, port=port)
    peer.behaviour.delay = delay
    feed = FeedServer(peer, feed_port) if feed_port is not None else None
    if feed is not None:
        await feed.start()
    await peer.start()
    peer.write_ca(ca_out.parent).rename(ca_out)
    print(peer.url, flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        print(json.dumps(_tally_json(peer.tally)), flush=True)
        await peer.close()
        if feed is not None:
            await feed.close()


def _tally_json(tally: Tally) -> dict[str, object]:
    return {
        "requests": tally.requests,
        "accepted": sum(tally.accepted.values()),
        "tokens": len(tally.accepted),
        "most_per_token": max(tally.accepted.values(), default=0),
        "refused": dict(tally.refused),
        "connections": tally.connections,
        "last_first_push": tally.last_first_push,
    }


def main() -> None:
    import argparse
    import signal

    parser = argparse.ArgumentParser(description="Local APNs peer (tests and benchmarks)")
    parser.add_argument("--client-ca", type=Path, required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ca-out", type=Path, required=True)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each answer")
    feed = "serve accepted pushes to `simulate --apns-feed` on this port"
    parser.add_argument("--feed-port", type=int, default=None, help=feed)
    args = parser.parse_args()

    async def run() -> None:
        task = asyncio.ensure_future(
            serve_forever(
                args.client_ca.read_bytes(), args.port, args.ca_out, args.delay, args.feed_port
            )
        )
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
        loop.add_signal_handler(signal.SIGINT, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    # On uvloop, as the server runs: its TLS is compiled, and this process shares the
    # machine with the server it plays Apple for (bench scale: a fifth of the CPU).
    import uvloop

    uvloop.run(run())


if __name__ == "__main__":
    main()
