"""The directory sign-in the enrollment site (/enroll) and the app catalog (/apps) share:
behind the console's throttle (failures count per name and per address, and a locked name
or address is refused before the directory is asked) and, where the site passes one, a rate
limit on attempts (orchardist.accounts.rate_limit), with one answer per kind of refusal —
429 locked or limited (with Retry-After), 503 directory unreachable, 401 anything else —
each with words for the user. Only wrong credentials count as failures. A refusal by the
directory itself (its own lockout) is the directory's word: 401 with its reason.

The address is the ASGI client: the connecting peer, or what a proxy in `trusted_proxies`
forwarded (uvicorn's ProxyHeadersMiddleware); no header is read here."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import structlog
from fastapi import Request

from orchardist.accounts.lockout import LockedOutError
from orchardist.accounts.rate_limit import RateLimitedError, SignInRateLimit
from orchardist.enroll.directory import (
    DirectoryError,
    DirectoryUnavailableError,
    InvalidCredentialsError,
)
from orchardist.enroll.ota import OtaError
from orchardist.wiring import Services

T = TypeVar("T")
UNAVAILABLE = "The sign-in service is unavailable; try again later or ask IT."


@dataclass(frozen=True)
class SignInRefused:
    status: int
    message: str
    retry_after: int | None = None  # seconds, for the Retry-After header of a 429


async def sign_in_with_directory(
    request: Request,
    user: str,
    password: str,
    attempt: Callable[[str, str], Awaitable[T]],
    *,
    site: str,
    limit: SignInRateLimit | None = None,
) -> T | SignInRefused:
    """`attempt(user, password)` behind the throttle (and `limit`); what it returns, or the
    refusal. Log events are named after `site` ("enroll_sign_in_refused", …); they name the
    user and the address, never the password."""
    log = structlog.get_logger(f"orchardist.{site}")
    services: Services = request.app.state.services
    throttle = services.accounts.throttle
    address = request.client.host if request.client else "unknown"
    try:
        await throttle.check(user, address)
        if limit is not None:
            await limit.admit(user, address)
        signed_in = await attempt(user, password)
    except LockedOutError as exc:
        log.warning(f"{site}_sign_in_locked", user=user, address=address, until=exc.until)
        return SignInRefused(429, str(exc), exc.retry_after)
    except RateLimitedError as exc:
        log.warning(f"{site}_sign_in_rate_limited", user=user, address=address,
                    by="user" if exc.account else "address", until=exc.until)  # fmt: skip
        return SignInRefused(429, str(exc), exc.retry_after)
    except DirectoryUnavailableError as exc:
        log.error(f"{site}_directory_unavailable", error=str(exc))
        return SignInRefused(503, UNAVAILABLE)
    except (DirectoryError, OtaError) as exc:
        log.warning(f"{site}_sign_in_refused", user=user, reason=str(exc))
        status, message = 401, str(exc)
        if isinstance(exc, InvalidCredentialsError):
            try:
                await throttle.failed(user, address)
            except LockedOutError as locked:
                return SignInRefused(429, str(locked), locked.retry_after)
        return SignInRefused(status, message)
    await throttle.succeeded(user)
    return signed_in
