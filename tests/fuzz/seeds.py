"""Valid messages the fuzz targets start from: the mutation tests' check-ins and command
results (tests/web/mutation_seeds.py) as whole reports, and a few large ones."""

from __future__ import annotations

import plistlib
from typing import Any

from hypothesis import strategies as st

from tests.web.mutation_seeds import checkins, command_results
from tests.web.mutations import flipped, mutated, written

UDID = "00008110-000A1C2E3E88801E"


def reports() -> list[dict[str, Any]]:
    envelope = {"UDID": UDID, "CommandUUID": "4F8E4A3C-1B7D-4D8E-9A55-0C1D2E3F4A5B"}
    found: list[dict[str, Any]] = [{"Status": "Idle", "UDID": UDID}]
    for _params, answer in command_results(b"\x30\x03\x02\x01\x01").values():
        found.append({"Status": "Acknowledged", **envelope, **answer})
    found.append({"Status": "Error", **envelope, **command_results(b"")["RemoveProfile"][1]})
    return found


def messages() -> list[dict[str, Any]]:
    return [*checkins(UDID), *reports()]


def _huge(seed: dict[str, Any], kind: str) -> dict[str, Any]:
    """A seed past read_report's off-loop size: one long string, or many small values."""
    if kind == "string":
        return {**seed, "Huge": "x" * 300_000}
    return {**seed, "Many": [{"Name": f"app {n}", "BundleSize": n} for n in range(6_000)]}


def plist_bodies(seeds: list[dict[str, Any]], huge_share: int = 1) -> st.SearchStrategy[bytes]:
    """A seed changed in its tree and written in any form (mostly), or written as devices
    write it and then changed byte-wise, or (`huge_share` in twelve) made huge."""
    seed = st.sampled_from(seeds)
    kinds = {
        "tree": seed.flatmap(mutated).flatmap(written),
        "bytes": seed.map(plistlib.dumps).flatmap(flipped),
        "huge": st.builds(_huge, seed, st.sampled_from(["string", "many"])).flatmap(written),
    }
    shares = ["huge"] * huge_share + ["bytes"] * 3 + ["tree"] * (9 - huge_share)
    return st.sampled_from(shares).flatmap(kinds.__getitem__)
