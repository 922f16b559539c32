"""Console actions in the audit log, recorded as the API's `@audited` and the CLI's
`@audited` record them: the same action names and targets, the signed-in account as the
actor (via "console"). An attempt refused for its input (after the permission check, which
the gate records itself) is a failed entry with the reason the page shows."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from fastapi import Request

from orchardist.accounts.permissions import Actor
from orchardist.audit import Actor as AuditActor
from orchardist.audit import Outcome
from orchardist.web.console.session import ConsoleRefusalError, services_of


async def record(
    request: Request,
    actor: Actor,
    action: str,
    targets: Iterable[str] = (),
    detail: Mapping[str, Any] | None = None,
) -> None:
    """A done action: never a secret in `detail` (no links, challenges or keys)."""
    await services_of(request).audit.record(
        AuditActor.account(actor.name), action, targets, detail=detail
    )


async def refused(
    request: Request,
    actor: Actor,
    action: str,
    targets: Iterable[str],
    refusal: tuple[int, str, str],
    detail: Mapping[str, Any] | None = None,
) -> ConsoleRefusalError:
    """Record the failed attempt; returns the refusal page (status, title, message) to
    raise: `raise await refused(...)`."""
    status, title, message = refusal
    await services_of(request).audit.record(
        AuditActor.account(actor.name), action, targets, Outcome.FAILED, detail, reason=message
    )
    return ConsoleRefusalError(status, title, message)
