"""`orchardist profile …`: build, check, sign and encrypt configuration profiles."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from orchardist.cli.common import data_dir_of, fail, print_json, with_services

if TYPE_CHECKING:
    from orchardist.profiles.library import ProfileLibrary, Reconciled
    from orchardist.storage.profiles import ProfileVersion
    from orchardist.wiring import Services

app = typer.Typer(help="Configuration profiles: build from a spec, validate any profile.")


@app.command("build")
def build(
    ctx: typer.Context,
    spec: Annotated[Path, typer.Argument(help="A profile spec (TOML); see docs/profiles.md")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Where to write the .mobileconfig")],
    sign: Annotated[
        bool, typer.Option("--sign", help="Sign with the server's certificate (chain included)")
    ] = False,
    encrypt_for: Annotated[
        Path | None,
        typer.Option("--encrypt-for", help="Encrypt the payloads to this device certificate (PEM)"),
    ] = None,
) -> None:
    """Build a profile from a spec: checked against Apple's schema, secrets resolved from
    the environment or files, optionally encrypted to one device and signed."""
    from cryptography import x509

    from orchardist.pki.store import KeyMaterialError, PkiFiles
    from orchardist.profiles import envelope
    from orchardist.profiles.builders import SpecError
    from orchardist.profiles.spec import load_spec

    try:
        profile = load_spec(spec)
    except SpecError as exc:
        fail(f"{spec}: {exc}", "fix the spec; docs/profiles.md lists the payload types")
    if encrypt_for is not None:
        try:
            recipient = x509.load_pem_x509_certificate(encrypt_for.read_bytes())
        except (OSError, ValueError) as exc:
            fail(f"cannot use {encrypt_for} as a device certificate: {exc}")
        profile = envelope.encrypt_for(profile, recipient)
    body = envelope.serialize(profile)
    if sign:
        files = PkiFiles.in_data_dir(data_dir_of(ctx))
        try:
            cert, key = files.load_server()
            chain = [files.load_ca().certificate]
        except KeyMaterialError as exc:
            fail(str(exc))
        body = envelope.sign(body, cert, key, chain)
    out.write_bytes(body)
    payloads = len(profile.get("PayloadContent", [])) if encrypt_for is None else "encrypted"
    typer.echo(
        f"Wrote {out}: {profile['PayloadIdentifier']} ({payloads} payloads"
        f"{', signed' if sign else ''})"
    )


@app.command("validate")
def validate(
    file: Annotated[Path, typer.Argument(help="A .mobileconfig, signed or not")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Check any profile (ours, Apple Configurator's, another MDM's) against Apple's
    schema; a signed one must verify. Exit 1 when it has errors."""
    from orchardist.profiles import envelope
    from orchardist.profiles.validate import check_profile

    try:
        read = envelope.read(file.read_bytes())
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror}")
    except envelope.ProfileReadError as exc:
        fail(f"{file}: {exc}")
    report = check_profile(read.profile, unknown_keys_are_errors=False)
    result: dict[str, Any] = {
        "identifier": read.profile.get("PayloadIdentifier"),
        "signed_by": read.signer.subject.rfc4514_string() if read.signer else None,
        "encrypted": "EncryptedPayloadContent" in read.profile,
        "payloads": [
            p.get("PayloadType")
            for p in read.profile.get("PayloadContent", [])
            if isinstance(p, dict)
        ],
        "errors": [str(p) for p in report.errors],
        "warnings": [str(p) for p in report.warnings],
    }
    if as_json:
        print_json(result)
    else:
        signed = f"signed by {result['signed_by']}" if read.signer else "not signed"
        typer.echo(f"{result['identifier']}: {len(result['payloads'])} payloads, {signed}")
        for problem in result["errors"]:
            typer.echo(f"  error: {problem}", err=True)
        for problem in result["warnings"]:
            typer.echo(f"  warning: {problem}", err=True)
        if report.ok:
            typer.echo("valid against Apple's schema")
    if not report.ok:
        raise typer.Exit(1)


JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON")]


@app.command("upload")
def upload(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="A .mobileconfig (signed or not) or a spec (.toml)")],
    as_json: JsonOption = False,
) -> None:
    """Store a profile as the next version of its identifier (devices that have it get the
    new version)."""
    from orchardist.profiles.builders import SpecError
    from orchardist.profiles.library import ProfileRejectedError
    from orchardist.profiles.spec import load_spec

    async def store(services: Services) -> tuple[ProfileVersion, Reconciled]:
        library = _library(services)
        if file.suffix == ".toml":
            stored = await library.add(load_spec(file))
        else:
            stored = await library.upload(file.read_bytes())
        return stored, await library.reconcile()

    try:
        stored, done = with_services(ctx, store)
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror}")
    except (SpecError, ProfileRejectedError) as exc:
        fail(f"{file}: {exc}", "nothing was stored")
    _pushed(ctx, done)
    result = {"identifier": stored.identifier, "version": stored.version,
              "installs": done.installs}  # fmt: skip
    if as_json:
        print_json(result)
    else:
        typer.echo(
            f"stored {stored.identifier} version {stored.version}"
            f"{f'; {done.installs} device(s) get it now' if done.installs else ''}"
        )


@app.command("list")
def list_profiles(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Profiles in the library, with their latest version."""

    async def load(services: Services) -> list[dict[str, Any]]:
        return [
            {"identifier": p.identifier, "name": p.display_name, "version": p.latest_version}
            for p in await services.storage.list_profiles()
        ]

    rows = with_services(ctx, load)
    if as_json:
        print_json(rows)
        return
    for row in rows:
        typer.echo(f"{row['identifier']}  v{row['version']}  {row['name']}")


@app.command("show")
def show(ctx: typer.Context, identifier: str, as_json: JsonOption = False) -> None:
    """Versions, payload types and assignments (never the contents: they hold secrets)."""

    async def load(services: Services) -> dict[str, Any] | None:
        store = services.storage
        if await store.get_profile(identifier) is None:
            return None
        versions = await store.profile_versions(identifier)
        return {
            "identifier": identifier,
            "versions": [{"version": v.version, "created_at": v.created_at.isoformat(),
                          "payload_types": list(v.payload_types)} for v in versions],
            "assignments": [f"{a.kind.value}:{a.target}" if a.target else a.kind.value
                            for a in await store.assignments(identifier)],
        }  # fmt: skip

    found = with_services(ctx, load)
    if found is None:
        fail(f"no profile {identifier}", "see `orchardist profile list`")
    if as_json:
        print_json(found)
        return
    for version in found["versions"]:
        typer.echo(f"v{version['version']}  {version['created_at']}  "
                   f"{', '.join(version['payload_types'])}")  # fmt: skip
    typer.echo(f"assigned to: {', '.join(found['assignments']) or 'nobody'}")


def _targets_command(assigned: bool) -> Any:
    def command(
        ctx: typer.Context,
        identifier: str,
        device: Annotated[list[str] | None, typer.Option("--device", help="A UDID")] = None,
        group: Annotated[list[str] | None, typer.Option("--group", help="A static group")] = None,
        everyone: Annotated[bool, typer.Option("--all", help="Every enrolled device")] = False,
        as_json: JsonOption = False,
    ) -> None:
        async def change(services: Services) -> Reconciled:
            return await _library(services).assign(
                identifier, devices=device or [], groups=group or [], everyone=everyone,
                assigned=assigned,
            )  # fmt: skip

        try:
            done = with_services(ctx, change)
        except LookupError as exc:
            fail(str(exc), "see `orchardist profile list` and `orchardist device list`")
        _pushed(ctx, done)
        if as_json:
            print_json({"installs": done.installs, "removals": done.removals,
                        "skipped": done.skipped})  # fmt: skip
        else:
            typer.echo(f"{done.installs} InstallProfile and {done.removals} RemoveProfile "
                       "queued; see `orchardist profile status`")  # fmt: skip

    command.__doc__ = (
        "Assign a profile to devices, groups or all; devices get it at once."
        if assigned
        else "Unassign a profile; devices that no longer have it assigned get RemoveProfile."
    )
    return command


app.command("assign")(_targets_command(True))
app.command("unassign")(_targets_command(False))


@app.command("status")
def status(ctx: typer.Context, identifier: str, as_json: JsonOption = False) -> None:
    """Each device's state for a profile: pending, installed, failed (why), missing,
    removing, removed; overdue when pending for over a day."""
    from orchardist.profiles.library import overdue

    async def load(services: Services) -> list[dict[str, Any]]:
        now = datetime.now(UTC)
        return [
            {"udid": r.device_id, "state": r.state.value, "installed_version": r.installed_version,
             "desired_version": r.desired_version, "error": r.error, "overdue": overdue(r, now)}
            for r in await services.storage.device_profiles(identifier=identifier)
        ]  # fmt: skip

    rows = with_services(ctx, load)
    if as_json:
        print_json(rows)
        return
    for row in rows:
        late = " (overdue)" if row["overdue"] else ""
        why = f"  {row['error']}" if row["error"] else ""
        typer.echo(f"{row['udid']}  {row['state']}{late}  v{row['installed_version'] or '-'}{why}")


@app.command("delete")
def delete(ctx: typer.Context, identifier: str) -> None:
    """Forget a profile; devices that have it get RemoveProfile."""

    async def forget(services: Services) -> Reconciled:
        return await _library(services).delete(identifier)

    try:
        done = with_services(ctx, forget)
    except LookupError as exc:
        fail(str(exc))
    _pushed(ctx, done)
    typer.echo(f"deleted {identifier}; {done.removals} device(s) get RemoveProfile")


def _library(services: Services) -> ProfileLibrary:
    assert services.profiles is not None
    return services.profiles


def _pushed(ctx: typer.Context, done: Reconciled) -> None:
    from orchardist.cli.queueing import push_now

    if done.installs or done.removals:
        push_now(ctx, done.installs + done.removals, quiet=True)


group_app = typer.Typer(help="Static device groups, to assign profiles to.")


@group_app.command("set")
def set_group(
    ctx: typer.Context,
    name: str,
    devices: Annotated[list[str], typer.Argument(help="The group's UDIDs (replacing any)")],
) -> None:
    """Create or replace a group; profiles assigned to it follow its members."""

    async def change(services: Services) -> Reconciled | list[str]:
        known = set(await services.storage.device_ids(devices))
        unknown = [d for d in devices if d not in known]
        if unknown:
            return unknown
        await services.storage.set_group(name, devices)
        return await _library(services).reconcile()

    done = with_services(ctx, change)
    if isinstance(done, list):
        fail(f"unknown device {', '.join(done[:10])}", "see `orchardist device list`")
    _pushed(ctx, done)
    typer.echo(f"group {name}: {len(set(devices))} device(s)")


@group_app.command("list")
def list_groups(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Every group and its members."""

    async def load(services: Services) -> dict[str, list[str]]:
        return dict(await services.storage.groups())

    groups = with_services(ctx, load)
    if as_json:
        print_json(groups)
        return
    for name, members in groups.items():
        typer.echo(f"{name}: {', '.join(members)}")
