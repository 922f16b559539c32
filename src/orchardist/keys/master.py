"""Sealing with the master key: AES-256-GCM, a fresh 96-bit nonce per value, the value's
place as associated data.

Why AES-GCM rather than Fernet: the columns are binary, so Fernet's base64 text would cost a
third more space for nothing; Fernet's key is AES-128 plus its own HMAC key, GCM takes a
256-bit key; and GCM's associated data binds each ciphertext to its row (an unlock token
copied onto another device's row no longer opens). Random nonces are safe for far more
values than a server seals under one key (NIST SP 800-38D: 2^32 per key).

A sealed value is `nonce || ciphertext || tag`; the id of the key that sealed it is stored
beside it (its own column), so `orchardist keys rotate` can tell old values from new ones
without trying keys.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_BYTES = 32
_NONCE_BYTES = 12


class MasterKeyError(RuntimeError):
    """A sealed value cannot be opened; str(err) says which key it needs."""


def file_passphrase(key: bytes, label: str) -> bytes:
    """The passphrase of a key file (`label`: its name, e.g. "ca.key") under master key
    `key`: HKDF-SHA256 with a label per file, so one file's passphrase opens no other, as
    base64url text so that `openssl pkey -passin pass:…` takes it as it is."""
    info = b"orchardist key file\0" + label.encode()
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(key)
    return base64.urlsafe_b64encode(derived).rstrip(b"=")


def key_id(key: bytes) -> str:
    """A key's id: 8 hex digits of a hash of it, so an id can never name another key."""
    return hashlib.sha256(b"orchardist master key id\0" + key).hexdigest()[:8]


@dataclass(frozen=True)
class MasterKeys:
    """The current key first, then older keys still needed to open what they sealed (kept
    while `keys rotate` re-seals, dropped when it is done)."""

    keys: tuple[bytes, ...]

    def __post_init__(self) -> None:
        if not self.keys:
            raise MasterKeyError("no master key")
        for key in self.keys:
            if len(key) != KEY_BYTES:
                raise MasterKeyError(f"a master key is {KEY_BYTES} bytes, not {len(key)}")

    @classmethod
    def generate(cls) -> MasterKeys:
        return cls((AESGCM.generate_key(bit_length=KEY_BYTES * 8),))

    @property
    def current_id(self) -> str:
        return key_id(self.keys[0])

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(key_id(key) for key in self.keys)

    def passphrases(self, label: str) -> tuple[bytes, ...]:
        """The passphrases of key file `label` under each key, the current key's first."""
        return tuple(file_passphrase(key, label) for key in self.keys)

    def seal(self, plaintext: bytes, place: bytes) -> tuple[bytes, str]:
        """The sealed value and the id of the (current) key that sealed it. `place` names
        where the value lives (table, column, row key): opening needs the same."""
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + AESGCM(self.keys[0]).encrypt(nonce, plaintext, place), self.current_id

    def open(self, sealed: bytes, sealed_by: str, place: bytes) -> bytes:
        """The plaintext; MasterKeyError when key `sealed_by` is not held or the value was
        altered (or moved from another place)."""
        for key in self.keys:
            if key_id(key) == sealed_by:
                try:
                    return AESGCM(key).decrypt(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], place)
                except InvalidTag:
                    raise MasterKeyError(
                        f"a value sealed by master key {sealed_by} does not open: it was "
                        "altered or moved"
                    ) from None
        raise MasterKeyError(
            f"a value was sealed by master key {sealed_by}, which the key source does not "
            f"hold (it holds {', '.join(self.ids)}): restore that key (see docs/keys.md)"
        )
