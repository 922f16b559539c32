"""`orchardist enrollment-profile` and `orchardist enroll token`: how a device enrolls."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from orchardist.cli.auditing import audited, failed, note
from orchardist.cli.common import err_console, fail, print_json, with_services
from orchardist.config import Settings

if TYPE_CHECKING:
    from orchardist.wiring import Services

enroll_app = typer.Typer(help="Enrollment links for users and devices.")


@audited("enrollment.profile", lambda args: ([], {"signed": not args["unsigned"],
                                                 "static_challenge": args["static"]}))  # fmt: skip
def enrollment_profile(
    ctx: typer.Context,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Where to write the profile")
    ] = Path("orchardist-enroll.mobileconfig"),
    unsigned: Annotated[
        bool, typer.Option("--unsigned", help="A plain plist, for tools that cannot read CMS")
    ] = False,
    static: Annotated[
        bool,
        typer.Option(
            "--static", help="Use the static challenge (scep_static_challenge): many devices"
        ),
    ] = False,
) -> None:
    """Write an enrollment profile with a fresh one-time SCEP challenge (valid one hour).
    Signed with the server's certificate unless --unsigned."""

    async def build(services: Services) -> bytes:
        assert services.enrollment is not None
        challenge = None
        if static:
            configured = services.settings.scep_static_challenge
            if configured is None:
                fail("no static challenge is configured", "set scep_static_challenge first")
            challenge = configured.get_secret_value()
        return await services.enrollment.profile(signed=not unsigned, challenge=challenge)

    data = with_services(ctx, build)
    output.write_bytes(data)
    typer.echo(f"wrote {output} ({'unsigned' if unsigned else 'signed'}, {len(data)} bytes)")
    _warn_about_topic(ctx)


@enroll_app.command("token")
@audited("enrollment.link")
def enroll_token(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """A one-time link that serves an enrollment profile: send it to a user (mail, SMS)."""

    async def make(services: Services) -> tuple[str, str]:
        assert services.enrollment is not None
        url, expires_at = await services.enrollment.new_link()
        return url, expires_at.isoformat(timespec="seconds")

    url, expires_at = with_services(ctx, make)
    note().detail["expires_at"] = expires_at  # never the link: it enrolls a device
    if as_json:
        print_json({"url": url, "expires_at": expires_at})
    else:
        typer.echo(url)
        err_console.print(f"[dim]works once, until {expires_at}[/]")
    _warn_about_topic(ctx)


def _warn_about_topic(ctx: typer.Context) -> None:
    from orchardist.cli.common import settings_of
    from orchardist.pki.store import PkiFiles

    settings = settings_of(ctx)
    if PkiFiles.in_data_dir(settings.data_dir).has_push():
        return
    if settings.apns_topic == Settings.model_fields["apns_topic"].default:
        err_console.print(
            "[yellow]warning:[/] apns_topic is not set: real devices need the topic of your "
            "APNs certificate (set apns_topic in orchardist.toml)"
        )


@enroll_app.command("invite")
@audited("invitation.send", lambda args: ([args["user"]], {"email": args["email"],
                                                           "sms": args["sms"]}))  # fmt: skip
def enroll_invite(
    ctx: typer.Context,
    user: Annotated[str, typer.Argument(help="Who is invited (their directory name)")],
    email: Annotated[str | None, typer.Option("--email", help="Send the link by e-mail")] = None,
    sms: Annotated[str | None, typer.Option("--sms", help="Send the link by SMS (+E.164)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Invite a user to enroll: a one-time link, sent by e-mail and/or SMS ([smtp] and
    [sms] in orchardist.toml); how each delivery went is shown and recorded."""
    from orchardist.enroll.invitations import Invited

    if not email and not sms:
        fail("give --email ADDRESS and/or --sms NUMBER", "the link is sent there")

    async def invite(services: Services) -> Invited:
        assert services.inviter is not None
        return await services.inviter.invite(user, email=email, phone=sms)

    invited = with_services(ctx, invite)
    undelivered = [d for d in invited.deliveries if not d.ok]
    note().detail.update(invitation_id=invited.invitation.invitation_id,
                         delivered={d.channel: d.ok for d in invited.deliveries})  # fmt: skip
    if as_json:
        print_json(
            {
                "invitation_id": invited.invitation.invitation_id,
                "link": invited.link,
                "expires_at": invited.invitation.expires_at.isoformat(),
                "deliveries": [
                    {"channel": d.channel, "address": d.address, "ok": d.ok, "detail": d.detail}
                    for d in invited.deliveries
                ],
            }
        )
    else:
        for delivery in invited.deliveries:
            outcome = "sent" if delivery.ok else f"NOT sent: {delivery.detail}"
            typer.echo(f"{delivery.channel} to {delivery.address}: {outcome}")
        typer.echo(f"link (one use, until {invited.invitation.expires_at:%Y-%m-%d %H:%M} UTC): "
                   f"{invited.link}")  # fmt: skip
    if undelivered:
        failed(f"not delivered by {', '.join(d.channel for d in undelivered)}")
        raise typer.Exit(1)
