"""Recording the CLI's changes in the audit log: `@audited("device.retire", describe)` on a
command records, once it ends, who ran it (`cli:<OS user>`), the targets its arguments name,
and how it ended — ok, or failed with the message `fail()` printed. The command adds what
only it learns (a command's UUID, the identifier inside an uploaded file) through `note()`.

The entry is written after the command, in its own short connection: a command may open
the services several times (queue, then watch the pushes) or fail before it opens them.
A data folder that is not set up yet, or whose settings are wrong, records nothing: there
is no database to write to, and the command did nothing.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import typer

from orchardist.audit import Actor, Outcome

Command = TypeVar("Command", bound=Callable[..., Any])
# The command's arguments by name → (targets, detail).
Describe = Callable[[dict[str, Any]], tuple[Iterable[str | None], dict[str, Any]]]


@dataclass
class CliNote:
    targets: list[str] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None  # what fail() said


_current: ContextVar[CliNote | None] = ContextVar("orchardist_cli_audit", default=None)


def note() -> CliNote:
    """The running command's note (a throw-away one outside an audited command)."""
    return _current.get() or CliNote()


def failed(message: str) -> None:
    """fail() says why the command ends: the reason its entry gets."""
    current = _current.get()
    if current is not None and current.reason is None:
        current.reason = message


def named(*names: str) -> Describe:
    """Targets from these arguments, each one value or a list of them (None: none)."""

    def describe(args: dict[str, Any]) -> tuple[list[str | None], dict[str, Any]]:
        values = [args.get(name) for name in names]
        return [v for value in values for v in (value if isinstance(value, list) else [value])], {}

    return describe


def audited(action: str, describe: Describe | None = None) -> Callable[[Command], Command]:
    def decorate(command: Command) -> Command:
        @functools.wraps(command)
        def run(*args: Any, **kwargs: Any) -> Any:
            written = CliNote()
            token = _current.set(written)
            outcome: Outcome = Outcome.FAILED
            reason: str | None = "interrupted"  # unless it returns or exits
            try:
                result = command(*args, **kwargs)
                outcome, reason = Outcome.OK, None
                return result
            except typer.Exit as exc:
                if exc.exit_code == 0:
                    outcome, reason = Outcome.OK, None
                else:
                    reason = written.reason or f"exit status {exc.exit_code}"
                raise
            except Exception as exc:  # a crash: its type, not its text (it may quote input)
                reason = f"the command failed ({type(exc).__name__})"
                raise
            finally:
                _current.reset(token)
                targets, detail = describe(kwargs) if describe else ((), {})
                _record(kwargs.get("ctx"), action, [*targets, *written.targets],
                        outcome, {**detail, **written.detail}, reason)  # fmt: skip

        return run  # type: ignore[return-value]

    return decorate


def _record(
    ctx: object,
    action: str,
    targets: list[str | None],
    outcome: Outcome,
    detail: dict[str, Any],
    reason: str | None,
) -> None:
    from orchardist.config import CONFIG_FILE_NAME, load_settings
    from orchardist.config_check import SettingsError

    data_dir = getattr(ctx, "obj", None)  # typer hands over its (vendored) click Context
    if not isinstance(data_dir, Path) or not (data_dir / CONFIG_FILE_NAME).exists():
        return
    try:
        url = load_settings(data_dir).resolved_database_url
    except SettingsError:
        return  # the command stopped on them before doing anything, and said why
    named = [target for target in targets if target is not None]
    try:
        asyncio.run(_write(url, Actor.local_user(), action, named, outcome, detail, reason))
    except Exception as exc:  # the command's own outcome stands; say the record is missing
        typer.echo(f"warning: the audit log did not record {action}: {exc}", err=True)


async def _write(
    url: str,
    actor: Actor,
    action: str,
    targets: list[str],
    outcome: Outcome,
    detail: dict[str, Any],
    reason: str | None,
) -> None:
    # Imported here, as cli/common.py's with_services does: --help should not pay for them.
    from orchardist.audit import AuditLog
    from orchardist.storage.sql.migrate import upgrade
    from orchardist.storage.sql.repositories import open_storage

    await upgrade(url)  # as every command does: the entry needs the current schema
    storage = await open_storage(url)
    # The clock wiring.utc_now is, without importing all of wiring for it (commands that
    # open no services, e.g. `ca create-ra`, do not otherwise).
    clock = functools.partial(datetime.now, UTC)
    try:
        await AuditLog(storage, clock).record(actor, action, targets, outcome, detail,
                                                reason=reason)  # fmt: skip
    finally:
        await storage.close()
