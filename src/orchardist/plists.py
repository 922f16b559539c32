"""Untrusted plist bytes → a plain dictionary, or a reason: the one reader for what devices
and administrators send (check-ins, command results, over-the-air attributes, uploaded
profiles). `orchardist.mdm.plist` adds what MDM messages need on top.

What it returns may be walked without care: at most MAX_DEPTH containers deep, no larger
than the body could honestly encode, string keys, and only plist types (dict, list, str,
bytes, int within the plist range, float, bool, datetime).
"""

from __future__ import annotations

import plistlib
import struct
from datetime import datetime
from typing import Any
from xml.parsers.expat import ExpatError

from orchardist import plistxml

# Real answers nest a dozen levels at most (ProfileList → payload → EAP settings → array);
# everything that walks a value recursively (schema checks, JSON, the API) stays far from
# Python's recursion limit.
MAX_DEPTH = 64
# Every value but the root costs its parent at least one byte (an XML tag, a binary object
# reference), so an honest plist has fewer values than bytes. Binary plists can reference
# one container many times; beyond this factor that is an expansion bomb, not an answer.
MAX_EXPANSION = 4
# The range of a plist integer (CFBinaryPlist: signed 64-bit, and unsigned 64-bit values).
MIN_INTEGER, MAX_INTEGER = -(2**63), 2**64 - 1

# plistlib documents only InvalidFileException, but hostile bytes reach it many other ways:
# expat errors, a <date> its pattern does not match (AttributeError), a declared encoding
# Python does not know (LookupError), bad binary offsets (IndexError, struct.error), dates
# out of range (OverflowError), binary nesting deeper than the stack (RecursionError).
_MALFORMED = (
    ExpatError,
    ValueError,
    TypeError,
    AttributeError,
    LookupError,
    OverflowError,
    struct.error,
    RecursionError,
)
_SCALARS = (str, bytes, bool, int, float, datetime)


class PlistError(ValueError):
    """The body is not a plist dictionary; str(err) says why, for a 400."""


def load_dictionary(body: bytes) -> dict[str, Any]:
    """The top-level dictionary of an XML or binary plist, checked as the module docstring
    says. plistlib refuses XML entity declarations, so entity-expansion bombs never expand."""
    if not body:
        raise PlistError("the body is empty: a plist dictionary is expected")
    # What devices write reads in a third of plistlib's time, checked as it goes.
    plain = plistxml.read(body, MAX_DEPTH)
    if plain is not None:
        if not isinstance(plain, dict):
            raise PlistError(f"the plist holds a {type(plain).__name__}, not a dictionary")
        return plain
    try:
        value = plistlib.loads(body)
    except RecursionError as exc:
        raise PlistError(f"malformed plist: nested deeper than {MAX_DEPTH} levels") from exc
    except _MALFORMED as exc:
        raise PlistError(f"malformed plist: {_reason(exc)}") from exc
    if not isinstance(value, dict):
        raise PlistError(f"the plist holds a {type(value).__name__}, not a dictionary")
    _check_tree(value, max_nodes=MAX_EXPANSION * len(body) + 64)
    return value


def _reason(exc: Exception) -> str:
    if type(exc) is LookupError:  # "unknown encoding: …": the name helps whoever sent it
        return str(exc)[:100]
    if isinstance(exc, AttributeError | TypeError | LookupError):  # plistlib's internals
        return "a value it cannot read (such as a malformed <date>) or a bad reference"
    return str(exc)[:200] or type(exc).__name__


def _check_tree(root: dict[str, Any], *, max_nodes: int) -> None:
    """Walk the value without recursion: a cycle (binary plists can hold one) or nesting
    past MAX_DEPTH fails on depth, shared containers that expand too far on size."""
    pending: list[tuple[Any, int]] = [(root, 1)]
    nodes = 0
    while pending:
        value, depth = pending.pop()
        nodes += 1
        if nodes > max_nodes:
            raise PlistError("malformed plist: it expands to more values than its size allows")
        if isinstance(value, dict):
            _check_depth(depth)
            for key, item in value.items():
                if not isinstance(key, str):
                    raise PlistError(f"malformed plist: a dictionary key is a {_kind(key)}")
                pending.append((key, depth + 1))
                pending.append((item, depth + 1))
        elif isinstance(value, list):
            _check_depth(depth)
            pending.extend((item, depth + 1) for item in value)
        else:
            _check_scalar(value)


def _check_depth(depth: int) -> None:
    if depth > MAX_DEPTH:
        raise PlistError(f"malformed plist: nested deeper than {MAX_DEPTH} levels")


def _check_scalar(value: Any) -> None:
    # plistlib also yields None (binary token 0x00) and UID (keyed archives): not plist values.
    if not isinstance(value, _SCALARS):
        raise PlistError(f"malformed plist: a {_kind(value)} is not a plist value")
    if isinstance(value, int) and not MIN_INTEGER <= value <= MAX_INTEGER:
        raise PlistError("malformed plist: an integer outside the 64-bit range")
    # XML cannot carry NUL; a binary string with one is no device's, and PostgreSQL text
    # refuses it.
    if isinstance(value, str) and "\x00" in value:
        raise PlistError("malformed plist: a string holds a NUL character")


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__
