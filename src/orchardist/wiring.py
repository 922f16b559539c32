"""The one place the object graph is built; the CLI and the web app both call it."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import ParamSpec

from cryptography import x509

from orchardist.accounts.lockout import LockoutPolicy, SignInThrottle
from orchardist.accounts.permissions import Gate
from orchardist.accounts.rate_limit import RateLimitPolicy, SignInRateLimit
from orchardist.accounts.service import Accounts, GroupRoles
from orchardist.accounts.sessions import SessionPolicy, Sessions
from orchardist.apps.files import FileStore, LocalFileStore
from orchardist.apps.library import AppLibrary
from orchardist.apps.links import LinkSigner
from orchardist.apps.provisioning_library import ProvisioningLibrary
from orchardist.apps.rollout import RolloutPolicy
from orchardist.apps.urls import AppUrls
from orchardist.audit import AuditLog
from orchardist.config import Settings
from orchardist.enroll.directory import Directory, config_from
from orchardist.enroll.flow import OtaEnrollment
from orchardist.enroll.invitations import (
    HttpSmsProvider,
    Inviter,
    SmsConfig,
    SmtpConfig,
    SmtpMailer,
)
from orchardist.keys.master import MasterKeys
from orchardist.keys.sources import key_source
from orchardist.mdm.compliance import ComplianceRules
from orchardist.mdm.compliance_evaluator import ComplianceEvaluator
from orchardist.mdm.enrollment import EnrollmentProfiles, EnrollmentSettings
from orchardist.mdm.identity import SignatureVerifier
from orchardist.mdm.renewal import IdentityRenewal
from orchardist.mdm.report_pool import ReportPool
from orchardist.mdm.service import MdmService
from orchardist.pki.ca import CertificateAuthority
from orchardist.pki.store import PkiFiles
from orchardist.profiles.library import ProfileLibrary
from orchardist.push.certificate import stored as stored_push_certificate
from orchardist.push.pusher import Pusher, PushSettings, SenderSource
from orchardist.scep.approvals import ScepApprovals
from orchardist.scep.challenges import ChallengeVerifier
from orchardist.scep.issuance import Issuer
from orchardist.scep.service import ScepService
from orchardist.storage import AllStorage
from orchardist.storage.sql.migrate import upgrade
from orchardist.storage.sql.repositories import open_storage
from orchardist.webhooks.events import WebhookEmitter, profile_event
from orchardist.webhooks.sender import WebhookSender, WebhookSettings

P = ParamSpec("P")


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Services:
    settings: Settings
    storage: AllStorage
    ca: CertificateAuthority
    challenges: ChallengeVerifier
    scep: ScepService
    approvals: ScepApprovals
    mdm: MdmService | None = None  # None only in tests that exercise SCEP alone
    enrollment: EnrollmentProfiles | None = None
    pusher: Pusher | None = None
    senders: SenderSource | None = None
    profiles: ProfileLibrary | None = None
    inviter: Inviter | None = None
    ota: OtaEnrollment | None = None
    webhooks: WebhookSender | None = None  # runs in `serve` while webhook_urls are set
    compliance: ComplianceEvaluator | None = None  # `serve` runs its periodic pass
    files: FileStore | None = None  # .ipa files and icons by SHA-256 (orchardist.apps.files)
    app_urls: AppUrls | None = None  # signed, expiring links to them (orchardist.apps.urls)
    apps: AppLibrary | None = None  # in-house apps; `serve` runs its roll-out loop
    # Provisioning profiles: upload, install, renewal; `serve` runs its periodic pass.
    provisioning: ProvisioningLibrary | None = None
    # Re-delivers the enrollment profile before identities expire; `serve` runs its pass.
    renewal: IdentityRenewal | None = None
    # Who did what: the API, the CLI and the console record their actions here.
    audit: AuditLog = field(init=False)
    # Who may do what (console and API ask it; on_denied is the audit's seam) and who may
    # sign in.
    gate: Gate = field(default_factory=Gate)
    accounts: Accounts = field(init=False)
    enroll_sign_in_limit: SignInRateLimit = field(init=False)  # attempts at /enroll
    # Mdm-Signature checks, with what is per certificate done once per certificate.
    signatures: SignatureVerifier = field(init=False)
    # Large device reports are read by worker processes of this server process.
    reports: ReportPool = field(init=False)
    # The master key: opens the key files (pki_files); None in tests that build services.
    keys: MasterKeys | None = None

    def pki_files(self) -> PkiFiles:
        """The data dir's key files, opened with the master key."""
        return PkiFiles.in_data_dir(self.settings.data_dir, self.keys)

    def __post_init__(self) -> None:
        self.signatures = SignatureVerifier([self.ca.certificate])
        self.reports = ReportPool(self.settings.mdm_report_processes)
        self.audit = AuditLog(self.storage, utc_now)
        self.gate.on_denied = self.audit.record_denial
        self.accounts = _accounts(self.settings, self.storage)
        self.enroll_sign_in_limit = _enroll_sign_in_limit(self.settings, self.storage)

    async def close(self) -> None:
        await self.reports.close()
        if self.senders is not None:
            await self.senders.close()
        if self.webhooks is not None:
            await self.webhooks.close()
        await self.storage.close()


async def open_services(settings: Settings, *, migrate: bool = True) -> Services:
    """Open storage (migrating it to the latest schema unless told not to) and build the
    services on top of it. The caller closes them."""
    url = settings.resolved_database_url
    if migrate:
        await upgrade(url)
    keys = key_source(settings).load(create=True)
    # Every storage role, MDM ones included. Rows from before migration 0021 are read as
    # they are; `serve` seals them once per start, before its workers (seal_on_start).
    storage = await open_storage(url, keys)
    # The key files too: plaintext ones (from before the master key) are encrypted now.
    files = PkiFiles.in_data_dir(settings.data_dir, keys)
    files.seal_plaintext()
    ca = files.load_ca()
    static = settings.scep_static_challenge
    challenges = ChallengeVerifier(
        storage,
        ttl=timedelta(seconds=settings.scep_challenge_ttl_seconds),
        clock=utc_now,
        static_challenge=static.get_secret_value() if static is not None else None,
    )
    scep = ScepService(
        ca,
        storage,
        storage,
        challenges,
        validity_days=settings.certificate_validity_days,
        max_clock_skew=timedelta(seconds=settings.scep_max_clock_skew_seconds),
        clock=utc_now,
        responder=files.load_ra(),
        manual_approval=settings.scep_manual_approval,
    )
    issuer = Issuer(ca, storage, validity_days=settings.certificate_validity_days, clock=utc_now)
    server_cert, server_key = files.load_server()
    profiles = ProfileLibrary(
        storage, (server_cert, server_key, [ca.certificate]), clock=utc_now,
        delivery_per_minute=settings.profiles.delivery_per_minute,
    )  # fmt: skip
    events = WebhookEmitter(storage, settings.webhook_urls, utc_now)
    if events.enabled:
        profiles.on_change = lambda rows: events.emit(
            lambda at: [profile_event(row, at) for row in rows]
        )
    compliance = ComplianceEvaluator(storage, compliance_rules(settings), clock=utc_now)
    provisioning = ProvisioningLibrary(storage, clock=utc_now)
    app_files = LocalFileStore.in_data_dir(settings.data_dir)
    app_urls = AppUrls(
        settings.base_url,
        LinkSigner.from_data_dir(settings.data_dir),
        timedelta(seconds=settings.apps.link_ttl_seconds),
        utc_now,
    )
    apps = _app_library(settings, storage, app_files, app_urls)
    mdm = MdmService(
        storage,
        storage,
        storage,
        clock=utc_now,
        # The library first: a profile's new state is what compliance then reads.
        on_result=_in_turn(
            profiles.on_result, provisioning.on_result, apps.on_result, compliance.on_result
        ),
        on_enrolled=_in_turn(
            profiles.on_enrolled,
            provisioning.on_enrolled,
            apps.on_enrolled,
            compliance.on_enrolled,
        ),
        events=events,
    )
    push = stored_push_certificate(files)
    enrollment_settings = EnrollmentSettings(
        base_url=settings.base_url,
        # The imported push certificate's topic wins over the configured placeholder.
        topic=push.topic if push is not None else settings.apns_topic,
        organization=settings.organization,
    )
    enrollment = EnrollmentProfiles(
        enrollment_settings,
        ca.certificate,
        (server_cert, server_key),
        challenges,
        storage,
        link_ttl=timedelta(seconds=settings.enrollment_link_ttl_seconds),
        clock=utc_now,
    )
    approvals = ScepApprovals(storage, issuer)
    ota = OtaEnrollment(
        Directory(config_from(settings.directory)) if settings.directory else None,
        storage,
        challenges,
        enrollment_settings,
        ca.certificate,
        (server_cert, server_key),
        device_anchors=[
            cert
            for path in settings.ota_device_anchor_files
            for cert in x509.load_pem_x509_certificates(path.read_bytes())
        ],
        clock=utc_now,
    )
    push_settings = PushSettings(
        apns_url=settings.apns_url,
        ca_file=settings.apns_ca_file,
        concurrency=settings.apns_concurrency,
        schedule=tuple(settings.push_retry_schedule_seconds),
        lease=timedelta(seconds=settings.push_lease_seconds),
        poll_seconds=settings.push_poll_seconds,
    )
    senders = SenderSource(files, push_settings)
    pusher = Pusher(storage, senders.current, push_settings, clock=utc_now)
    services = Services(
        settings,
        storage,
        ca,
        challenges,
        scep,
        approvals,
        mdm,
        enrollment,
        pusher,
        senders,
        profiles,
        Inviter(
            functools.partial(
                ota.invitation_link,
                ttl=timedelta(seconds=settings.enrollment_link_ttl_seconds),
            ),
            storage,
            organization=settings.organization,
            mailer=_mailer(settings),
            sms=_sms(settings),
            clock=utc_now,
        ),
        ota,
    )
    services.keys = keys
    services.webhooks = _webhook_sender(settings, storage)
    services.compliance = compliance
    services.provisioning = provisioning
    if settings.scep_renew_before_days:
        services.renewal = IdentityRenewal(
            storage,
            storage,
            enrollment,
            renew_before=timedelta(days=settings.scep_renew_before_days),
            clock=utc_now,
        )
    services.files, services.app_urls, services.apps = app_files, app_urls, apps
    apps.on_queued = pusher.wake
    apps.on_embedded_profile = provisioning.remember
    return services


def _accounts(settings: Settings, storage: AllStorage) -> Accounts:
    console = settings.console
    policy = LockoutPolicy(
        account_failures=console.lockout_account_failures,
        address_failures=console.lockout_address_failures,
        window=timedelta(minutes=console.lockout_window_minutes),
        lockout=timedelta(minutes=console.lockout_minutes),
    )
    sessions = SessionPolicy(
        idle=timedelta(minutes=console.session_idle_minutes),
        absolute=timedelta(hours=console.session_absolute_hours),
    )
    return Accounts(
        storage,
        Sessions(storage, sessions, utc_now),
        SignInThrottle(storage, policy, utc_now),
        directory=Directory(config_from(settings.directory)) if settings.directory else None,
        group_roles=GroupRoles(
            console.admin_groups, console.operator_groups, console.viewer_groups
        ),
        clock=utc_now,
    )


def _enroll_sign_in_limit(settings: Settings, storage: AllStorage) -> SignInRateLimit:
    enroll = settings.enroll
    policy = RateLimitPolicy(
        per_account=enroll.sign_in_attempts_per_user,
        per_address=enroll.sign_in_attempts_per_address,
        window=timedelta(minutes=enroll.sign_in_window_minutes),
    )
    return SignInRateLimit(storage, policy, utc_now)


def _app_library(
    settings: Settings, storage: AllStorage, files: FileStore, urls: AppUrls
) -> AppLibrary:
    """`[apps]` as the library's limits and pace."""
    policy = RolloutPolicy(
        per_minute=settings.apps.rollout_per_minute,
        retry_after=timedelta(seconds=settings.apps.retry_after_seconds),
        max_attempts=settings.apps.max_attempts,
    )
    max_bytes = settings.apps.max_upload_mb * 1024 * 1024
    return AppLibrary(storage, files, urls, policy, max_upload_bytes=max_bytes, clock=utc_now)


def compliance_rules(settings: Settings) -> ComplianceRules:
    """`[compliance]` as the rules the evaluator applies."""
    rules = settings.compliance
    minimums = rules.min_os_version.model_dump(exclude_none=True)
    return ComplianceRules(
        passcode=rules.passcode,
        data_protection=rules.data_protection,
        min_os_version=minimums,
        required_profiles=tuple(rules.required_profiles),
        identity_certificate_days=rules.identity_certificate_days,
        checked_in_days=rules.checked_in_days,
    )


def _in_turn(*hooks: Callable[P, Awaitable[None]]) -> Callable[P, Awaitable[None]]:
    """One hook that awaits each of `hooks` in order."""

    async def all_of(*args: P.args, **kwargs: P.kwargs) -> None:
        for hook in hooks:
            await hook(*args, **kwargs)

    return all_of


def _webhook_sender(settings: Settings, storage: AllStorage) -> WebhookSender | None:
    if not settings.webhook_urls:
        return None
    secret = settings.webhook_secret
    webhook_settings = WebhookSettings(
        secret=secret.get_secret_value() if secret is not None else None,
        schedule=tuple(settings.webhook_retry_schedule_seconds),
        give_up_after=timedelta(hours=settings.webhook_give_up_hours),
        timeout_seconds=settings.webhook_timeout_seconds,
    )
    return WebhookSender(storage, webhook_settings, clock=utc_now)


def _mailer(settings: Settings) -> SmtpMailer | None:
    smtp = settings.smtp
    if smtp is None:
        return None
    password = smtp.password.get_secret_value() if smtp.password else None
    return SmtpMailer(
        SmtpConfig(smtp.host, smtp.port, smtp.security, smtp.username, password, smtp.sender)
    )


def _sms(settings: Settings) -> HttpSmsProvider | None:
    sms = settings.sms
    if sms is None:
        return None
    token = sms.token.get_secret_value() if sms.token else None
    return HttpSmsProvider(SmsConfig(sms.url, sms.account, token, sms.sender))
