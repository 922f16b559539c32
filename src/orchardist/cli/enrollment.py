"""`orchardist enrollment-profile`: the .mobileconfig a device installs to enroll."""

from __future__ import annotations

import plistlib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from orchardist.cli.common import err_console, fail, with_services
from orchardist.config import Settings

if TYPE_CHECKING:
    from orchardist.wiring import Services


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
    from orchardist.mdm.enrollment import EnrollmentSettings, enrollment_profile, profile_problems
    from orchardist.pki import cms
    from orchardist.pki.store import PkiFiles

    async def build(services: Services) -> tuple[bytes, bool]:
        settings = services.settings
        placeholder_topic = settings.apns_topic == Settings.model_fields["apns_topic"].default
        if static:
            if settings.scep_static_challenge is None:
                fail("no static challenge is configured", "set scep_static_challenge first")
            challenge = settings.scep_static_challenge.get_secret_value()
        else:
            challenge, _ = await services.challenges.issue()
        profile = enrollment_profile(
            EnrollmentSettings(
                base_url=f"https://{settings.hostname}:{settings.public_port}",
                topic=settings.apns_topic,
                organization=settings.organization,
                challenge=challenge,
            ),
            services.ca.certificate,
        )
        problems = profile_problems(profile)
        if problems:  # a bug here, not the admin's: say so plainly
            fail(f"the profile does not match Apple's schema: {problems[0]}")
        body = plistlib.dumps(profile)
        if unsigned:
            return body, placeholder_topic
        server_cert, server_key = PkiFiles.in_data_dir(settings.data_dir).load_server()
        signed = cms.sign(body, server_cert, server_key, extra_certs=[services.ca.certificate])
        return signed, placeholder_topic

    data, placeholder_topic = with_services(ctx, build)
    output.write_bytes(data)
    typer.echo(f"wrote {output} ({'unsigned' if unsigned else 'signed'}, {len(data)} bytes)")
    if placeholder_topic:
        err_console.print(
            "[yellow]warning:[/] apns_topic is not set: real devices need the topic of your "
            "APNs certificate (set apns_topic in orchardist.toml)"
        )
