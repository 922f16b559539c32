"""orchardist.plists' checks of what plistlib read: binary plists can share containers,
contain themselves and hold values no plist should, and each is refused with its reason;
a container referenced from many places is counted at each but walked once."""

from __future__ import annotations

import itertools

import pytest

from orchardist.plists import MAX_DEPTH, PlistError, load_dictionary
from tests.web.plists import Binary, shared_wide


def _with(odd: bytes) -> bytes:
    """{"Odd": <the object encoded as `odd`>}."""
    plist = Binary()
    root = plist.dictionary()
    plist.set_children(root, {plist.string("Odd"): plist.raw(odd)})
    return plist.build(root)


def test_shared_containers_count_at_every_reference() -> None:
    assert load_dictionary(shared_wide(100, 3)) == {"Many": [["x"] * 3] * 100}
    with pytest.raises(PlistError, match="expands to more values than its size allows"):
        load_dictionary(shared_wide(500_000, 200))  # 10^8 values from half a megabyte


def test_a_shared_container_deeper_on_a_second_path_is_refused() -> None:
    """Measured once where it is shallow, it still may not sit too deep elsewhere."""
    plist = Binary()
    root = plist.dictionary()
    chain = [plist.array() for _ in range(MAX_DEPTH - 3)]
    for outer, inner in itertools.pairwise(chain):
        plist.set_children(outer, [inner])
    shared = plist.array([plist.array([plist.array()])])  # three levels
    plist.set_children(chain[-1], [shared])
    plist.set_children(root, {plist.string("A"): shared, plist.string("B"): chain[0]})
    with pytest.raises(PlistError, match=f"nested deeper than {MAX_DEPTH} levels"):
        load_dictionary(plist.build(root))


def test_a_container_holding_itself_is_refused() -> None:
    plist = Binary()
    root, loop = plist.dictionary(), plist.array()
    plist.set_children(loop, [plist.string("x"), loop])
    plist.set_children(root, {plist.string("Loop"): loop})
    with pytest.raises(PlistError, match="nested deeper"):
        load_dictionary(plist.build(root))


@pytest.mark.parametrize(
    ("odd", "reason"),
    [
        (b"\x00", "a null is not a plist value"),
        (b"\x80\x01", "a UID is not a plist value"),
        (b"\x14" + b"\x00" * 7 + b"\x01" + b"\x00" * 8, "an integer outside the 64-bit range"),
        (b"\x52a\x00", "a string holds a NUL character"),
    ],
)
def test_values_no_plist_holds_are_refused(odd: bytes, reason: str) -> None:
    with pytest.raises(PlistError, match=reason):
        load_dictionary(_with(odd))


def test_keys_must_be_strings_without_nul() -> None:
    plist = Binary()
    root = plist.dictionary()
    plist.set_children(root, {plist.integer(7): plist.string("an integer key")})
    with pytest.raises(PlistError, match="a dictionary key is a int"):
        load_dictionary(plist.build(root))
    plist = Binary()
    root = plist.dictionary()
    plist.set_children(root, {plist.raw(b"\x52a\x00"): plist.string("a NUL in a key")})
    with pytest.raises(PlistError, match="NUL"):
        load_dictionary(plist.build(root))
