"""Whether an app read from an .ipa may join the library: refusals and warnings.

`read_ipa` refuses what is broken in the file itself. This module holds the policy for a
well-formed app, so the CLI, the API and the console decide alike:

Refused:
- the embedded provisioning profile has expired: iOS will not launch the app (it installs,
  then quits at once), so storing it would only hand devices a broken app. Renew the
  profile, re-sign, upload again.
- the profile's app id does not cover the bundle id (TEAMID.com.example.other for
  com.example.expenses): the installer rejects such an app.

Warned:
- the profile expires within `EXPIRY_WARNING_DAYS[0]` (30) days: the app stops launching
  then unless a renewed profile reaches the devices (`orchardist provisioning upload`).
- the profile is a development/ad-hoc one (a device list, not all devices): only the
  listed devices can run the app.
- no embedded profile: the app will not install on a device (a simulator build?).
- the icon could not be read (from `AppBundle.warnings`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from orchardist.apps.ipa import AppBundle
from orchardist.apps.provisioning import (
    EXPIRY_WARNING_DAYS,
    days_left,
    describe_expiry,
    matches_bundle,
)


@dataclass(frozen=True)
class UploadVerdict:
    refusals: tuple[str, ...]  # any: refuse the upload, showing these
    warnings: tuple[str, ...]  # show, and store anyway

    @property
    def accepted(self) -> bool:
        return not self.refusals


def upload_verdict(bundle: AppBundle, now: datetime) -> UploadVerdict:
    refusals: list[str] = []
    warnings = list(bundle.warnings)
    profile = bundle.provisioning
    if profile is None:
        warnings.append(
            "the app has no embedded.mobileprovision: devices will not install it "
            "(is it a simulator build?)"
        )
        return UploadVerdict(tuple(refusals), tuple(warnings))
    if not matches_bundle(profile, bundle.bundle_id):
        refusals.append(
            f"the embedded provisioning profile is for app id {profile.app_id}, which does "
            f"not cover the bundle id {bundle.bundle_id}: sign the app with its own profile"
        )
    if profile.expires_at <= now:
        refusals.append(
            f"the embedded provisioning profile {profile.name!r} "
            f"{describe_expiry(profile.expires_at, now)} ({profile.expires_at:%Y-%m-%d}): "
            "the app would not launch. Renew the profile, re-sign the app, upload again"
        )
    elif days_left(profile.expires_at, now) < EXPIRY_WARNING_DAYS[0]:
        warnings.append(
            f"the embedded provisioning profile {describe_expiry(profile.expires_at, now)}: "
            "upload a renewed profile before then, or the app stops launching"
        )
    if not profile.provisions_all_devices:
        warnings.append(
            f"the provisioning profile lists {len(profile.devices)} devices: only those can "
            "run the app (an in-house profile provisions all devices)"
        )
    return UploadVerdict(tuple(refusals), tuple(warnings))
