"""RSA keys for tests, made once per run: 2048-bit generation is slow, and most tests only
need distinct keys, not fresh ones."""

from __future__ import annotations

import functools

from cryptography.hazmat.primitives.asymmetric import rsa


@functools.cache
def rsa_key(index: int, bits: int = 2048) -> rsa.RSAPrivateKey:
    """The `index`-th test key: the same object every time it is asked for in one run."""
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)
