"""Settings: `ORCHARDIST_*` environment variables over `<data-dir>/orchardist.toml`.

Built explicitly with `load_settings(data_dir)`; there is no import-time global, so the CLI,
the web app and the tests each build the object they need. Unknown keys and variables are
refused and wrong values reported one line each (`config_check`); docs/configuration.md is
generated from these models (`python -m orchardist.config_docs`), so a field's description is
its documentation. The server reads its settings once, at start: a change needs a restart.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

import tomli_w
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from orchardist.config_check import SettingsError, check_environment, check_file, describe
from orchardist.config_sections import AppsSettings as AppsSettings
from orchardist.config_sections import ComplianceSettings as ComplianceSettings
from orchardist.config_sections import ConsoleSettings as ConsoleSettings
from orchardist.config_sections import DirectorySettings as DirectorySettings
from orchardist.config_sections import EnrollSettings as EnrollSettings
from orchardist.config_sections import ProfilesSettings as ProfilesSettings
from orchardist.config_sections import SmsSettings as SmsSettings
from orchardist.config_sections import SmtpSettings as SmtpSettings

CONFIG_FILE_NAME = "orchardist.toml"
DATA_DIR_VARIABLE = "ORCHARDIST_DATA_DIR"
DEFAULT_DATA_DIR = Path("orchardist-data")
# ORCHARDIST_* variables that are not settings but are read elsewhere, so they must not be
# refused as typos: the test suite's PostgreSQL (tests/db.py, bench, .ci/run). Settings
# themselves (ORCHARDIST_APNS_URL, ORCHARDIST_DATA_DIR, ...) need no entry here.
NON_SETTING_VARIABLES = frozenset({"ORCHARDIST_TEST_POSTGRES_URL"})
# When a change takes effect, for the generated docs (json_schema_extra "applies"); a field
# without one takes RESTART: the server never reloads its settings.
RESTART = "restart to apply"
AT_INIT = "when `init` makes a CA (first run or `--force`)"
PER_COMMAND = "each command (`--data-dir` or ORCHARDIST_DATA_DIR)"
REISSUE = "re-run `init` (the TLS certificate names it), then restart"


def _applies(when: str) -> dict[str, Any]:
    return {"applies": when}


class Settings(BaseSettings):
    """Everything an Orchardist process reads at start-up. The server never reloads them:
    restart `orchardist serve` to apply a change."""

    model_config = SettingsConfigDict(
        env_prefix="ORCHARDIST_", env_nested_delimiter="__", extra="forbid"
    )
    _toml_file: ClassVar[Path | None] = None

    data_dir: Path = Field(
        default=DEFAULT_DATA_DIR,
        description="The data folder (config, database, keys); chosen by `--data-dir`, not by "
        "the file inside it",
        json_schema_extra=_applies(PER_COMMAND),
    )
    hostname: str = Field(
        default="localhost",
        description="The name devices use to reach the server (`init --hostname`); the TLS "
        "certificate names it: re-run `init`, then restart",
        json_schema_extra=_applies(REISSUE),
    )
    public_url: str | None = Field(
        default=None,
        description="Where devices and people reach the server, e.g. "
        "https://mdm.example.com:8443 (`init --public-url`): enrollment profiles, links and "
        "invitations name it. Unset: https://HOSTNAME:PUBLIC_PORT",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL, e.g. postgresql+asyncpg://user:pass@db/orchardist to scale "
        "out; unset means the SQLite file orchardist.db in the data dir",
    )
    master_key_file: Path = Field(
        default=Path("master.key"),
        description="The file holding the master key that seals secrets at rest (tokens, "
        "profile bodies, the CA and push keys), relative to the data dir; made with mode 0600 "
        "by `init`. Used unless master_key or master_key_command is set (see docs/keys.md)",
    )
    master_key: SecretStr | None = Field(
        default=None,
        description="The master key itself (base64; for ORCHARDIST_MASTER_KEY from a secret "
        "store), the current key first and keys being rotated away after it",
    )
    master_key_command: str | None = Field(
        default=None,
        description="A command that prints the master key (base64), e.g. a key-management "
        "service's client; run once at start",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Server log level"
    )

    certificate_validity_days: int = Field(
        default=365, ge=1, le=3650, description="Lifetime of device identities issued over SCEP"
    )
    # RSA-2048 is what iOS 4-era devices and the SCEP performance target assume.
    ca_key_size: int = Field(
        default=2048,
        ge=2048,
        description="RSA size of a new CA key",
        json_schema_extra=_applies(AT_INIT),
    )
    ca_validity_days: int = Field(
        default=3650,
        ge=365,
        description="Lifetime of a new CA",
        json_schema_extra=_applies(AT_INIT),
    )
    ca_common_name: str = Field(
        default="Orchardist Device CA",
        description="Common name of a new CA",
        json_schema_extra=_applies(AT_INIT),
    )
    organization: str = Field(
        default="Orchardist",
        description="Organization named in profiles, and in a new CA",
        json_schema_extra=_applies(f"{RESTART}; a CA keeps the one it was made with"),
    )

    scep_static_challenge: SecretStr | None = Field(
        default=None,
        description="A shared challenge accepted forever; off unless set (see docs/scep.md)",
    )
    scep_manual_approval: bool = Field(
        default=False,
        description="Hold requests with a valid challenge until `orchardist scep approve`",
    )
    scep_challenge_ttl_seconds: int = Field(
        default=3600, ge=60, description="Lifetime of one-time challenges"
    )
    scep_renew_before_days: int = Field(
        default=30,
        ge=0,
        le=3650,
        description="Re-deliver the enrollment profile (a new identity) to enrolled devices "
        "this many days before their identity expires, or at half its lifetime if sooner; "
        "0: never (see docs/scep.md)",
    )
    scep_max_body_bytes: int = Field(
        default=64 * 1024, ge=4096, description="Larger SCEP requests are refused (413)"
    )
    # RFC 8894 §3.2.1.4: a response may be refused when signingTime is too far off;
    # devices with bad clocks are common, so the window is generous.
    scep_max_clock_skew_seconds: int = Field(
        default=24 * 3600,
        ge=60,
        description="Allowed difference between a request's signingTime and the server clock",
    )

    public_port: int = Field(
        default=8443,
        ge=1,
        le=65535,
        description="The port in profile URLs while public_url is unset (data folders made "
        "before `init --public-url`)",
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
        default=60,
        ge=1,
        description="A crashed pusher's claimed pushes are retried after this (docs/push.md)",
    )
    webhook_urls: list[str] = Field(
        default=[],
        description="Where device events, command results and profile states are POSTed as "
        "JSON (MicroMDM's format; docs/webhooks.md). ORCHARDIST_WEBHOOK_URLS takes a JSON list",
    )
    webhook_secret: SecretStr | None = Field(
        default=None,
        description="Signs each webhook body: X-Orchardist-Signature-256: sha256=<HMAC-SHA256>",
    )
    webhook_retry_schedule_seconds: list[int] = Field(
        default=[10, 30, 60, 300, 900, 3600],
        min_length=1,
        description="Waits between attempts while a webhook receiver fails; the last repeats",
    )
    webhook_give_up_hours: float = Field(
        default=72, gt=0, description="A webhook event still undelivered after this is dropped"
    )
    webhook_timeout_seconds: float = Field(
        default=10, gt=0, description="How long a webhook receiver may take to answer"
    )
    directory: DirectorySettings | None = Field(
        default=None, description="Directory login for enrollment; see docs/enrollment.md"
    )
    console: ConsoleSettings = Field(
        default_factory=ConsoleSettings,
        description="The console's directory groups, sessions and sign-in lockout; see "
        "docs/console.md",
    )
    enroll: EnrollSettings = Field(
        default_factory=EnrollSettings,
        description="The enrollment site's sign-in rate limits; see docs/enrollment.md",
    )
    compliance: ComplianceSettings = Field(
        default_factory=ComplianceSettings,
        description="The rules devices must meet, each unset one not checked; see "
        "docs/compliance.md",
    )
    profiles: ProfilesSettings = Field(
        default_factory=ProfilesSettings,
        description="Configuration profiles: the delivery pace; see docs/profiles.md",
    )
    apps: AppsSettings = Field(
        default_factory=AppsSettings,
        description="In-house apps: upload size, link lifetime, rollout pace, the catalog; "
        "see docs/apps.md",
    )
    ota_device_anchor_files: list[Path] = Field(
        default=[],
        description="CAs trusted besides Apple's iPhone Device CA for OTA phase 2 (test devices)",
    )
    smtp: SmtpSettings | None = Field(
        default=None, description="Mail server for invitations; see docs/enrollment.md"
    )
    sms: SmsSettings | None = Field(
        default=None, description="SMS provider for invitations; see docs/enrollment.md"
    )
    profile_repair_seconds: int = Field(
        default=24 * 3600,
        ge=60,
        description="How often devices are asked for their ProfileList and missing profiles "
        "reinstalled (docs/profiles.md)",
    )
    job_lease_seconds: int = Field(
        default=60,
        ge=2,
        le=3600,
        description="A background pass whose process died is taken over by another process "
        "after this (docs/operations.md)",
    )
    cleanup_grace_days: int = Field(
        default=7,
        ge=0,
        description="Expired sessions, invitations and used or expired SCEP challenges and "
        "enrollment links are deleted this long after (docs/operations.md)",
    )
    enrollment_link_ttl_seconds: int = Field(
        default=7 * 24 * 3600, ge=60, description="How long `orchardist enroll token` links work"
    )
    mdm_max_body_bytes: int = Field(
        default=20 * 1024 * 1024,
        ge=65536,
        description="Larger device reports are refused (413); app lists of big Macs run to "
        "megabytes",
    )
    mdm_report_processes: int = Field(
        default=1,
        ge=0,
        le=16,
        description="Worker processes, per server process, that read device reports over "
        "256 KiB so that Idles are not kept waiting; 0 reads them in the server process",
    )
    mdm_client_cert_header: str | None = Field(
        default=None,
        description="Header a TLS-terminating proxy puts the client certificate in "
        "(e.g. Client-Cert per RFC 9440, or X-SSL-Client-Cert for nginx); read only from "
        "a peer in trusted_proxies, dropped from any other; off when unset",
    )
    trusted_proxies: list[str] = Field(
        default=["127.0.0.1", "::1"],
        description='Proxies (addresses, networks, or "*") whose X-Forwarded-For and '
        "X-Forwarded-Proto name the real client and whose mdm_client_cert_header is "
        "believed; from any other peer they are ignored, so sign-in limits count the "
        "connecting address",
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="When set, /metrics answers only `Authorization: Bearer <metrics_token>` "
        "(docs/operations.md); open when unset",
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_level(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        try:
            parts.port  # noqa: B018 -- raises on a port that is not a number or out of range
        except ValueError as exc:
            raise ValueError(f"a URL with a valid port: {exc}") from None
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError("a URL such as https://mdm.example.com:8443")
        if parts.query or parts.fragment:
            raise ValueError("a URL without ?query or #fragment")
        return value.rstrip("/")

    @field_validator("webhook_urls")
    @classmethod
    def _check_webhook_urls(cls, value: list[str]) -> list[str]:
        for url in value:
            parts = urlsplit(url)
            if parts.scheme not in ("https", "http") or not parts.hostname:
                raise ValueError(
                    f"http(s) URLs such as https://hooks.example.com/mdm ({url!r} is not one)"
                )
        return value

    @property
    def base_url(self) -> str:
        """scheme://host[:port] devices and people reach: what profiles and links name."""
        return self.public_url or f"https://{self.hostname}:{self.public_port}"

    @property
    def public_listen_port(self) -> int:
        """The port `base_url` names, explicit or the scheme's default."""
        parts = urlsplit(self.base_url)
        return parts.port or (443 if parts.scheme == "https" else 80)

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
    """Settings for the data dir: init overrides > environment > the data dir's TOML file.

    Raises SettingsError, its message ready for the admin, on an unreadable file, an unknown
    key or ORCHARDIST_* variable, or a value of the wrong type or range."""
    toml_file = data_dir / CONFIG_FILE_NAME
    file_values = _read_toml(toml_file)
    check_file(Settings, file_values, toml_file)
    check_environment(Settings, os.environ, NON_SETTING_VARIABLES)
    bound = type(
        "BoundSettings", (Settings,), {"_toml_file": toml_file if toml_file.exists() else None}
    )
    try:
        settings: Settings = bound(data_dir=data_dir, **overrides)
    except ValidationError as exc:
        raise describe(exc, Settings, os.environ, file_values, toml_file) from None
    return settings


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"{path}: cannot read it: {exc}") from None


def write_config(data_dir: Path, values: dict[str, Any]) -> Path:
    """Write the data dir's TOML config, readable by its owner only: an admin may add the
    static SCEP challenge or a database password to it."""
    path = data_dir / CONFIG_FILE_NAME
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(tomli_w.dumps(values))
    path.chmod(0o600)  # an existing file keeps its mode through O_CREAT
    return path
