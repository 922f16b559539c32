"""Compliance: whether a device meets the rules set in `[compliance]`, with the reasons in
plain sentences. Read from what the device reported (SecurityInfo, its OS version, its
ProfileList), what the profile library knows and the identity certificate our CA issued.

A device is non_compliant when a rule is broken (the reasons say which), unknown when
nothing is broken but something could not be checked (no inventory yet: the reasons say
what), compliant otherwise; a rule left unset is not checked. An enrollment that ended is
unknown: nothing manages the device any more.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from orchardist.mdm.summary import encryption
from orchardist.os_versions import parse_version
from orchardist.storage.compliance import ComplianceInput, ComplianceStatus, DeviceCompliance
from orchardist.storage.profiles import ProfileState

PLATFORMS = ("iOS", "iPadOS", "macOS", "tvOS")
# ProductName prefixes (Apple's device identifiers: iPhone15,2, iPad13,4, MacBookPro18,3…).
_PRODUCT_PLATFORMS = (
    ("iPhone", "iOS"), ("iPod", "iOS"), ("iPad", "iPadOS"), ("AppleTV", "tvOS"),
    ("Mac", "macOS"), ("iMac", "macOS"), ("VirtualMac", "macOS"),
)  # fmt: skip


@dataclass(frozen=True)
class ComplianceRules:
    passcode: bool = False  # a passcode, compliant with the device's passcode policy
    data_protection: bool = False  # data protection (iOS), FileVault (macOS)
    min_os_version: Mapping[str, str] = field(default_factory=dict)  # platform → version
    required_profiles: tuple[str, ...] = ()
    identity_certificate_days: int | None = None  # not expiring within N days
    checked_in_days: int | None = None  # checked in within N days

    @property
    def fingerprint(self) -> str:
        """Changes when the rules do: verdicts made under other rules are redone."""
        text = json.dumps(asdict(self), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Verdict:
    status: ComplianceStatus
    reasons: tuple[str, ...]
    recheck_at: datetime | None = None
    stale: bool = False


@dataclass
class _Findings:
    broken: list[str] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)
    recheck: list[datetime] = field(default_factory=list)
    stale: bool = False


def evaluate(rules: ComplianceRules, device: ComplianceInput, now: datetime) -> Verdict:
    """The device's verdict under `rules` at `now`."""
    enrollment = device.enrollment
    if enrollment.ended_by is not None:
        state = enrollment.state.replace("_", " ")
        return Verdict(ComplianceStatus.UNKNOWN, (f"not managed any more ({state})",))
    found = _Findings()
    platform = platform_of(enrollment.facts.product_name, enrollment.facts.model_name)
    if (rules.passcode or rules.data_protection) and not device.has_inventory:
        found.unchecked.append("no inventory yet: the device has not answered a query")
    else:
        _passcode(rules, device, platform, found)
        _data_protection(rules, device, found)
    _os_version(rules, enrollment.facts.os_version, platform, found)
    _profiles(rules, device, found)
    _identity_certificate(rules, device.identity_not_after, now, found)
    _checked_in(rules, device, now, found)
    recheck_at = min(found.recheck, default=None)
    if found.broken:
        return Verdict(ComplianceStatus.NON_COMPLIANT, tuple(found.broken), recheck_at, found.stale)
    if found.unchecked:
        return Verdict(ComplianceStatus.UNKNOWN, tuple(found.unchecked), recheck_at)
    return Verdict(ComplianceStatus.COMPLIANT, (), recheck_at)


def verdict_row(rules: ComplianceRules, device: ComplianceInput, now: datetime) -> DeviceCompliance:
    """`evaluate`, as the record storage keeps."""
    verdict = evaluate(rules, device, now)
    return DeviceCompliance(
        device_id=device.enrollment.device_id,
        status=verdict.status,
        reasons=verdict.reasons,
        evaluated_at=now,
        rules=rules.fingerprint,
        recheck_at=verdict.recheck_at,
        stale=verdict.stale,
    )


def platform_of(product_name: str | None, model_name: str | None) -> str | None:
    """iOS, iPadOS, macOS or tvOS from the device's ProductName (or ModelName); None when
    neither says."""
    for name in (product_name, model_name):
        for prefix, platform in _PRODUCT_PLATFORMS:
            if name and name.startswith(prefix):
                return platform
    return None


def _passcode(
    rules: ComplianceRules, device: ComplianceInput, platform: str | None, found: _Findings
) -> None:
    if not rules.passcode:
        return
    present = device.security.get("PasscodePresent")
    if not isinstance(present, bool):
        # Apple, SecurityInfo: PasscodePresent and PasscodeCompliant are not reported on
        # macOS, whose login password no MDM query describes.
        if platform != "macOS" and "FDE_Enabled" not in device.security:
            found.unchecked.append("passcode not reported yet (SecurityInfo)")
        return
    if not present:
        found.broken.append("no passcode")
    elif device.security.get("PasscodeCompliant") is False:
        found.broken.append("the passcode does not meet the passcode policy")


def _data_protection(rules: ComplianceRules, device: ComplianceInput, found: _Findings) -> None:
    if not rules.data_protection:
        return
    state = encryption(device.security)
    if state is None:
        found.unchecked.append("data protection not reported yet (SecurityInfo)")
    elif state == "no data protection":
        found.broken.append("data protection is off")
    elif state == "FileVault off":
        found.broken.append("FileVault is off")


def _os_version(
    rules: ComplianceRules, version: str | None, platform: str | None, found: _Findings
) -> None:
    if not rules.min_os_version:
        return
    if platform is None:
        found.unchecked.append("the device's platform is not known: its OS version is not checked")
        return
    minimum = rules.min_os_version.get(platform)
    if minimum is None:
        return
    parts, wanted = parse_version(version), parse_version(minimum)
    if parts is None:
        found.unchecked.append(f"{platform} version not reported")
    elif wanted is not None and parts < wanted:
        found.broken.append(f"{platform} {version} is below the minimum {minimum}")


def _profiles(rules: ComplianceRules, device: ComplianceInput, found: _Findings) -> None:
    library = {row.identifier: row for row in device.library_profiles}
    for identifier in rules.required_profiles:
        row = library.get(identifier)
        # The library's word (installed, and no ProfileList has missed it since) or the
        # device's latest ProfileList: either shows the profile is there.
        given = row is not None and row.installed_version is not None
        if (given and row is not None and row.state != ProfileState.MISSING) or (
            identifier in device.listed_profiles
        ):
            continue
        if row is None and not device.has_inventory:
            found.unchecked.append(f"profile {identifier}: no ProfileList reported yet")
        else:
            found.broken.append(f"profile {identifier} is not installed")


def _identity_certificate(
    rules: ComplianceRules, not_after: datetime | None, now: datetime, found: _Findings
) -> None:
    days = rules.identity_certificate_days
    if days is None:
        return
    if not_after is None:
        found.unchecked.append("the identity certificate is not one this server issued")
        return
    warn_from = not_after - timedelta(days=days)
    if now < warn_from:
        found.recheck.append(warn_from)
    elif not_after <= now:
        found.broken.append(f"the identity certificate expired on {not_after:%Y-%m-%d}")
    else:
        found.broken.append(
            f"the identity certificate expires on {not_after:%Y-%m-%d}, within {days} days"
        )


def _checked_in(
    rules: ComplianceRules, device: ComplianceInput, now: datetime, found: _Findings
) -> None:
    days = rules.checked_in_days
    if days is None:
        return
    enrollment = device.enrollment
    last = enrollment.last_seen_at or enrollment.authenticated_at
    deadline = last + timedelta(days=days)
    if now < deadline:
        found.recheck.append(deadline)
        return
    found.stale = True
    found.broken.append(f"no check-in for {(now - last).days} days (the limit is {days})")
