"""Settings: `ORCHARDIST_*` environment variables over `<data-dir>/orchardist.toml`.

Built explicitly with `load_settings(data_dir)`; there is no import-time global, so the CLI,
the web app and the tests each build the object they need.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar, Literal

import tomli_w
from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

CONFIG_FILE_NAME = "orchardist.toml"
DATA_DIR_VARIABLE = "ORCHARDIST_DATA_DIR"
DEFAULT_DATA_DIR = Path("orchardist-data")


class DirectorySettings(BaseModel):
    """`[directory]` in orchardist.toml (or ORCHARDIST_DIRECTORY__URL and the like): the
    LDAP or Active Directory server users sign in with to enroll."""

    url: str = Field(description="ldap://host:389 or ldaps://host:636")
    base_dn: str = Field(description="where users (and groups) are searched")
    bind_dn: str | None = Field(default=None, description="service account; unset: anonymous")
    bind_password: SecretStr | None = None
    login_attributes: list[str] = Field(
        default=["uid", "mail", "sAMAccountName", "userPrincipalName"],
        description="what users may type as their name",
    )
    group_base_dn: str | None = Field(default=None, description="group search base")
    start_tls: bool = False
    ca_file: Path | None = Field(default=None, description="CA for LDAPS / StartTLS")
    timeout_seconds: float = Field(default=5.0, gt=0)
    active_directory: bool = Field(default=False, description="Active Directory rules")


class SmtpSettings(BaseModel):
    """`[smtp]`: where invitation e-mails go out."""

    host: str
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    sender: str = "Orchardist <mdm@localhost>"


class SmsSettings(BaseModel):
    """`[sms]`: a provider taking a form POST of To / From / Body (Twilio and most others)."""

    url: str
    account: str | None = Field(default=None, description="basic-auth user (Twilio: SID)")
    token: SecretStr | None = Field(default=None, description="basic-auth password")
    sender: str = "Orchardist"


class Settings(BaseSettings):
    """Everything an Orchardist process reads at start-up."""

    model_config = SettingsConfigDict(
        env_prefix="ORCHARDIST_", env_nested_delimiter="__", extra="ignore"
    )
    _toml_file: ClassVar[Path | None] = None

    data_dir: Path = DEFAULT_DATA_DIR
    hostname: str = "localhost"
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; unset means the SQLite file in the data dir"
    )
    log_level: str = "info"

    certificate_validity_days: int = Field(default=365, ge=1, le=3650)
    # RSA-2048 is what iOS 4-era devices and the SCEP performance target assume.
    ca_key_size: int = Field(default=2048, ge=2048)
    ca_validity_days: int = Field(default=3650, ge=365)
    ca_common_name: str = "Orchardist Device CA"
    organization: str = "Orchardist"

    scep_static_challenge: SecretStr | None = Field(
        default=None, description="A shared challenge accepted forever; off unless set"
    )
    scep_manual_approval: bool = Field(
        default=False, description="Hold requests with a valid challenge for an administrator"
    )
    scep_challenge_ttl_seconds: int = Field(default=3600, ge=60)
    scep_max_body_bytes: int = Field(default=64 * 1024, ge=4096)
    # RFC 8894 §3.2.1.4: a response may be refused when signingTime is too far off;
    # devices with bad clocks are common, so the window is generous.
    scep_max_clock_skew_seconds: int = Field(default=24 * 3600, ge=60)

    public_port: int = Field(
        default=8443, ge=1, le=65535, description="The port devices reach, in profile URLs"
    )
    apns_topic: str = Field(
        default="com.apple.mgmt.orchardist.unset",
        description="The push topic (UID of the APNs certificate) until one is imported",
    )
    apns_url: str = Field(
        default="https://api.push.apple.com",
        description="APNs provider API; https://api.sandbox.push.apple.com for development",
    )
    apns_ca_file: Path | None = Field(
        default=None, description="Extra trust anchors for the APNs server (tests: a local peer)"
    )
    apns_concurrency: int = Field(default=200, ge=1, le=5000, description="Pushes in flight")
    push_retry_schedule_seconds: list[int] = Field(
        default=[60, 300, 1800, 3600],
        description="Re-push a device whose commands are still pending after these delays; "
        "the last one repeats",
    )
    push_poll_seconds: float = Field(
        default=1.0, gt=0, description="How often the pusher looks for due pushes"
    )
    push_lease_seconds: int = Field(
        default=60, ge=1, description="A crashed pusher's claimed pushes are retried after this"
    )
    directory: DirectorySettings | None = Field(
        default=None, description="Directory login for enrollment; see docs/enrollment.md"
    )
    ota_device_anchor_files: list[Path] = Field(
        default=[],
        description="CAs trusted besides Apple's iPhone Device CA for OTA phase 2 (test devices)",
    )
    smtp: SmtpSettings | None = None
    sms: SmsSettings | None = None
    profile_repair_seconds: int = Field(
        default=24 * 3600,
        ge=60,
        description="How often profiles are checked on devices (ProfileList) and repaired",
    )
    enrollment_link_ttl_seconds: int = Field(
        default=7 * 24 * 3600, ge=60, description="How long `orchardist enroll token` links work"
    )
    mdm_max_body_bytes: int = Field(
        default=20 * 1024 * 1024, ge=65536, description="App lists of big Macs run to megabytes"
    )
    mdm_client_cert_header: str | None = Field(
        default=None,
        description="Header a TLS-terminating proxy puts the client certificate in "
        "(e.g. Client-Cert per RFC 9440, or X-SSL-Client-Cert for nginx); off when unset",
    )

    @property
    def config_path(self) -> Path:
        return self.data_dir / CONFIG_FILE_NAME

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'orchardist.db').resolve()}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if cls._toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=cls._toml_file))
        return tuple(sources)


def resolve_data_dir(cli_value: Path | None) -> Path:
    """`--data-dir` wins, then ORCHARDIST_DATA_DIR, then ./orchardist-data."""
    if cli_value is not None:
        return cli_value
    return Path(os.environ.get(DATA_DIR_VARIABLE, DEFAULT_DATA_DIR))


def load_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Settings for the data dir: init overrides > environment > the data dir's TOML file."""
    toml_file = data_dir / CONFIG_FILE_NAME
    bound = type(
        "BoundSettings", (Settings,), {"_toml_file": toml_file if toml_file.exists() else None}
    )
    settings: Settings = bound(data_dir=data_dir, **overrides)
    return settings


def write_config(data_dir: Path, values: dict[str, Any]) -> Path:
    """Write the data dir's TOML config, readable by its owner only: an admin may add the
    static SCEP challenge or a database password to it."""
    path = data_dir / CONFIG_FILE_NAME
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(tomli_w.dumps(values))
    path.chmod(0o600)  # an existing file keeps its mode through O_CREAT
    return path
