"""The options that name what an assignment reaches (`--device`, `--group`, `--all`) and
how the audit log lists them, shared by the commands that assign (profiles, provisioning
profiles): the same words as the API's `devices`, `groups` and `all`."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from orchardist.cli.auditing import Describe

DeviceOption = Annotated[list[str] | None, typer.Option("--device", help="A UDID")]
GroupOption = Annotated[list[str] | None, typer.Option("--group", help="A static group")]
EveryoneOption = Annotated[bool, typer.Option("--all", help="Every enrolled device")]


def assignment_targets(subject: str) -> Describe:
    """Audit targets: the argument `subject` (what is assigned), then the devices,
    `group:NAME`s and `all` (as the API names them)."""

    def describe(args: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
        groups = [f"group:{name}" for name in args["group"] or []]
        everyone = ["all"] if args["everyone"] else []
        return [args[subject], *(args["device"] or []), *groups, *everyone], {}

    return describe
