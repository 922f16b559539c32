"""The error answers of /api/v1, declared once for the OpenAPI document.

Every route needs a token, so every route can answer 401; routes that need more than a
viewer's role answer 403 to one (orchardist.accounts.permissions). A route adds the codes
only it can answer (404, 409, 413, 503), each with a line saying when.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class Problem(BaseModel):
    """Why a request was refused."""

    detail: str | list[dict[str, Any]] | dict[str, Any] = Field(
        description="The reason, to show as it is; for 422, FastAPI's list of "
        "{loc, msg, type} naming each bad field, or {problems: [...]} for a profile that "
        "does not pass Apple's schema"
    )


USUAL = {
    401: "No API token, or one this server does not know (answered with WWW-Authenticate: Bearer)",
    403: "The token's role is below what this needs (docs/console.md, “Who may do what”)",
    422: "The request is well-formed but says something invalid: the detail names it",
}


def refusals(*specific: tuple[int, str], write: bool = False) -> dict[int | str, Any]:
    """`responses=` for a route: 401 (and 403 when a viewer may not), plus the codes
    in `specific`, each (status, when)."""
    codes = [(401, USUAL[401])] + ([(403, USUAL[403])] if write else []) + list(specific)
    return {status: {"model": Problem, "description": when} for status, when in codes}
