"""Where the shared test vectors live: `../shared` beside the checkout (CI lays it there too)."""

from __future__ import annotations

from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared"
CAPTURES = SHARED / "device-captures"


def capture(relative: str) -> bytes:
    """The bytes of one capture, e.g. `capture("cmdmnt_commandment/testdata/x.der")`."""
    return (CAPTURES / relative).read_bytes()
