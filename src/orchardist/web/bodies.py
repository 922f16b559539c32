"""Request bodies read with a size limit, refused before parsing when too large."""

from __future__ import annotations

from urllib.parse import parse_qs

from fastapi import HTTPException, Request
from starlette.types import Receive


async def read_limited_body(request: Request, limit: int) -> bytes:
    """The whole body, or a 413 as soon as it is known to exceed `limit` bytes: first from
    Content-Length, then while streaming (a chunked body declares no length)."""
    refusal = length_refusal(request.headers.get("content-length"), limit)
    if refusal is not None:
        raise HTTPException(*refusal)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"request body over the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


class BodyRefusedError(Exception):
    """A body refused before it was read whole: its HTTP status and reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


async def read_asgi_body(declared: str | None, receive: Receive, limit: int) -> bytes:
    """read_limited_body for the device lanes, straight from ASGI messages: `declared` is
    the Content-Length header, if any."""
    refusal = length_refusal(declared, limit)
    if refusal is not None:
        raise BodyRefusedError(*refusal)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise BodyRefusedError(400, "the client went away before the body was read")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyRefusedError(413, f"request body over the {limit}-byte limit")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def length_refusal(declared: str | None, limit: int) -> tuple[int, str] | None:
    """Why a declared Content-Length is refused before reading (status, reason), or None."""
    if declared is None:
        return None
    # isdigit alone admits "²" and other Unicode digits that int() refuses.
    if not declared.isascii() or not declared.isdigit():
        return 400, "Content-Length is not a number"
    if len(declared) > 18 or int(declared) > limit:
        return 413, f"request body over the {limit}-byte limit"
    return None


async def read_form(request: Request, limit: int) -> dict[str, str]:
    """An urlencoded form's fields, the first value of each (the enrollment site's and the
    app catalog's small forms), read within `limit` bytes."""
    raw = await read_limited_body(request, limit)
    parsed = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
    return {key: values[0] for key, values in parsed.items()}
