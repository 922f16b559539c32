"""orchardist.apps.ranges: what a Range header asks of a file, by RFC 9110 — and whatever
the header says, the answer is the whole file, a part inside it, or a 416."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchardist.apps.ranges import (
    ByteRange,
    UnsatisfiableRangeError,
    if_range_allows,
    requested_range,
)

SIZE = 1000


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-99", ByteRange(0, 100)),
        ("bytes=100-", ByteRange(100, SIZE)),
        ("bytes=-1", ByteRange(SIZE - 1, SIZE)),
        ("bytes=-5000", ByteRange(0, SIZE)),
        ("bytes=990-5000", ByteRange(990, SIZE)),
        ("bytes=999-999", ByteRange(999, SIZE)),
        (" bytes = 1 - 2 ", ByteRange(1, 3)),
    ],
)
def test_one_range(header: str, expected: ByteRange) -> None:
    assert requested_range(header, SIZE) == expected


@pytest.mark.parametrize(
    "header",
    [None, "", "bytes=", "bytes=-", "bytes=5-1", "bytes=0-1,3-4", "pages=0-1", "bytes=x-1",
     "bytes=" + "9" * 20 + "-"],
)  # fmt: skip
def test_what_is_ignored_means_the_whole_file(header: str | None) -> None:
    assert requested_range(header, SIZE) is None


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=1000-2000", "bytes=-0"])
def test_past_the_end_is_unsatisfiable(header: str) -> None:
    with pytest.raises(UnsatisfiableRangeError):
        requested_range(header, SIZE)


def test_an_empty_file_has_no_range() -> None:
    for header in ("bytes=0-", "bytes=-1"):
        with pytest.raises(UnsatisfiableRangeError):
            requested_range(header, 0)


def test_content_range_is_inclusive() -> None:
    assert ByteRange(0, 100).content_range(SIZE) == "bytes 0-99/1000"


def test_if_range_must_name_this_file() -> None:
    assert if_range_allows(None, '"abc"')
    assert if_range_allows('"abc"', '"abc"')
    assert not if_range_allows('"abd"', '"abc"')
    assert not if_range_allows("Wed, 21 Oct 2015 07:28:00 GMT", '"abc"')


@given(header=st.text(max_size=40), size=st.integers(0, 10**12))
def test_any_header_gives_a_part_inside_the_file(header: str, size: int) -> None:
    try:
        found = requested_range(header, size)
    except UnsatisfiableRangeError:
        return
    if found is not None:
        assert 0 <= found.start < found.end <= size


@given(first=st.integers(0, 2000), last=st.integers(0, 2000), size=st.integers(0, 2000))
def test_well_formed_ranges_follow_the_rfc(first: int, last: int, size: int) -> None:
    header = f"bytes={first}-{last}"
    if last < first:
        assert requested_range(header, size) is None
    elif first >= size:
        with pytest.raises(UnsatisfiableRangeError):
            requested_range(header, size)
    else:
        assert requested_range(header, size) == ByteRange(first, min(last + 1, size))
