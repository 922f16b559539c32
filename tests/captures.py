"""Where the test vectors live: `tests/vectors/` in this repository (see its SOURCES.txt), so
that a clone anywhere passes its tests without the shared folder beside it."""

from __future__ import annotations

from pathlib import Path

VECTORS = Path(__file__).resolve().parent / "vectors"
CAPTURES = VECTORS / "device-captures"
APPLE_SCHEMA = VECTORS / "apple-device-management"


def capture(relative: str) -> bytes:
    """The bytes of one capture, e.g. `capture("cmdmnt_commandment/testdata/x.der")`."""
    return (CAPTURES / relative).read_bytes()
