"""Hypothesis strategies for structure-aware mutation: start from a valid message, change
one to three places in its tree (a value of the wrong type, a huge integer, a deep nest, a
bad date, a key removed or added, a list item repeated), then write it as XML (with any
declared encoding) or binary, or flip bytes of what was written."""

from __future__ import annotations

import copy
import plistlib
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

from tests.web.plists import Binary, Raw, nested_xml, xml


def bounded(examples: int) -> settings:
    """The suite's budget: a fixed number of examples, derandomized and without an example
    database (every run tries the same ones), no deadline, and no shrinking (a failure
    shows the example as generated, at once, instead of minutes later)."""
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


BOUNDARY_INTEGERS = [0, -1, 2**31, 2**32, 2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63) - 1, 10**40]
ENCODINGS = [
    "UTF-8",
    "utf-8",
    "U683TF-8",
    "UTF-16",
    "latin-1",
    "ascii",
    "rot13",
    "zlib",
    "utf-32",
    "x" * 300,
    "",
]
FRAGMENTS = [
    "<date>x</date>",
    "<date>2024-13-45T99:99:99Z</date>",
    "<date></date>",
    "<integer>1e5</integer>",
    f"<integer>{'9' * 5000}</integer>",
    "<integer></integer>",
    "<real>abc</real>",
    "<real>nan</real>",
    "<real>-inf</real>",
    "<data>!!!</data>",
    "<unknown/>",
    "<dict><key>a</key></dict>",
    "<array><key>a</key></array>",
    "<string>",
    "<string>&amp;&lt;</string>",
    "<dict><key>k</key><string>a</string><key>k</key><true/></dict>",
]

# Longer than the columns that keep them (33, 65, 129, 256 and 2001 characters).
long_texts = st.builds(
    lambda char, length: char * length,
    st.sampled_from(["x", "é", "\u202e"]),
    st.sampled_from([256, 2001, 65, 129, 33]),
)
_TEXTS = {
    "printable": st.text(st.characters(exclude_categories=["Cs", "Cc"]), max_size=40),
    "any": st.text(max_size=40),  # control characters too, which XML cannot carry
    "long": long_texts,
    "nul": st.just("a\x00b"),
}
texts = st.sampled_from(["printable"] * 5 + ["long"] * 3 + ["any", "nul"]).flatmap(
    _TEXTS.__getitem__
)
_SCALARS = {
    "text": texts,
    "int": st.integers() | st.sampled_from(BOUNDARY_INTEGERS),
    "float": st.floats(),
    "bool": st.booleans(),
    "data": st.binary(max_size=64),
    "date": st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)),
}
scalars = st.sampled_from(["text"] * 3 + ["int"] * 2 + [*_SCALARS]).flatmap(_SCALARS.__getitem__)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)
_NASTY = {
    "scalar": scalars,
    "value": values,
    "fragment": st.sampled_from(FRAGMENTS).map(Raw),
    "deep": st.sampled_from([10, 63, 64, 65, 300, 1200, 3000]).map(nested_xml)
    | st.integers(min_value=60, max_value=200).map(lambda depth: _nest([], depth)),
}
_SAME_TYPE = {
    str: long_texts | texts,
    int: st.sampled_from(BOUNDARY_INTEGERS) | st.integers(),
    float: st.floats(),
    bool: st.integers(),
    bytes: st.binary(min_size=1000, max_size=5000) | st.binary(max_size=8),
    datetime: st.sampled_from([datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59, 59)]),
}
# Weighted: mostly values a parser accepts, so that the server goes on past the parser.
nasty = st.sampled_from(["scalar"] * 6 + ["value"] * 4 + ["fragment"] * 2 + ["deep"]).flatmap(
    _NASTY.__getitem__
)


def _nest(value: Any, depth: int) -> Any:
    for _ in range(depth):
        value = [value]
    return value


def children(tree: Any) -> Iterable[tuple[Any, Any]]:
    """(key or index, value) of a dictionary or list; nothing for anything else."""
    if isinstance(tree, dict):
        return tree.items()
    return enumerate(tree) if isinstance(tree, list) else ()


def _paths(tree: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in the tree that holds a value, root excluded."""
    found = []
    for key, value in children(tree):
        found.append((*prefix, key))
        found.extend(_paths(value, (*prefix, key)))
    return found


def _parent(tree: Any, path: tuple[Any, ...]) -> Any:
    for key in path[:-1]:
        tree = tree[key]
    return tree


ENVELOPE = ("MessageType", "Status", "UDID", "CommandUUID")


@st.composite
def mutated(draw: st.DrawFn, seed: dict[str, Any]) -> dict[str, Any]:
    """`seed` (a plain plist tree) with one to three changes. Places and actions are picked
    uniformly (Hypothesis' own choices lean to the first, and would mutate one key over and
    over); the envelope keys are spared four times in five, so most examples get past the
    first checks."""
    pick = draw(st.randoms(use_true_random=False))
    tree = copy.deepcopy(seed)
    spare = pick.random() < 0.8
    for _ in range(pick.randint(1, 3)):
        paths = [path for path in _paths(tree) if not (spare and path[0] in ENVELOPE)]
        path = pick.choice(paths) if paths else ()
        parent = _parent(tree, path) if path else tree
        key = path[-1] if path else None
        action = pick.choice(["replace", "replace", "replace", "delete", "add", "repeat", "wrap"])
        if key is None or action == "add":
            if isinstance(parent, dict):
                parent[draw(texts)] = draw(nasty)
            else:
                parent.append(draw(nasty))
        elif action == "replace":
            # Half the time a value of the same type, at its edges (a 2,001-character
            # name, 2^64 - 1, NaN): what a lax device or a liar sends.
            same = _SAME_TYPE.get(type(parent[key])) if pick.random() < 0.5 else None
            parent[key] = draw(same if same is not None else nasty)
        elif action == "delete":
            del parent[key]
        elif action == "repeat" and isinstance(parent, list):
            parent.append(parent[key])
        else:
            parent[key] = _nest(parent[key], pick.choice([1, 1, 2, 70]))
    return tree


@st.composite
def written(draw: st.DrawFn, tree: dict[str, Any]) -> bytes:
    """The tree as bytes a device might send: binary, XML in any declared encoding, or
    either with bytes changed."""
    form = draw(st.sampled_from(["xml", "xml", "xml", "binary", "binary", "binary-odd"]))
    if form == "binary":
        try:
            body = plistlib.dumps(tree, fmt=plistlib.FMT_BINARY)
        except (TypeError, OverflowError, RecursionError):  # Raw fragments, ints past 2^64
            body = xml(tree)
    elif form == "binary-odd":
        body = draw(odd_binaries(tree))
    else:
        body = xml(tree, encoding=draw(st.sampled_from(["UTF-8"] * 8 + ENCODINGS)))
    if draw(st.sampled_from([False] * 9 + [True])):  # Hypothesis leans to the first choice
        body = draw(flipped(body))
    return body


@st.composite
def odd_binaries(draw: st.DrawFn, tree: dict[str, Any]) -> bytes:
    """The tree's string fields in a binary plist with one odd object beside them: a
    cycle, a shared-container bomb, a null, a UID, a 128-bit integer, a NaN date."""
    plist = Binary()
    root = plist.dictionary()
    ascii = {k: v for k, v in tree.items() if isinstance(v, str) and (k + v).isascii()}
    pairs = plist.strings(ascii)
    kind = draw(st.sampled_from(["cycle", "bomb", "null", "uid", "int128", "nan-date", "key"]))
    if kind == "cycle":
        odd = plist.array()
        plist.set_children(odd, [odd])
    elif kind == "bomb":
        odd = plist.string("x")
        for _ in range(24):
            odd = plist.array([odd, odd])
    elif kind == "key":
        pairs[plist.integer(7)] = plist.string("an integer key")
        odd = plist.string("x")
    else:
        raw = {
            "null": b"\x00",
            "uid": b"\x80\x01",
            "int128": b"\x14" + b"\xff" * 16,
            "nan-date": b"\x33\x7f\xf8\x00\x00\x00\x00\x00\x00",
        }[kind]
        odd = plist.raw(raw)
    plist.set_children(root, {**pairs, plist.string("Odd"): odd})
    return plist.build(root)


@st.composite
def flipped(draw: st.DrawFn, body: bytes) -> bytes:
    """`body` with one to four bytes changed, removed or inserted, or cut short."""
    data = bytearray(body)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        if not data:
            break
        # Drawn in a fixed range, not up to len(data): signed bodies vary in length from
        # run to run, and Hypothesis needs the same choices to mean the same thing.
        at = draw(st.integers(min_value=0, max_value=2**16)) % len(data)
        action = draw(st.sampled_from(["set", "delete", "insert", "truncate"]))
        if action == "set":
            data[at] = draw(st.integers(min_value=0, max_value=255))
        elif action == "delete":
            del data[at]
        elif action == "insert":
            data.insert(at, draw(st.integers(min_value=0, max_value=255)))
        else:
            del data[at:]
    return bytes(data)
