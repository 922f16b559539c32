"""The fast XML plist reader agrees with plistlib on every document it reads, and leaves to
plistlib (returns None) every document it does not read in plistlib's way."""

from __future__ import annotations

import plistlib
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchardist import plistxml
from orchardist.plists import MAX_DEPTH, PlistError, load_dictionary
from tests.captures import CAPTURES

HEAD = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN"'
    b' "http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n<plist version="1.0">\n'
)


def _plist(inner: bytes) -> bytes:
    return HEAD + inner + b"\n</plist>\n"


CAPTURED = sorted(
    path for path in CAPTURES.rglob("*") if path.suffix in (".plist", ".xml") and path.is_file()
)


@pytest.mark.parametrize("path", CAPTURED, ids=lambda p: str(p.relative_to(CAPTURES)))
def test_device_captures_read_as_plistlib_reads_them(path: Path) -> None:
    body = path.read_bytes()
    try:
        expected = plistlib.loads(body)
    except Exception:
        assert plistxml.read(body, MAX_DEPTH) is None
        return
    fast = plistxml.read(body, MAX_DEPTH)
    assert fast is None or fast == expected


_KEYS = st.text(min_size=1, max_size=8)
_SCALARS = (
    st.text(max_size=20)
    | st.binary(max_size=40)
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1)).map(
        lambda d: d.replace(microsecond=0)
    )
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_KEYS, _VALUES, max_size=6))
def test_what_plistlib_writes_reads_back_the_same(value: dict[str, Any]) -> None:
    try:
        body = plistlib.dumps(value)
    except ValueError:
        return  # control characters plistlib cannot write
    fast = plistxml.read(body, MAX_DEPTH)
    assert fast == plistlib.loads(body)
    assert fast is not None or b"\r" in body or b"]]>" in body


@pytest.mark.parametrize(
    "inner",
    [
        b"<dict><key>a</key><string>x &amp; y &lt;z&gt;</string></dict>",
        b"<dict><key>a&amp;b</key><integer>0x1F</integer></dict>",
        b"<dict><key>a</key><dict/><key>b</key><array/><key>c</key><string/></dict>",
        b"<dict><key>a</key><data>AAEC\n\tAwQ=</data><key>d</key><date>2024-05-01T10:00:00Z</date></dict>",
        b"<dict><key>a</key><real>1.5</real><key>a</key><false/></dict>",
    ],
)
def test_plain_documents_read_fast(inner: bytes) -> None:
    body = _plist(inner)
    fast = plistxml.read(body, MAX_DEPTH)
    assert fast is not None
    assert fast == plistlib.loads(body)


@pytest.mark.parametrize(
    "body",
    [
        _plist(b"<dict><key>a</key><string>&#65;</string></dict>"),  # a character reference
        _plist(b"<dict><key>a</key><string>&foo;</string></dict>"),  # an undefined entity
        _plist(b"<dict><key>a</key><string>a & b</string></dict>"),  # not well-formed
        _plist(b"<dict><!-- c --><key>a</key><string>x</string></dict>"),
        _plist(b"<dict><key>a</key><string><![CDATA[<x>]]></string></dict>"),
        _plist(b"<dict><key>a</key><string>x\r\ny</string></dict>"),  # expat turns it to \n
        _plist(b"<dict><key>a</key><string>x\x01</string></dict>"),
        _plist(b"<dict><key>a</key><string>]]></string></dict>"),
        _plist(b"<dict><key>a</key><foo>x</foo></dict>"),  # unknown elements
        _plist(b"<array><key>a</key><string>x</string></array>"),  # a key in an array
        _plist(b"<dict><key>a</key></dict>"),  # a key without a value
        _plist(b"<dict><string>x</string></dict>"),  # a value without a key
        _plist(b"<dict><key></key><string>x</string></dict>"),  # an empty key
        _plist(b"<dict></dict><dict></dict>"),  # two roots
        _plist(b"<dict><key>a</key><array></dict></array>"),  # crossed
        _plist(b"<dict>text<key>a</key><string>x</string></dict>"),
        _plist(b"<dict><key>a</key><integer>18446744073709551616</integer></dict>"),
        _plist(b"<dict><key>a</key><integer></integer></dict>"),
        _plist(b"<dict><key>a</key><date>yesterday</date></dict>"),
        _plist(b"<dict><key>a</key><string>\xff</string></dict>"),  # not UTF-8
        _plist(b"<dict><key>a</key><string>\xef\xbf\xbe</string></dict>"),  # U+FFFE
        _plist(b'<dict><key a="1">a</key><string>x</string></dict>'),
        HEAD.replace(b"<!DOCTYPE", b'<!DOCTYPE plist [<!ENTITY e "x">]><!--') + b"<dict/></plist>",
        b'<?xml version="1.0" encoding="ISO-8859-1"?><plist><dict/></plist>',
        b"<!DOCTYPE plist><plist><dict/></plist>",
        _plist(b"<array>" * 70 + b"</array>" * 70),  # deeper than MAX_DEPTH
    ],
)
def test_other_documents_are_left_to_plistlib(body: bytes) -> None:
    assert plistxml.read(body, MAX_DEPTH) is None


def test_depth_and_range_refusals_read_as_before() -> None:
    with pytest.raises(PlistError, match="nested deeper than 64 levels"):
        load_dictionary(
            _plist(b"<dict><key>a</key>" + b"<array>" * 70 + b"</array>" * 70 + b"</dict>")
        )
    with pytest.raises(PlistError, match="outside the 64-bit range"):
        load_dictionary(_plist(b"<dict><key>a</key><integer>-9223372036854775809</integer></dict>"))
    with pytest.raises(PlistError, match="not a dictionary"):
        load_dictionary(_plist(b"<array/>"))


def test_a_large_document_reads_across_chunks() -> None:
    value = {
        "InstalledApplicationList": [
            {"Identifier": f"com.example.app{n}", "Name": "A & B\n\tC", "BundleSize": n}
            for n in range(5000)
        ]
    }
    body = plistlib.dumps(value)
    assert len(body) > 4 * plistxml._CHUNK
    assert plistxml.read(body, MAX_DEPTH) == value
