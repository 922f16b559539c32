"""OS versions read as numbers, and sort keys that order as they do."""

from __future__ import annotations

from orchardist.os_versions import key_range, parse_version, sort_key, version_parts


def test_versions_are_numbers() -> None:
    assert version_parts("17.2.1") == (17, 2, 1)
    assert version_parts("17.2 beta 3") == (17, 2)
    assert version_parts("beta") is version_parts("") is version_parts(None) is None
    assert parse_version("17.0.0") == parse_version("17") == (17,)
    assert parse_version("17.10") > parse_version("17.9")  # type: ignore[operator]


def test_sort_keys_order_as_the_versions_do() -> None:
    versions = ["9.3.5", "17", "17.0.1", "17.2", "17.9", "17.10", "18.0"]
    keys = [sort_key(v) for v in versions]
    assert keys == sorted(keys)  # type: ignore[type-var]
    assert sort_key("17") == sort_key("17.0.0")
    assert sort_key("x") is None
    assert sort_key("1234567.1") == sort_key("999999.1")  # clamped to the width


def test_a_prefix_covers_its_versions_and_no_others() -> None:
    low, high = key_range((17, 2))
    inside = [sort_key(v) for v in ("17.2", "17.2.0", "17.2.1", "17.2.10")]
    outside = [sort_key(v) for v in ("17.20", "17.1.9", "17.3", "1.7")]
    assert all(low <= k <= high for k in inside if k)
    assert not any(low <= k <= high for k in outside if k)
    exact = key_range((17, 2, 1, 0))
    assert exact == (sort_key("17.2.1"), sort_key("17.2.1"))
