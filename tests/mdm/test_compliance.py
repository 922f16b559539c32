"""Compliance rules, one at a time: compliant, non-compliant with the reason, unknown."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from orchardist.mdm.compliance import ComplianceRules, evaluate, platform_of
from orchardist.storage import DeviceFacts, EndedBy, Enrollment
from orchardist.storage.compliance import ComplianceInput, ComplianceStatus, LibraryProfile
from orchardist.storage.profiles import ProfileState

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
COMPLIANT, NON_COMPLIANT, UNKNOWN = (
    ComplianceStatus.COMPLIANT,
    ComplianceStatus.NON_COMPLIANT,
    ComplianceStatus.UNKNOWN,
)
NOT_INSTALLED = (NON_COMPLIANT, ("profile com.example.wifi is not installed",))
PROTECTION_OFF = (NON_COMPLIANT, ("data protection is off",))
IPHONE_SECURITY = {"HardwareEncryptionCaps": 3, "PasscodePresent": True, "PasscodeCompliant": True}


def _device(
    *,
    security: dict[str, Any] | None = None,
    inventory: bool = True,
    product: str | None = "iPhone15,2",
    os_version: str | None = "17.2",
    listed: tuple[str, ...] = (),
    library: tuple[LibraryProfile, ...] = (),
    not_after: datetime | None = NOW + timedelta(days=300),
    last_seen: datetime | None = NOW - timedelta(hours=1),
    ended_by: EndedBy | None = None,
) -> ComplianceInput:
    facts = DeviceFacts("UDID-1", "com.apple.mgmt.t", product_name=product, os_version=os_version)
    enrollment = Enrollment(
        facts, "a" * 64, ended_by is None, NOW - timedelta(days=90),
        last_seen_at=last_seen, ended_by=ended_by,
    )  # fmt: skip
    return ComplianceInput(
        enrollment=enrollment,
        has_inventory=inventory,
        security=IPHONE_SECURITY if security is None else security,
        listed_profiles=frozenset(listed),
        library_profiles=library,
        identity_not_after=not_after,
    )


def _verdict(rules: ComplianceRules, **device: Any) -> tuple[ComplianceStatus, tuple[str, ...]]:
    verdict = evaluate(rules, _device(**device), NOW)
    return verdict.status, verdict.reasons


PASSCODE = ComplianceRules(passcode=True)
DATA_PROTECTION = ComplianceRules(data_protection=True)


def test_no_rules_means_nothing_to_break() -> None:
    assert _verdict(ComplianceRules(), inventory=False, security={}) == (COMPLIANT, ())


@pytest.mark.parametrize(
    ("security", "expected"),
    [
        (IPHONE_SECURITY, (COMPLIANT, ())),
        ({"PasscodePresent": False, "PasscodeCompliant": True}, (NON_COMPLIANT, ("no passcode",))),
        (
            {"PasscodePresent": True, "PasscodeCompliant": False},
            (NON_COMPLIANT, ("the passcode does not meet the passcode policy",)),
        ),
        ({}, (UNKNOWN, ("passcode not reported yet (SecurityInfo)",))),
        ({"FDE_Enabled": True}, (COMPLIANT, ())),  # a Mac: no passcode to report
    ],
)
def test_passcode(security: dict[str, Any], expected: tuple[Any, ...]) -> None:
    assert _verdict(PASSCODE, security=security) == expected


def test_rules_that_read_inventory_are_unknown_before_the_first_answer() -> None:
    expected = (UNKNOWN, ("no inventory yet: the device has not answered a query",))
    assert _verdict(PASSCODE, inventory=False, security={}) == expected
    assert _verdict(DATA_PROTECTION, inventory=False, security={}) == expected


@pytest.mark.parametrize(
    ("security", "expected"),
    [
        (IPHONE_SECURITY, (COMPLIANT, ())),
        # Apple: data protection needs HardwareEncryptionCaps 3 and a passcode.
        ({"HardwareEncryptionCaps": 3, "PasscodePresent": False}, PROTECTION_OFF),
        ({"HardwareEncryptionCaps": 1, "PasscodePresent": True}, PROTECTION_OFF),
        ({"FDE_Enabled": True}, (COMPLIANT, ())),
        ({"FDE_Enabled": False}, (NON_COMPLIANT, ("FileVault is off",))),
        ({}, (UNKNOWN, ("data protection not reported yet (SecurityInfo)",))),
    ],
)  # fmt: skip
def test_data_protection(security: dict[str, Any], expected: tuple[Any, ...]) -> None:
    assert _verdict(DATA_PROTECTION, security=security) == expected


@pytest.mark.parametrize(
    ("product", "version", "expected"),
    [
        ("iPhone15,2", "17.0", (COMPLIANT, ())),
        ("iPhone15,2", "17.10", (COMPLIANT, ())),  # numbers, not text: 17.10 > 17.9
        ("iPhone15,2", "17", (COMPLIANT, ())),  # 17 == 17.0
        ("iPhone15,2", "16.1", (NON_COMPLIANT, ("iOS 16.1 is below the minimum 17.0",))),
        ("iPad13,4", "17.1", (NON_COMPLIANT, ("iPadOS 17.1 is below the minimum 17.2",))),
        ("MacBookPro18,3", "13.6.1", (NON_COMPLIANT, ("macOS 13.6.1 is below the minimum 14.0",))),
        ("AppleTV11,1", "12.0", (COMPLIANT, ())),  # no minimum for tvOS: not checked
        ("iPhone15,2", None, (UNKNOWN, ("iOS version not reported",))),
        (None, "17.0", (UNKNOWN, ("the device's platform is not known: its OS version is not "
                                  "checked",))),
    ],
)  # fmt: skip
def test_minimum_os_version_per_platform(
    product: str | None, version: str | None, expected: tuple[Any, ...]
) -> None:
    rules = ComplianceRules(min_os_version={"iOS": "17.0", "iPadOS": "17.2", "macOS": "14.0"})
    assert _verdict(rules, product=product, os_version=version) == expected


def test_platforms_from_product_or_model_name() -> None:
    assert platform_of("iPod9,1", None) == "iOS"
    assert platform_of(None, "iPad") == "iPadOS"
    assert platform_of("Mac14,2", None) == platform_of("iMac21,1", None) == "macOS"
    assert platform_of("Watch6,1", "Apple Watch") is None


def _library(state: ProfileState, installed: int | None) -> tuple[LibraryProfile, ...]:
    return (LibraryProfile("com.example.wifi", state, installed),)


@pytest.mark.parametrize(
    ("device", "expected"),
    [
        ({"library": _library(ProfileState.INSTALLED, 1)}, (COMPLIANT, ())),
        ({"listed": ("com.example.wifi",)}, (COMPLIANT, ())),  # installed some other way
        ({"library": _library(ProfileState.PENDING, 1)}, (COMPLIANT, ())),  # v1 until v2 lands
        ({"library": _library(ProfileState.PENDING, None)}, NOT_INSTALLED),
        ({"library": _library(ProfileState.FAILED, None)}, NOT_INSTALLED),
        ({"library": _library(ProfileState.MISSING, 1)}, NOT_INSTALLED),
        ({"library": _library(ProfileState.REMOVED, None)}, NOT_INSTALLED),
        ({}, NOT_INSTALLED),
        ({"inventory": False},
         (UNKNOWN, ("profile com.example.wifi: no ProfileList reported yet",))),
    ],
)  # fmt: skip
def test_required_profiles(device: dict[str, Any], expected: tuple[Any, ...]) -> None:
    rules = ComplianceRules(required_profiles=("com.example.wifi",))
    assert _verdict(rules, **device) == expected


def test_identity_certificate_not_expiring_within_n_days() -> None:
    rules = ComplianceRules(identity_certificate_days=30)
    fine = evaluate(rules, _device(not_after=NOW + timedelta(days=31)), NOW)
    assert (fine.status, fine.recheck_at) == (COMPLIANT, NOW + timedelta(days=1))
    assert _verdict(rules, not_after=NOW + timedelta(days=10)) == (
        NON_COMPLIANT,
        ("the identity certificate expires on 2026-06-11, within 30 days",),
    )
    assert _verdict(rules, not_after=NOW - timedelta(days=1)) == (
        NON_COMPLIANT,
        ("the identity certificate expired on 2026-05-31",),
    )
    assert _verdict(rules, not_after=None) == (
        UNKNOWN,
        ("the identity certificate is not one this server issued",),
    )


def test_checked_in_within_n_days() -> None:
    rules = ComplianceRules(checked_in_days=14)
    seen = NOW - timedelta(days=3)
    fine = evaluate(rules, _device(last_seen=seen), NOW)
    assert (fine.status, fine.recheck_at, fine.stale) == (
        COMPLIANT,
        seen + timedelta(days=14),
        False,
    )
    late = evaluate(rules, _device(last_seen=NOW - timedelta(days=20)), NOW)
    assert (late.status, late.reasons, late.stale) == (
        NON_COMPLIANT,
        ("no check-in for 20 days (the limit is 14)",),
        True,
    )
    # Never seen since Authenticate (90 days ago): that is its last check-in.
    assert _verdict(rules, last_seen=None)[1] == ("no check-in for 90 days (the limit is 14)",)


def test_every_broken_rule_is_a_reason_and_broken_wins_over_unknown() -> None:
    rules = ComplianceRules(
        passcode=True, min_os_version={"iOS": "17.0"}, required_profiles=("com.example.wifi",),
        checked_in_days=14, identity_certificate_days=30,
    )  # fmt: skip
    verdict = evaluate(
        rules,
        _device(security={"PasscodePresent": False}, os_version="16.1",
                last_seen=NOW - timedelta(days=15), not_after=None),
        NOW,
    )  # fmt: skip
    assert verdict.status == NON_COMPLIANT
    assert verdict.reasons == (
        "no passcode",
        "iOS 16.1 is below the minimum 17.0",
        "profile com.example.wifi is not installed",
        "no check-in for 15 days (the limit is 14)",
    )


def test_an_ended_enrollment_is_not_judged() -> None:
    assert _verdict(PASSCODE, ended_by=EndedBy.RETIRED) == (
        UNKNOWN,
        ("not managed any more (retired)",),
    )


def test_the_fingerprint_follows_the_rules() -> None:
    rules = ComplianceRules(min_os_version={"iOS": "17.0"})
    assert rules.fingerprint == ComplianceRules(min_os_version={"iOS": "17.0"}).fingerprint
    assert rules.fingerprint != dataclasses.replace(rules, passcode=True).fingerprint
