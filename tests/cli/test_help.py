"""`orchardist --version`, and every command's --help showing all of its text: rich once
read `[smtp]` in a docstring as markup and dropped it."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from importlib.metadata import version
from typing import Any

import typer.main

from orchardist.cli.main import app
from tests.server import ORCHARDIST


def _commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, (*path, name))


def _words(text: str) -> str:
    """Text as a terminal shows it, without the panels: one space between words."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


# One process prints every --help (one process per command would take a minute here).
_EVERY_HELP = """
import contextlib, io, json, sys
from orchardist.cli.main import main
shown = {}
for path in json.loads(sys.argv[1]):
    sys.argv = ["orchardist", *path, "--help"]
    with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.suppress(SystemExit):
        main()
    shown[" ".join(path)] = out.getvalue()
print(json.dumps(shown))
"""


def _helps(paths: list[tuple[str, ...]]) -> dict[tuple[str, ...], str]:
    env = {**os.environ, "COLUMNS": "200", "TERMINAL_WIDTH": "200"}
    command = [ORCHARDIST[0], "-c", _EVERY_HELP, json.dumps(paths)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    return {path: _words(shown[" ".join(path)]) for path in paths}


def test_version() -> None:
    done = subprocess.run([*ORCHARDIST, "--version"], capture_output=True, text=True, check=False)
    assert (done.returncode, done.stdout) == (0, f"orchardist {version('orchardist')}\n")


def test_every_help_shows_all_of_its_text() -> None:
    commands = dict(_commands(typer.main.get_command(app)))
    assert len(commands) > 40
    shown = _helps(list(commands))
    missing = []
    for path, command in commands.items():
        texts = [command.help or ""] + [getattr(p, "help", None) or "" for p in command.params]
        missing += [(path, text) for text in texts if _words(text) not in shown[path]]
    assert missing == []
    assert "([smtp] and [sms] in orchardist.toml)" in shown[("enroll", "invite")]
    # Lists of devices can show whole UDIDs in a terminal too.
    for path in (("device", "list"), ("profile", "status"), ("command", "show")):
        assert "--wide" in shown[path]
