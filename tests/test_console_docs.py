"""docs/console.md's "Who may do what" is the permission table, row for row."""

from __future__ import annotations

from pathlib import Path

from orchardist.accounts.permissions import ROLES, RULES, allowed

DOC = Path(__file__).resolve().parents[1] / "docs" / "console.md"


def test_the_documented_table_is_the_one_enforced() -> None:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Who may do what", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and "`" in line]
    expected = [
        f"| {rule.what} | `{permission.value}` | "
        + " | ".join("yes" if allowed(role, permission) else "—" for role in ROLES)
        + " |"
        for permission, rule in RULES.items()
    ]
    assert rows == expected
