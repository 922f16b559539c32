"""Plists no well-behaved writer produces, for the bad-input and mutation tests: XML with
raw fragments (a `<date>x</date>`, an unknown encoding, integers of any size) and binary
plists with nesting, cycles and shared containers plistlib would never write."""

from __future__ import annotations

import base64
import itertools
import math
import struct
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape


@dataclass(frozen=True)
class Raw:
    """An XML fragment written as it is, in place of a value."""

    xml: str


def nested_xml(depth: int) -> Raw:
    return Raw("<array>" * depth + "</array>" * depth)


def xml(value: Any, *, encoding: str = "UTF-8") -> bytes:
    """`value` as an XML plist; Raw fragments, huge integers and nan as they are."""
    head = f'<?xml version="1.0" encoding="{encoding}"?>\n' if encoding else ""
    return f'{head}<plist version="1.0">{_element(value)}</plist>'.encode()


def _element(value: Any) -> str:
    match value:
        case Raw(fragment):
            return fragment
        case bool():
            return "<true/>" if value else "<false/>"
        case int():
            return f"<integer>{value}</integer>"
        case float():
            return f"<real>{value if math.isfinite(value) else str(value)}</real>"
        case str():
            return f"<string>{escape(value)}</string>"
        case bytes():
            return f"<data>{base64.b64encode(value).decode()}</data>"
        case datetime():
            return f"<date>{value:%Y-%m-%dT%H:%M:%SZ}</date>"
        case dict():
            items = "".join(f"<key>{escape(k)}</key>{_element(v)}" for k, v in value.items())
            return f"<dict>{items}</dict>"
        case list():
            return f"<array>{''.join(_element(v) for v in value)}</array>"
    raise TypeError(f"no plist element for {type(value).__name__}")


class Binary:
    """A binary plist built object by object: containers refer to objects by index, so
    they may nest any depth, share children, or contain themselves."""

    def __init__(self) -> None:
        self._objects: list[tuple[str, Any]] = []

    def string(self, text: str) -> int:
        return self._add("ascii", text.encode("ascii"))

    def integer(self, value: int) -> int:
        return self._add("int", value)

    def array(self, refs: list[int] | None = None) -> int:
        return self._add("array", list(refs or []))

    def raw(self, encoded: bytes) -> int:
        """An object given as its encoding (a marker byte and what follows)."""
        return self._add("raw", encoded)

    def dictionary(self, pairs: dict[int, int] | None = None) -> int:
        return self._add("dict", dict(pairs or {}))

    def strings(self, fields: dict[str, str]) -> dict[int, int]:
        """Key and value objects for string fields, ready for dictionary()."""
        return {self.string(key): self.string(value) for key, value in fields.items()}

    def set_children(self, ref: int, children: list[int] | dict[int, int]) -> None:
        kind, _ = self._objects[ref]
        self._objects[ref] = (kind, children)

    def _add(self, kind: str, payload: Any) -> int:
        self._objects.append((kind, payload))
        return len(self._objects) - 1

    def build(self, top: int = 0) -> bytes:
        ref_size = 1 if len(self._objects) < 256 else 2 if len(self._objects) < 65536 else 4
        body, offsets = bytearray(b"bplist00"), []
        for kind, payload in self._objects:
            offsets.append(len(body))
            body += _encode(kind, payload, ref_size)
        table = len(body)
        for offset in offsets:
            body += struct.pack(">Q", offset)
        body += struct.pack(">6xBBQQQ", 8, ref_size, len(offsets), top, table)
        return bytes(body)


def _encode(kind: str, payload: Any, ref_size: int) -> bytes:
    if kind == "raw":
        return bytes(payload)
    if kind == "int":
        return b"\x13" + struct.pack(">q", payload)
    if kind == "ascii":
        return _marker(0x50, len(payload)) + payload
    refs = payload if kind == "array" else [*payload.keys(), *payload.values()]
    count = len(payload)
    packed = b"".join(ref.to_bytes(ref_size, "big") for ref in refs)
    return _marker(0xA0 if kind == "array" else 0xD0, count) + packed


def _marker(kind: int, count: int) -> bytes:
    if count < 15:
        return bytes([kind | count])
    return bytes([kind | 0xF, 0x12]) + struct.pack(">I", count)


def deeply_nested(fields: dict[str, str], key: str, depth: int) -> bytes:
    """A binary plist dictionary of string `fields`, plus `key`: arrays `depth` deep."""
    plist = Binary()
    root = plist.dictionary()
    arrays = [plist.array() for _ in range(depth)]
    for outer, inner in itertools.pairwise(arrays):
        plist.set_children(outer, [inner])
    plist.set_children(root, {**plist.strings(fields), plist.string(key): arrays[0]})
    return plist.build(root)


def shared_wide(references: int, strings: int) -> bytes:
    """{"Many": [inner] * references} with inner = ["x"] * strings: one container
    referenced from every place, as a binary plist (one byte per reference)."""
    plist = Binary()
    root, text = plist.dictionary(), plist.string("x")
    inner = plist.array([text] * strings)
    plist.set_children(root, {plist.string("Many"): plist.array([inner] * references)})
    return plist.build(root)
