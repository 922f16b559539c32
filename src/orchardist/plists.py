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
_SCALAR_KINDS = frozenset(_SCALARS)
_CONTAINERS = (dict, list)
_CONTAINER_KINDS = frozenset(_CONTAINERS)


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
    """Walk the value without recursion, each distinct container once. A binary plist can
    refer to one container from many places, and walking every place costs the expanded
    size (seconds of CPU for a few hundred KB of such a body before the bound refused it),
    so a container's expanded size and height are measured once and counted wherever it
    is referenced. More than `max_nodes` values in all is an expansion bomb; a path
    through more than MAX_DEPTH containers, or a cycle, is nesting too deep."""
    sizes: dict[int, int] = {}  # id(container) → values in it, itself included, expanded
    heights: dict[int, int] = {}  # id(container) → containers on its longest path down
    path = [_Measure(root, *_inspect(root))]  # from the root to the container measured
    on_path = {id(root)}
    while path:
        measure = path[-1]
        for child in measure.pending:
            if child is measure.last:  # a run of references to one container
                measure.size += measure.last_size
                continue
            key = id(child)
            if key in sizes:  # measured where it was met first
                measure.add(child, sizes[key], heights[key])
                continue
            if key in on_path:  # a cycle: as deep as one likes
                _check_depth(MAX_DEPTH + 1)
            base, grandchildren = _inspect(child)
            if grandchildren:
                _check_depth(len(path) + 2)
                path.append(_Measure(child, base, grandchildren))
                on_path.add(key)
                break
            sizes[key], heights[key] = base, 1
            measure.add(child, base, 1)
        else:
            path.pop()
            on_path.discard(id(measure.container))
            if measure.size > max_nodes:
                raise PlistError("malformed plist: it expands to more values than its size allows")
            _check_depth(len(path) + measure.height)
            key = id(measure.container)
            sizes[key], heights[key] = measure.size, measure.height
            if path:
                path[-1].add(measure.container, measure.size, measure.height)


class _Measure:
    """A container of _check_tree being measured: its size and height so far, and the
    child containers it has not counted yet."""

    __slots__ = ("container", "height", "last", "last_size", "pending", "size")

    def __init__(self, container: Any, base: int, children: list[Any]):
        self.container, self.pending = container, iter(children)
        self.size, self.height = base, 1
        self.last: Any = None
        self.last_size = 0

    def add(self, child: Any, size: int, height: int) -> None:
        self.size += size
        self.height = max(self.height, height + 1)
        self.last, self.last_size = child, size


def _inspect(container: dict[str, Any] | list[Any]) -> tuple[int, list[Any]]:
    """A container's keys and scalars checked (at C speed where possible): how many values
    it holds besides child containers, itself included, and its child containers (one per
    reference)."""
    if not container:
        return 1, []
    if isinstance(container, dict):
        for key in container if set(map(type, container)) - {str} else ():
            if not isinstance(key, str):
                raise PlistError(f"malformed plist: a dictionary key is a {_kind(key)}")
        if any("\x00" in key for key in container):
            raise PlistError("malformed plist: a string holds a NUL character")
        values = list(container.values())
        base = 1 + 2 * len(values)
    else:
        values, base = container, 1 + len(container)
    kinds = set(map(type, values))
    _check_scalars(values, kinds)
    if not kinds & _CONTAINER_KINDS:
        return base, []
    children = [value for value in values if type(value) in _CONTAINERS]
    return base - len(children), children


def _check_scalars(values: list[Any], kinds: set[type]) -> None:
    """The checks of _check_scalar, for many values at C speed where possible."""
    for odd in kinds - _SCALAR_KINDS - _CONTAINER_KINDS:  # None, UID (or a subclass)
        for value in values:
            if type(value) is odd:
                _check_scalar(value)
    if int in kinds:
        numbers = values if kinds == {int} else [v for v in values if type(v) is int]
        if min(numbers) < MIN_INTEGER or max(numbers) > MAX_INTEGER:
            raise PlistError("malformed plist: an integer outside the 64-bit range")
    if str in kinds and any("\x00" in value for value in values if type(value) is str):
        raise PlistError("malformed plist: a string holds a NUL character")


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
