"""A fast reader for the XML plists devices write, for `orchardist.plists`.

plistlib parses XML through expat with a Python callback per element: ~70 ms for a 1 MB
InstalledApplicationList here, most of a large report's cost. Devices write one plain form
(Apple's prolog, tab-indented elements, UTF-8, only &amp; &lt; &gt; escaped), which one
regular expression can tokenize: a `<key>` and its scalar value are a single match.

`read` returns what plistlib would for a document in that plain form, already checked as
`orchardist.plists` promises (depth, integer range, no control characters), or None for
anything else — entities beyond the five predefined, comments, CDATA, other encodings,
carriage returns, unknown elements, malformed or surprising structure — which then goes to
plistlib, so every error message and every unusual document reads exactly as before.
"""

from __future__ import annotations

import binascii
import plistlib
import re
from collections.abc import Iterator
from typing import Any

# Apple's prolog as its writers and plistlib emit it; anything else goes the slow way.
_PROLOG = re.compile(
    r'(?:<\?xml version="1\.0"(?: encoding="(?i:utf-8)")?\?>[ \t\n]*)?'
    r"(?:<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1\.0//EN\" "
    r'"http://www\.apple\.com/DTDs/PropertyList-1\.0\.dtd">[ \t\n]*)?'
    r'<plist(?: version="1\.0")?>'
)
# One token: an optional <key>, then a scalar, an empty container, an opening or a closing
# tag; or any other character, which sends the document to plistlib.
_TOKEN = re.compile(
    r"[ \t\n]*(?:<key>([^<]*)</key>[ \t\n]*)?"
    r"(?:<(string|integer|real|date|data)>([^<]*)</\2>"
    r"|<(true|false|string|data|dict|array)/>"
    r"|<(dict|array)>"
    r"|</(dict|array)>"
    r"|(.))",
    re.DOTALL,
)
_SPLIT = re.compile(r"[ \t\n]*<key>")
_CHUNK = 64 * 1024
_CONTROL = bytes([*range(0x09), 0x0B, 0x0C, *range(0x0D, 0x20)])  # all but tab and newline
_ENTITY = re.compile(r"&(amp|lt|gt|quot|apos);")
_ENTITIES = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}
_EMPTY: dict[str, Any] = {"true": True, "false": False, "string": "", "data": b""}
MIN_INTEGER, MAX_INTEGER = -(2**63), 2**64 - 1  # as orchardist.plists


class _Unplain(Exception):  # noqa: N818 - a signal inside this module, never raised out
    """The document is not in the plain form: plistlib reads it."""


def read(body: bytes, max_depth: int) -> Any | None:
    """The plist's root value, or None when the document is not in the plain form."""
    if not body.startswith((b"<?xml", b"<plist")) or _unplain(body):
        return None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    prolog = _PROLOG.match(text)
    end = text.rstrip(" \t\n")
    if prolog is None or not end.endswith("</plist>"):
        return None
    try:
        return _build(end[prolog.end() : -len("</plist>")].rstrip(" \t\n"), max_depth)
    except (_Unplain, ValueError, TypeError, OverflowError, AttributeError):
        return None


def _unplain(body: bytes) -> bool:
    """What expat refuses or changes (control characters, line-end normalisation, the
    non-characters U+FFFE and U+FFFF, "]]>" in text). Comments, CDATA, declarations and
    processing instructions fail as tokens."""
    # One-byte searches first: memchr finds no "]" or lead byte 0xEF in most bodies at once.
    return (
        len(body.translate(None, _CONTROL)) != len(body)
        or (b"]" in body and b"]]>" in body)
        or (b"\xef" in body and (b"\xef\xbf\xbe" in body or b"\xef\xbf\xbf" in body))
    )


def _build(inner: str, max_depth: int) -> Any:
    root: list[Any] = []
    stack: list[Any] = [root]  # the containers open; the root's holder first
    top: Any = root
    # One string object per distinct key: an app list repeats ~20 keys a thousand times,
    # and pickle (a worker process hands reports back, mdm/report_digest.py) then writes
    # each once; it also keeps one copy in memory instead of thousands.
    keys: dict[str, str] = {}
    for key, tag, raw, empty, opening, closing, _other in _tokens(inner):
        if tag == "string":  # the common cases first, inline: a third of the time
            item: Any = raw if "&" not in raw else _text(raw)
        elif tag == "integer":
            item = _integer(raw)
        elif tag:
            item = _scalar(tag, raw)
        elif empty:
            item = _EMPTY.get(empty, {} if empty == "dict" else [])
        elif opening:
            item = {} if opening == "dict" else []
        elif closing and not key and len(stack) > 1:
            closed = stack.pop()
            if type(closed) is not (dict if closing == "dict" else list):
                raise _Unplain
            top = stack[-1]
            continue
        else:
            raise _Unplain  # any other character, or a key without its value
        if key:  # into a dictionary only with a key (an empty one: plistlib judges)
            if type(top) is not dict:
                raise _Unplain
            top[keys.setdefault(key, key) if "&" not in key else _text(key)] = item
        elif type(top) is list:
            top.append(item)
        else:
            raise _Unplain
        if opening:
            stack.append(item)
            top = item
            if len(stack) > max_depth + 1:
                raise _Unplain  # plistlib reads it, and plists.py refuses it with its reason
    if len(stack) != 1 or len(root) != 1:
        raise _Unplain
    return root[0]


def _tokens(inner: str) -> Iterator[tuple[str, ...]]:
    """The tokens, found a chunk at a time: one findall over a megabyte holds the GIL for
    ~10 ms, which a thread reading a report in the background must not do to the event
    loop. A chunk ends before a <key> ("<" is always a tag: text escapes it)."""
    start = 0
    while start < len(inner):
        split = _SPLIT.search(inner, start + _CHUNK)
        end = len(inner) if split is None else split.start()
        while end > start and inner[end - 1] in " \t\n":  # the search began amid them
            end -= 1
        yield from _TOKEN.findall(inner, start, end)
        start = end


def _integer(raw: str) -> int:
    number = int(raw, 16) if raw.startswith(("0x", "0X")) else int(raw)
    if not MIN_INTEGER <= number <= MAX_INTEGER:
        raise _Unplain
    return number


def _scalar(tag: str, raw: str) -> Any:
    if tag == "real":
        return float(raw)
    if tag == "data":
        return binascii.a2b_base64(raw.encode("ascii"))
    return plistlib._date_from_string(raw)  # type: ignore[attr-defined]  # plistlib's own reading


def _text(raw: str) -> str:
    text = _ENTITY.sub(lambda m: _ENTITIES[m.group(1)], raw)
    if text.count("&") != raw.count("&amp;"):
        raise _Unplain  # a character reference or an entity plistlib must judge
    return text
