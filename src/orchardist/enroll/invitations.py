"""Invitations: a one-time enrollment link sent to a user by e-mail (SMTP) and/or SMS.

SMTP through aiosmtplib (STARTTLS, implicit TLS or plain, with or without login). SMS
through a provider interface; the generic HTTP provider does what Twilio and most others
take: a form POST of To / From / Body with HTTP basic auth. Each delivery's outcome is
returned (and recorded by the caller); a failed delivery never hides the link from the
admin, who can pass it on another way.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from typing import Protocol

import aiosmtplib

from orchardist.storage import Invitation, InvitationStore


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int = 587
    security: str = "starttls"  # "starttls", "tls" (implicit) or "none"
    username: str | None = None
    password: str | None = None
    sender: str = "Orchardist <mdm@localhost>"
    timeout_seconds: float = 10.0


@dataclass(frozen=True)
class SmsConfig:
    url: str  # e.g. https://api.twilio.com/2010-04-01/Accounts/SID/Messages.json
    account: str | None = None  # basic-auth user
    token: str | None = None  # basic-auth password
    sender: str = "Orchardist"
    timeout_seconds: float = 10.0


@dataclass(frozen=True)
class Delivery:
    channel: str  # "email" or "sms"
    address: str
    ok: bool
    detail: str  # what the server said, or why it failed


class Mailer(Protocol):
    async def send(self, to: str, subject: str, text: str) -> None: ...


class SmsProvider(Protocol):
    async def send(self, to: str, text: str) -> None: ...


class SmtpMailer:
    def __init__(self, config: SmtpConfig) -> None:
        self.config = config

    async def send(self, to: str, subject: str, text: str) -> None:
        config = self.config
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = config.sender, to, subject
        message.set_content(text)
        await aiosmtplib.send(
            message,
            hostname=config.host,
            port=config.port,
            use_tls=config.security == "tls",
            start_tls=config.security == "starttls",
            username=config.username,
            password=config.password,
            timeout=config.timeout_seconds,
        )


class HttpSmsProvider:
    def __init__(self, config: SmsConfig) -> None:
        self.config = config

    async def send(self, to: str, text: str) -> None:
        import httpx  # here, as in deliver()

        config = self.config
        auth = httpx.BasicAuth(config.account, config.token or "") if config.account else None
        async with httpx.AsyncClient(timeout=config.timeout_seconds, auth=auth) as http:
            answer = await http.post(
                config.url, data={"To": to, "From": config.sender, "Body": text}
            )
        if answer.status_code >= 300:
            raise RuntimeError(f"the SMS provider answered {answer.status_code}")


def invitation_text(user: str, link: str, expires_at: datetime, organization: str) -> str:
    return (
        f"Hello {user},\n\n"
        f"{organization} invites you to enroll your iPhone or iPad. Open this link on the\n"
        f"device, in Safari, and install the profile it offers:\n\n  {link}\n\n"
        f"The link works once, until {expires_at:%Y-%m-%d %H:%M} UTC.\n"
    )


async def deliver(
    user: str,
    link: str,
    expires_at: datetime,
    organization: str,
    *,
    email: str | None,
    phone: str | None,
    mailer: Mailer | None,
    sms: SmsProvider | None,
) -> list[Delivery]:
    """Send the invitation on every channel asked for; each outcome, never an exception."""
    import httpx  # here, not at import: httpx costs every CLI command a fifth of a second

    text = invitation_text(user, link, expires_at, organization)
    jobs: list[tuple[str, str, asyncio.Future[None] | None]] = []
    if email:
        sent = (
            mailer.send(email, f"Enroll your device with {organization}", text) if mailer else None
        )
        jobs.append(("email", email, asyncio.ensure_future(sent) if sent else None))
    if phone:
        short = f"{organization}: enroll your device, open on it: {link}"
        sent_sms = sms.send(phone, short) if sms else None
        jobs.append(("sms", phone, asyncio.ensure_future(sent_sms) if sent_sms else None))
    deliveries = []
    for channel, address, job in jobs:
        if job is None:
            deliveries.append(Delivery(channel, address, False, f"no {channel} settings"))
            continue
        try:
            await job
        except (aiosmtplib.SMTPException, httpx.HTTPError, OSError, RuntimeError) as exc:
            deliveries.append(Delivery(channel, address, False, str(exc) or type(exc).__name__))
        else:
            deliveries.append(Delivery(channel, address, True, "accepted"))
    return deliveries


@dataclass(frozen=True)
class Invited:
    invitation: Invitation
    link: str
    deliveries: list[Delivery]


class Inviter:
    """One invitation: a fresh one-time link, delivered, and recorded with the outcome."""

    def __init__(
        self,
        new_link: Callable[[str], Awaitable[tuple[str, datetime]]],  # user → (link, expiry)
        store: InvitationStore,
        *,
        organization: str,
        mailer: Mailer | None,
        sms: SmsProvider | None,
        clock: Callable[[], datetime],
    ) -> None:
        self.new_link, self.store = new_link, store
        self.organization, self.mailer, self.sms, self.clock = organization, mailer, sms, clock

    async def invite(self, user: str, *, email: str | None, phone: str | None) -> Invited:
        if not email and not phone:
            raise ValueError("give an e-mail address or a phone number to send the link to")
        link, expires_at = await self.new_link(user)
        deliveries = await deliver(
            user, link, expires_at, self.organization,
            email=email, phone=phone, mailer=self.mailer, sms=self.sms,
        )  # fmt: skip
        status = {d.channel: "sent" if d.ok else d.detail for d in deliveries}
        invitation = Invitation(
            invitation_id=uuid.uuid4().hex,
            user=user,
            email=email,
            phone=phone,
            email_status=status.get("email"),
            sms_status=status.get("sms"),
            created_at=self.clock(),
            expires_at=expires_at,
        )
        await self.store.add_invitation(invitation)
        return Invited(invitation, link, deliveries)
