"""A virtual device's made-up facts, drawn from its number: the same number gives the same
device, so a fleet seeded into the database (`orchardist simulate seed`) and the simulator
that later plays it agree on every UDID, serial number, model and push token."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

MODELS = (
    ("iPhone3,1", "MC603", "iPhone"),
    ("iPad2,1", "MC769", "iPad"),
    ("iPhone4,1", "MD235", "iPhone"),
)
ENROLLED = "orchardist-sim"  # devices that enroll over SCEP
SEEDED = "orchardist-seed"  # devices written straight into the database: other UDIDs


@dataclass(frozen=True)
class MadeUp:
    udid: str
    serial: str
    product: str
    model: str
    model_name: str
    os_version: str

    @property
    def device_name(self) -> str:
        return f"{self.model_name} {self.serial[-4:]}"

    @property
    def token(self) -> bytes:
        """What TokenUpdate tells the server; the local APNs peer routes pushes by it."""
        return hashlib.sha256(self.udid.encode()).digest()

    @property
    def push_magic(self) -> str:
        return f"magic-{self.udid[:8]}"


def made_up(number: int, kind: str = ENROLLED) -> MadeUp:
    """Device `number`'s facts: not secrets, only different from device to device. Drawn
    from a hash, not a random generator: seeding 100,000 devices makes 100,000 of them."""
    name = f"{kind}-{number}".encode()
    udid = hashlib.sha1(name, usedforsecurity=False).hexdigest()
    drawn = hashlib.sha256(name).digest()
    serial = "".join(_SERIAL[byte % len(_SERIAL)] for byte in drawn[:12])
    product, model, model_name = MODELS[drawn[12] % len(MODELS)]
    return MadeUp(udid, serial, product, model, model_name, _OS[drawn[13] % len(_OS)])


_SERIAL = "C0DFGHJKLMNPQRTVWXY123456789"
_OS = ("4.3.5", "5.1.1", "12.5.7", "17.5")
