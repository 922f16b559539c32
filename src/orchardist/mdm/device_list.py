"""The device list as the API, the console and the CLI page through it: cursors that say
where a page ended, and every matching device in order for exports.

A cursor is the last device's sort value and UDID with the sort and order it belongs to,
as URL-safe base64 of a small JSON object. It is a position, not a secret: a client that
edits one only moves where its page starts. One made for another sort or order is refused,
since its value would be compared with the wrong column.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from orchardist.storage.listing import (
    DeviceFilters,
    DeviceListStore,
    DeviceSort,
    ListedDevice,
    Position,
    SortValue,
)

MAX_CURSOR = 1024  # characters: a value and a UDID fit many times over
_TIMES = (DeviceSort.LAST_SEEN, DeviceSort.ENROLLED_AT)
_VERSION = re.compile(r"\d{1,6}(?:\.\d{1,6}){0,3}")
_STORABLE = re.compile("[\\x00\\ud800-\\udfff]")  # what no database column takes


class CursorError(ValueError):
    """A cursor this listing cannot continue from; the message says why."""


def encode_cursor(sort: DeviceSort, descending: bool, position: Position) -> str:
    value = position.value.isoformat() if isinstance(position.value, datetime) else position.value
    document = {"s": sort.value, "o": "desc" if descending else "asc", "v": value,
                "u": position.device_id}  # fmt: skip
    text = json.dumps(document, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(text).decode().rstrip("=")


def decode_cursor(cursor: str, sort: DeviceSort, descending: bool) -> Position:
    """The position in `cursor`, made for this sort and order; CursorError otherwise."""
    document = _document(cursor)
    order = "desc" if descending else "asc"
    if document.get("s") != sort.value or document.get("o") != order:
        raise CursorError(
            f"this cursor continues sort={document.get('s')}&order={document.get('o')}, not "
            f"sort={sort.value}&order={order}: start again without a cursor"
        )
    device_id, value = document.get("u"), document.get("v")
    if not isinstance(device_id, str) or not _storable(device_id):
        raise CursorError("not a cursor from this server")
    return Position(_value(value, sort), device_id)


def os_version_filter(text: str) -> tuple[int, ...]:
    """ "17" or "17.2" as the parts a filter matches (17.2 and every 17.2.x); ValueError for
    anything else."""
    if not _VERSION.fullmatch(text):
        raise ValueError("an OS version such as 17 or 17.2")
    return tuple(int(part) for part in text.split("."))


async def every_device(
    store: DeviceListStore,
    filters: DeviceFilters,
    *,
    sort: DeviceSort = DeviceSort.UDID,
    descending: bool = False,
    page_size: int = 1000,
) -> AsyncIterator[ListedDevice]:
    """Every matching device in order, read a page at a time (an export, `device list`)."""
    after: Position | None = None
    while True:
        page = await store.list_devices(
            filters, sort=sort, descending=descending, after=after, limit=page_size
        )
        for device in page.devices:
            yield device
        if page.next is None:
            return
        after = page.next


def _document(cursor: str) -> dict[str, Any]:
    if len(cursor) > MAX_CURSOR:
        raise CursorError("not a cursor from this server (too long)")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        document = json.loads(raw)
    except (binascii.Error, ValueError, RecursionError):
        raise CursorError("not a cursor from this server") from None
    if not isinstance(document, dict):
        raise CursorError("not a cursor from this server")
    return document


def _value(value: Any, sort: DeviceSort) -> SortValue:
    if value is None:
        return None
    if not isinstance(value, str) or not _storable(value):
        raise CursorError("not a cursor from this server")
    if sort not in _TIMES:
        return value
    try:
        moment = datetime.fromisoformat(value)
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise CursorError("not a cursor from this server (its time)") from None


def _storable(text: str) -> bool:
    return len(text) <= MAX_CURSOR and _STORABLE.search(text) is None
