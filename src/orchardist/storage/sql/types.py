"""Column types that keep the two backends honest."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, String
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    """`DateTime(timezone=True)` that refuses naive values going in and returns aware UTC
    values coming out. asyncpg rejects naive values anyway, but SQLite accepts anything and
    hands back naive datetimes, which would hide the bug until PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: use timezone-aware UTC values")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class FittedString(TypeDecorator[str]):
    """`String(length)` for text a device or an API client reports (names, versions): a
    longer value is cut to fit and NUL characters are dropped. PostgreSQL refuses both while
    SQLite stores anything, and one over-long name must not cost a device the rest of its
    answer. Not for keys: cutting could make two different keys equal."""

    impl = String
    cache_ok = True

    def __init__(self, length: int) -> None:
        super().__init__(length)
        self.length = length

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return self.fit(value)

    @property
    def fit(self) -> Callable[[str | None], str | None]:
        """process_bind_param as a plain function, for thousands of rows at a time
        (DriverSql.insert_many): a value that fits, as most do, is only looked at."""
        return _fitter(self.length)


@functools.cache
def _fitter(length: int) -> Callable[[str | None], str | None]:
    def fit(value: str | None) -> str | None:
        if value is None or (len(value) <= length and "\x00" not in value):
            return value
        return value.replace("\x00", "")[:length]

    return fit
