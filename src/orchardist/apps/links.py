"""Unguessable links that expire, for .ipa files, manifests and icons.

A device fetching an .ipa or a manifest sends no credentials (iOS's installer does not
sign in), so the URL itself is the permission: `LinkSigner.sign(subject, expires_at)` makes
a token "<expiry unix seconds>.<HMAC-SHA256>" over (subject, expiry) with a server secret,
and `verify` / `check` accept it until the expiry, comparing in constant time. The subject
is whatever the link grants: a file's SHA-256, or a path such as "manifest/<app>/<version>".
Tokens are URL-safe (digits, ".", base64url) and carry no secret: a leaked link works until
it expires, so keep expiries short (hours) for downloads and regenerate links on each page.

The secret: no server-wide signing secret existed before (sessions and enrollment tokens
are random values stored by hash), so `link_secret(data_dir)` makes one, 32 random bytes in
`<data dir>/secrets/links.key` (mode 0600, created once and atomically; every server process
sharing the data dir reads the same one). Deleting the file invalidates every link issued.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

SECRET_BYTES = 32
_DOMAIN = b"orchardist download link v1\x00"  # a MAC made here means nothing elsewhere


@dataclass(frozen=True)
class LinkCheck:
    valid: bool
    reason: str | None  # None when valid: "malformed", "expired" or "bad signature"


class LinkSigner:
    def __init__(self, secret: bytes):
        if len(secret) < SECRET_BYTES:
            raise ValueError(f"a link secret has at least {SECRET_BYTES} bytes")
        self._secret = secret

    @classmethod
    def from_data_dir(cls, data_dir: Path) -> LinkSigner:
        return cls(link_secret(data_dir))

    def sign(self, subject: str, expires_at: datetime) -> str:
        """A token granting `subject` until `expires_at` (timezone-aware)."""
        expiry = _unix(expires_at)
        return f"{expiry}.{self._mac(subject, expiry)}"

    def verify(self, subject: str, token: str, now: datetime) -> bool:
        return self.check(subject, token, now).valid

    def check(self, subject: str, token: str, now: datetime) -> LinkCheck:
        """Whether `token` grants `subject` at `now`, and if not, why."""
        expiry_text, dot, mac = token.partition(".")
        if not dot or not expiry_text.isdigit() or len(expiry_text) > 12:
            return LinkCheck(False, "malformed")
        expiry = int(expiry_text)
        if not hmac.compare_digest(mac.encode(), self._mac(subject, expiry).encode()):
            return LinkCheck(False, "bad signature")
        if _unix(now) >= expiry:
            return LinkCheck(False, "expired")
        return LinkCheck(True, None)

    def _mac(self, subject: str, expiry: int) -> str:
        if "\x00" in subject:
            raise ValueError("a link subject cannot contain NUL")
        message = _DOMAIN + subject.encode() + b"\x00" + str(expiry).encode()
        digest = hmac.new(self._secret, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _unix(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("link times must be timezone-aware")
    return int(moment.astimezone(UTC).timestamp())


def link_secret(data_dir: Path) -> bytes:
    """The data dir's link secret, made on first use (see the module docstring)."""
    path = data_dir / "secrets" / "links.key"
    try:
        return _read_secret(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Written under a temporary name, then linked into place: two processes starting at
    # once both end up with the one secret that won, never a half-written file.
    temporary = path.with_name(f".links.key.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(secrets.token_bytes(SECRET_BYTES))
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):  # another process got there first
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return _read_secret(path)


def _read_secret(path: Path) -> bytes:
    secret = path.read_bytes()
    if len(secret) < SECRET_BYTES:
        raise ValueError(f"{path} holds fewer than {SECRET_BYTES} bytes: delete it to make anew")
    return secret
