"""The tables of orchardist.toml (`[directory]`, `[smtp]`, `[sms]`, `[console]`,
`[compliance]`, `[apps]`): each a model of its own, refusing keys it does not know,
documented by its field descriptions."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class DirectorySettings(BaseModel):
    """`[directory]` in orchardist.toml (or ORCHARDIST_DIRECTORY__URL and the like): the
    LDAP or Active Directory server users sign in with to enroll."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(description="ldap://host:389 or ldaps://host:636")
    base_dn: str = Field(description="Where users (and groups) are searched")
    bind_dn: str | None = Field(default=None, description="Service account; unset: anonymous")
    bind_password: SecretStr | None = Field(default=None, description="The service account's")
    login_attributes: list[str] = Field(
        default=["uid", "mail", "sAMAccountName", "userPrincipalName"],
        description="What users may type as their name",
    )
    group_base_dn: str | None = Field(default=None, description="Group search base")
    start_tls: bool = Field(default=False, description="StartTLS on an ldap:// URL")
    ca_file: Path | None = Field(default=None, description="CA for LDAPS / StartTLS")
    timeout_seconds: float = Field(default=5.0, gt=0, description="Per directory operation")
    active_directory: bool = Field(
        default=False, description="Active Directory rules (referrals off, lockout flags)"
    )


class SmtpSettings(BaseModel):
    """`[smtp]`: where invitation e-mails go out."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(description="The mail server invitations are sent through")
    port: int = Field(default=587, ge=1, le=65535, description="Its port")
    security: Literal["starttls", "tls", "none"] = Field(
        default="starttls", description="STARTTLS, TLS from the start, or none (tests only)"
    )
    username: str | None = Field(default=None, description="Login; unset: no authentication")
    password: SecretStr | None = Field(default=None, description="Login password")
    sender: str = Field(default="Orchardist <mdm@localhost>", description="The From address")


class SmsSettings(BaseModel):
    """`[sms]`: a provider taking a form POST of To / From / Body (Twilio and most others)."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(description="The provider's message endpoint (form POST)")
    account: str | None = Field(default=None, description="Basic-auth user (Twilio: SID)")
    token: SecretStr | None = Field(default=None, description="Basic-auth password")
    sender: str = Field(default="Orchardist", description="The From number or name")


class ConsoleSettings(BaseModel):
    """`[console]`: who may sign in to /console through the directory, and how long
    sessions last and failed sign-ins lock (local accounts: `orchardist admin create`)."""

    model_config = ConfigDict(extra="forbid")

    admin_groups: list[str] = Field(
        default=[], description="Directory groups (by name) whose members sign in as admin"
    )
    operator_groups: list[str] = Field(
        default=[], description="Directory groups whose members sign in as operator"
    )
    viewer_groups: list[str] = Field(
        default=[],
        description="Directory groups whose members sign in as viewer; a directory user in "
        "none of the three groups lists cannot sign in",
    )
    session_idle_minutes: int = Field(
        default=30, ge=1, le=24 * 60, description="A console session ends after this long unused"
    )
    session_absolute_hours: int = Field(
        default=12, ge=1, le=24 * 30, description="A console session ends this long after sign-in"
    )
    lockout_account_failures: int = Field(
        default=5,
        ge=1,
        description="Failed sign-ins for one name (console and /enroll) that lock it",
    )
    lockout_address_failures: int = Field(
        default=20, ge=1, description="Failed sign-ins from one client address that lock it"
    )
    lockout_window_minutes: int = Field(
        default=15, ge=1, description="Failures older than this are forgotten"
    )
    lockout_minutes: int = Field(
        default=15, ge=1, description="How long a locked name or address must wait"
    )


class EnrollSettings(BaseModel):
    """`[enroll]`: the enrollment site (/enroll). Its sign-in attempt limit also covers the
    app catalog's (/apps: one budget for both, as both ask the same directory); both also
    pass the failure lockout of `[console]`, and the directory's own lockout applies after
    all."""

    model_config = ConfigDict(extra="forbid")

    sign_in_attempts_per_user: int = Field(
        default=10,
        ge=1,
        description="Sign-in attempts at /enroll and /apps, right or wrong, for one name within "
        "sign_in_window_minutes; more wait (429) a window from the last one let through",
    )
    sign_in_attempts_per_address: int = Field(
        default=100,
        ge=1,
        description="Sign-in attempts at /enroll and /apps from one client address within "
        "sign_in_window_minutes (an office behind one NAT address shares it)",
    )
    sign_in_window_minutes: int = Field(
        default=15,
        ge=1,
        description="The window sign-in attempts at /enroll and /apps are counted in",
    )


# An OS version as Apple writes it: "17", "17.0", "14.2.1".
VERSION_PATTERN = r"^\d{1,6}(\.\d{1,6}){0,3}$"


def _minimum(platform: str, example: str) -> Any:
    return Field(
        default=None,
        pattern=VERSION_PATTERN,
        description=f'The oldest {platform} version allowed, e.g. "{example}"; unset: not checked',
    )


class MinimumOsVersions(BaseModel):
    """`[compliance.min_os_version]`: per platform (read from the device's product name),
    compared as numbers (17.10 is after 17.9)."""

    model_config = ConfigDict(extra="forbid")

    # Apple's spelling of each platform is the TOML key (and the platform named in reasons).
    iOS: str | None = _minimum("iOS (iPhone, iPod touch)", "17.0")  # noqa: N815
    iPadOS: str | None = _minimum("iPadOS (iPad)", "17.0")  # noqa: N815
    macOS: str | None = _minimum("macOS", "14.0")  # noqa: N815
    tvOS: str | None = _minimum("tvOS", "17.0")  # noqa: N815


class ComplianceSettings(BaseModel):
    """`[compliance]`: the rules a device must meet (docs/compliance.md); a rule left unset
    is not checked."""

    model_config = ConfigDict(extra="forbid")

    passcode: bool = Field(
        default=False,
        description="A passcode that meets the device's passcode policy (SecurityInfo; macOS "
        "does not report one)",
    )
    data_protection: bool = Field(
        default=False, description="Data protection on (iOS, iPadOS), FileVault on (macOS)"
    )
    min_os_version: MinimumOsVersions = Field(
        default_factory=MinimumOsVersions, description="The oldest OS version per platform"
    )
    required_profiles: list[str] = Field(
        default=[],
        description="Profile identifiers every device must have installed (the profile "
        "library's state, or the device's ProfileList)",
    )
    identity_certificate_days: int | None = Field(
        default=None,
        ge=1,
        le=3650,
        description="Non-compliant when the device's identity certificate expires within "
        "this many days",
    )
    checked_in_days: int | None = Field(
        default=None,
        ge=1,
        le=3650,
        description="Non-compliant when the device has not checked in for this many days",
    )
    recheck_minutes: int = Field(
        default=60,
        ge=1,
        le=24 * 60,
        description="How often `serve` re-evaluates what time changes (certificates nearing "
        "expiry, devices not checking in) and verdicts gone out of date",
    )


class AppsSettings(BaseModel):
    """`[apps]`: the in-house app library (docs/apps.md) — upload size, how long download
    links live, and the pace at which a new version reaches the devices that have the app."""

    model_config = ConfigDict(extra="forbid")

    max_upload_mb: int = Field(
        default=4096, ge=1, le=65536, description="The largest .ipa an upload may be, in MB"
    )
    link_ttl_seconds: int = Field(
        default=6 * 3600,
        ge=60,
        le=30 * 86400,
        description="How long a manifest, .ipa or icon link works (links are signed and "
        "unguessable; a device starts its download within this time)",
    )
    rollout_per_minute: int = Field(
        default=500,
        ge=1,
        le=100_000,
        description="Devices sent a new version per minute (automatic updates and new "
        "assignments): a large fleet does not fetch one .ipa all at once",
    )
    retry_after_seconds: int = Field(
        default=900,
        ge=10,
        le=7 * 86400,
        description="Wait before sending an install again to a device that did not answer "
        "(offline, NotNow) or failed for a reason that may pass",
    )
    max_attempts: int = Field(
        default=10, ge=1, le=1000, description="Installs sent to one device before it is failed"
    )
    catalog_title: str = Field(
        default="App Catalog",
        min_length=1,
        max_length=64,
        description="The catalog's name at /apps and on the home-screen Web Clip",
    )


class ProfilesSettings(BaseModel):
    """`[profiles]`: the pace at which configuration profile installs reach devices
    (docs/profiles.md)."""

    model_config = ConfigDict(extra="forbid")

    delivery_per_minute: int = Field(
        default=6000,
        ge=10,
        le=1_000_000,
        description="Devices sent a profile install per minute when a change reaches many "
        "(each copy is encrypted and signed for its device); a change reaching up to a tenth "
        "of this is queued at once, the rest by one server process at this pace",
    )
