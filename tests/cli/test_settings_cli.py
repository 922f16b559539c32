"""A mistake in orchardist.toml or the ORCHARDIST_* environment stops every command that
reads the settings with one line naming it — no traceback, nothing done."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

import pytest

from tests.server import ORCHARDIST, free_port, orchardist

COMMANDS = [
    ("init", "--hostname", "mdm.example.test"),
    ("serve", "--port", "0"),
    ("enrollment-profile", "-o", "never.mobileconfig"),
    ("device", "list"),
    ("token", "create", "--name", "ci"),
    ("scep", "challenge"),
    ("profile", "list"),
    ("directory", "test", "alice"),
]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("settings") / "data"
    orchardist(data_dir, "init", "--hostname", "mdm.example.test")
    return data_dir


def _refused(
    data_dir: Path, args: tuple[str, ...], env: Mapping[str, str] | None = None
) -> list[str]:
    """The command's stderr lines, after asserting it failed without a traceback."""
    done = subprocess.run(
        [*ORCHARDIST, "--data-dir", str(data_dir), *args],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, **(env or {})}, cwd=data_dir.parent,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    return done.stderr.splitlines()


@pytest.mark.parametrize("args", COMMANDS, ids=lambda args: " ".join(args[:2]))
def test_an_unknown_key_in_the_file(data_dir: Path, args: tuple[str, ...]) -> None:
    config = data_dir / "orchardist.toml"
    original = config.read_text()
    config.write_text(original + 'scep_static_chalenge = "x"\n')
    try:
        error, hint = _refused(data_dir, args)
    finally:
        config.write_text(original)
    assert error == (
        f"error: {config}: unknown setting 'scep_static_chalenge' "
        "(did you mean 'scep_static_challenge'?)"
    )
    assert hint.startswith(f"→ fix {config} or the ORCHARDIST_* environment variable")


@pytest.mark.parametrize("args", COMMANDS, ids=lambda args: " ".join(args[:2]))
def test_an_unknown_environment_variable(data_dir: Path, args: tuple[str, ...]) -> None:
    error, _ = _refused(data_dir, args, {"ORCHARDIST_HOSTNAM": "typo.example.test"})
    assert error == (
        "error: unknown environment variable ORCHARDIST_HOSTNAM (did you mean ORCHARDIST_HOSTNAME?)"
    )


@pytest.mark.parametrize("args", COMMANDS, ids=lambda args: " ".join(args[:2]))
def test_a_wrong_type(data_dir: Path, args: tuple[str, ...]) -> None:
    env = {"ORCHARDIST_PUSH_POLL_SECONDS": "often"}
    error, _ = _refused(data_dir, args, env)
    assert error == (
        "error: setting push_poll_seconds (from ORCHARDIST_PUSH_POLL_SECONDS): expected a valid "
        "number, unable to parse string as a number, got 'often'"
    )


def test_init_writes_nothing_when_the_settings_are_wrong(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    _refused(data_dir, ("init", "--hostname", "h"), {"ORCHARDIST_CA_KEY_SIZE": "1024"})
    assert not data_dir.exists()


def test_the_test_suites_postgres_variable_is_not_refused(data_dir: Path) -> None:
    env = {"ORCHARDIST_TEST_POSTGRES_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/x"}
    assert orchardist(data_dir, "scep", "challenge", env=env).strip()
