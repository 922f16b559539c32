"""API tokens: random, shown once, stored as SHA-256 only."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime

from orchardist.storage import ApiToken, ApiTokenStore

TOKEN_PREFIX = "orch_"  # noqa: S105 (a public prefix that makes leaked tokens greppable)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


async def create_api_token(
    store: ApiTokenStore, name: str, role: str = "admin", *, expires_at: datetime | None = None
) -> str:
    """Store a new token under `name` and return its clear value (the only time it exists);
    it works until `expires_at` (None: until revoked). A duplicate name raises ValueError."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    record = ApiToken(
        name=name, token_sha256=token_digest(token), role=role, created_at=datetime.now(UTC),
        expires_at=expires_at,
    )  # fmt: skip
    await store.add_api_token(record)
    return token
