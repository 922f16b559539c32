"""What a proxy says about a request, believed only from a peer in `trusted_proxies`.

Two things: the client's address and scheme (X-Forwarded-For, X-Forwarded-Proto: uvicorn's
ProxyHeadersMiddleware), and the TLS client certificate a TLS-terminating proxy forwards in
`mdm_client_cert_header`. From any other peer that header is removed before the app sees
it: a device's certificate is no secret (every signed message carries it), so a header
holding one proves something only when the proxy that set it saw the private key used in
its own TLS handshake. This is the outermost layer of what `serve` runs; uvicorn's own
proxy handling is off there, since it replaces the peer's address before the app could
see it."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from orchardist.config import Settings


class TrustedProxies:
    def __init__(self, app: ASGIApp, trusted: list[str], cert_header: str | None) -> None:
        self.forwarded = ProxyHeadersMiddleware(app, trusted_hosts=trusted)  # type: ignore[arg-type]
        self.cert_header = cert_header.lower().encode("latin-1") if cert_header else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.cert_header is not None and scope["type"] == "http":
            peer = scope.get("client")
            if peer is None or peer[0] not in self.forwarded.trusted_hosts:
                headers = scope["headers"]
                scope["headers"] = [(name, value) for name, value in headers
                                    if name.lower() != self.cert_header]  # fmt: skip
        await self.forwarded(scope, receive, send)  # type: ignore[arg-type]


def behind_proxies(app: ASGIApp, settings: Settings) -> ASGIApp:
    """`app` taking from proxies only what `settings.trusted_proxies` may tell it."""
    return TrustedProxies(app, settings.trusted_proxies, settings.mdm_client_cert_header)
