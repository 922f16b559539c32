"""Every `orchardist …` command quoted in the README and docs/ parses: its subcommands
exist and its options are real, so an admin who copies one does not hit "No such option"."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer
from typer._click.exceptions import (  # typer ships its own click
    MissingParameter,
    NoArgsIsHelpError,
)

from orchardist.cli.main import app

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# A word that stands for a value: UDID, <UDID>, TRANSACTION_ID, UDID…, '…'.
PLACEHOLDER = re.compile(r"^(<[^>]+>|[A-Z][A-Z0-9_.]*…?|…)$")
ENV = re.compile(r"^[A-Z_][A-Z0-9_]*=\S*$")


def quoted_commands(text: str) -> list[tuple[str, bool]]:
    """(command, complete): `orchardist …` at the start of code-block lines (after any
    VAR=value prefixes), which must be complete, and in inline code, which may name a
    command without its arguments. Trailing comments, shell redirections and [optional]
    parts are left out."""
    found = [(" ".join(c.split()), False) for c in re.findall(r"`(orchardist [^`]+)`", text)]
    in_block = False
    for line in text.splitlines():
        if line.startswith("```"):
            in_block = not in_block
            continue
        if in_block:
            words = line.split()
            while words and ENV.match(words[0]):
                words.pop(0)
            if words[:1] == ["orchardist"]:
                found.append((" ".join(words), True))
    return [(_clean(command), complete) for command, complete in found]


def _clean(command: str) -> str:
    command = re.sub(r"\s#.*$", "", command)
    command = re.split(r"\s(?:[|>]|&$)", command)[0]  # shell pipes, redirections, &
    return re.sub(r"\[[^\]]*\]", "", command).strip()


def parse(words: list[str], *, complete: bool = True) -> None:
    """Resolve subcommands and parse options the way `orchardist` would, without running.
    Not `complete`: missing arguments are let through (a command named in prose)."""
    command: Any = typer.main.get_command(app)
    name, context = "orchardist", None
    while True:
        try:
            context = command.make_context(name, list(words), parent=context)  # it eats the list
        except NoArgsIsHelpError:
            return
        except MissingParameter:
            if complete:
                raise
            return
        except (typer.BadParameter, ValueError):
            # A placeholder where a number goes (PORT, N) is the docs' way of saying "yours".
            if any(PLACEHOLDER.match(w) for w in words):
                return
            raise
        if not hasattr(command, "resolve_command"):  # a command, not a group
            return
        rest = [*getattr(context, "_protected_args", []), *context.args]
        if not rest:
            return
        found = command.resolve_command(context, rest)
        assert found[1] is not None, f"no command {rest[0]!r}"
        name, command, words = found[0] or rest[0], found[1], found[2]


CASES = [
    pytest.param(command, complete, id=f"{page.name}: {command}")
    for page in PAGES
    for command, complete in quoted_commands(page.read_text())
]


def test_the_docs_quote_commands() -> None:
    assert len(CASES) > 40  # the extraction works: the docs quote many


@pytest.mark.parametrize(("command", "complete"), CASES)
def test_a_quoted_command_parses(command: str, complete: bool) -> None:
    words = shlex.split(command)[1:]
    # "…" stands for "more options" unless it is an option's value (--password '…').
    kept = [w for n, w in enumerate(words) if w != "…" or words[n - 1].startswith("-")]
    parse(kept, complete=complete)


@pytest.mark.parametrize(
    "words",
    [
        ["device", "lock", "UDID", "--bogus"],
        ["nonexistent"],
        ["device", "frobnicate"],
        ["simulate", "--apns-port", "abc"],
        ["scep", "approve"],
    ],
)
def test_the_check_itself_catches_wrong_commands(words: list[str]) -> None:
    with pytest.raises(Exception, match=r"No such|valid integer|Missing"):
        parse(words)
