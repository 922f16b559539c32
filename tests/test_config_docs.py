"""docs/configuration.md lists every setting, as the settings model generates it."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field

from orchardist.config import NON_SETTING_VARIABLES, Settings
from orchardist.config_check import environment_name, setting_fields, setting_paths
from orchardist.config_docs import BEGIN, DOC, END, main, render_table, updated

ROOT = Path(__file__).resolve().parents[1]


def test_the_document_is_what_the_model_generates() -> None:
    document = DOC.read_text(encoding="utf-8")
    assert updated(document, render_table()) == document, "run: python -m orchardist.config_docs"


def test_every_setting_is_described_and_listed() -> None:
    table = render_table()
    for path in setting_paths(Settings):
        assert f"`{environment_name(path)}`" in table, path
    undescribed = [path for path, field in setting_fields(Settings) if not field.description]
    assert undescribed == []


def test_a_new_field_appears_in_the_generated_table() -> None:
    """How a later setting reaches the docs without editing them."""

    class Later(Settings):
        later_hooks: list[str] = Field(default=[], description="Where events are posted")

    row = render_table(Later).splitlines()[-2]
    assert row == (
        "| `later_hooks` | `ORCHARDIST_LATER_HOOKS` (JSON) | list of text | `[]` "
        "| Where events are posted | restart to apply |"
    )


def test_check_mode_fails_on_a_stale_document(tmp_path: Path) -> None:
    stale = tmp_path / "configuration.md"
    stale.write_text(f"# Configuration\n\n{BEGIN}\n| old |\n{END}\n\nMore prose.\n")
    assert main(["--check", str(stale)]) == 1
    assert main([str(stale)]) == 0
    rewritten = stale.read_text()
    assert rewritten.endswith(f"{END}\n\nMore prose.\n")
    assert "`ORCHARDIST_HOSTNAME`" in rewritten
    assert main(["--check", str(stale)]) == 0


def test_every_orchardist_variable_the_project_uses_is_a_setting_or_allowed() -> None:
    """A variable read elsewhere (like the test suite's PostgreSQL URL) must be in
    NON_SETTING_VARIABLES, or every command would refuse it as a typo."""
    known = {environment_name(path) for path in setting_paths(Settings)} | NON_SETTING_VARIABLES
    # The settings tests write misspelt names on purpose.
    deliberate = {
        ROOT / "tests" / name
        for name in (
            "test_config.py",
            "test_config_docs.py",
            "cli/test_settings_cli.py",
            "test_cli_forkserver.py",
        )
    }
    sources = [*ROOT.glob("src/**/*.py"), *ROOT.glob("tests/**/*.py"), *ROOT.glob("bench/**/*.py")]
    sources += [ROOT / ".ci" / "run", ROOT / "Makefile"]
    used = {
        (name, path.relative_to(ROOT).as_posix())
        for path in sources
        if path not in deliberate and path.exists()
        for name in re.findall(r"ORCHARDIST_[A-Z0-9_]*[A-Z0-9]", path.read_text(encoding="utf-8"))
    }
    assert sorted(pair for pair in used if pair[0] not in known) == []
