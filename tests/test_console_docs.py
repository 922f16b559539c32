"""docs/console.md's "Who may do what" is the permission table, row for row."""

from __future__ import annotations

import re
from pathlib import Path

from orchardist.accounts.permissions import ROLES, RULES, allowed
from orchardist.web.console.templating import NAV

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


def test_every_console_page_has_its_screenshots_in_the_docs() -> None:
    """Each page of the console's menu, and sign-in, is shown at desktop and tablet width;
    each image the page names is in docs/console/ (taken by `make screenshots`)."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Screenshots", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"\]\((console/[a-z-]+\.png)\)", section))
    missing = sorted(name for name in named if not (DOC.parent / name).is_file())
    assert missing == []
    pages = {"sign-in", *(path.rsplit("/", 1)[-1] for _, path in NAV)}
    pages = {"dashboard" if page == "console" else page for page in pages}
    for page in pages:
        for width in ("desktop", "tablet"):
            assert f"console/{page}-{width}.png" in named, (page, width)
    on_disk = {f"console/{p.name}" for p in (DOC.parent / "console").glob("*.png")}
    assert on_disk == named  # none left behind by a page that went away
