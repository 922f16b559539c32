"""Keyset paging for /api/v1 lists other than the device list (which has its own sorts,
see `mdm.device_list`): a page is a JSON list as before, and while more follow the answer
carries `Link: <…>; rel="next"` (RFC 8288) and `X-Next-Cursor`. The cursor is where the
page ended (the last row's key) as URL-safe base64 of a small JSON object: a position,
not a secret; an edited one only moves where the next page starts."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from typing import Annotated, TypeVar

from fastapi import Query, Request, Response
from fastapi.exceptions import RequestValidationError

T = TypeVar("T")
MAX_CURSOR = 1024
Cursor = Annotated[
    str | None,
    Query(max_length=MAX_CURSOR, description="X-Next-Cursor of the previous page"),
]


def encode_cursor(position: dict[str, str]) -> str:
    text = json.dumps(position, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(text).decode().rstrip("=")


def decode_cursor(cursor: str | None, keys: Sequence[str]) -> dict[str, str] | None:
    """The position in `cursor` (None without one): a 422 naming `cursor` when it is not
    one this list made (every key, each a string)."""
    if not cursor:
        return None
    try:
        document = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        document = None
    if not isinstance(document, dict) or not all(
        isinstance(document.get(key), str) and "\x00" not in document[key] for key in keys
    ):
        raise RequestValidationError(
            [{"loc": ["query", "cursor"], "msg": "not a cursor from this list: start again "
              "without one", "type": "value_error", "input": cursor}]
        )  # fmt: skip
    return {key: document[key] for key in keys}


def one_page(
    rows: Sequence[T],
    limit: int,
    request: Request,
    response: Response,
    key: Callable[[T], dict[str, str]],
    *,
    path: str | None = None,
) -> list[T]:
    """The first `limit` of `rows` (the caller asks its store for limit + 1 to learn whether
    more follow); when more do, the Link and X-Next-Cursor headers for the page after the
    last one kept, whose `key` is the cursor. The link is to this request's path, or to
    `path` with this request's parameters."""
    if len(rows) <= limit or limit == 0:  # 0: a caller that wants none, only counts
        return list(rows[:limit])
    page = list(rows[:limit])
    following = encode_cursor(key(page[-1]))
    url = request.url.include_query_params(cursor=following)
    response.headers["X-Next-Cursor"] = following
    response.headers["Link"] = f'<{path or url.path}?{url.query}>; rel="next"'
    return page
