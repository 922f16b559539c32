"""When a provisioning profile's expiry is worth a warning, and the words for it.

Apps signed with a profile stop launching the day it expires, so an admin is warned 30, 14
and 7 days before (`EXPIRY_WARNING_DAYS`), and once more when it has expired. A renewed
profile (one with `replaced_by`) warns no more: its successor is what counts.

The same words serve the log (once per threshold: see
`ProvisioningLibrary.expiry_warnings`), the API's `warning` field and the CLI.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from orchardist.apps.provisioning import EXPIRY_WARNING_DAYS, describe_expiry
from orchardist.storage.provisioning import StoredProvisioningProfile

EXPIRED = 0  # the threshold recorded once a profile has expired


@dataclass(frozen=True)
class ExpiryWarning:
    profile: StoredProvisioningProfile
    threshold: int  # 30, 14 or 7 (days before expiry), or EXPIRED
    text: str


def expiry_warning(profile: StoredProvisioningProfile, now: datetime) -> ExpiryWarning | None:
    """The warning due for the profile now (the nearest threshold it has crossed), or None:
    more than 30 days left, or renewed already."""
    if profile.replaced_by is not None:
        return None
    left = profile.expires_at - now
    when = f"{describe_expiry(profile.expires_at, now)} ({profile.expires_at:%Y-%m-%d})"
    what = f"the provisioning profile {profile.name!r} ({profile.uuid}) for {profile.app_id}"
    if left <= timedelta(0):
        return ExpiryWarning(
            profile,
            EXPIRED,
            f"{what} {when}: apps signed with it no longer launch. Upload the renewed "
            "profile (`orchardist provisioning upload`) and re-sign the apps if needed",
        )
    crossed = [days for days in EXPIRY_WARNING_DAYS if left <= timedelta(days=days)]
    if not crossed:
        return None
    return ExpiryWarning(
        profile,
        min(crossed),
        f"{what} {when}: upload the renewed profile (`orchardist provisioning upload`) "
        "before then, or apps signed with it stop launching",
    )
