"""The fuzz tests end the session with how many inputs each target took."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fuzz.harness import COUNTS, report


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A mutated certificate with a serial number of zero or below, or a name attribute of
    a length X.520 does not allow (an empty commonName), makes cryptography warn when it is
    read (a future release will refuse the first), and the suite makes warnings errors: in
    the server it is a warning only, and the message is refused or read as before."""
    ignores = (
        pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning"),
        pytest.mark.filterwarnings("ignore:Attribute's length must be:UserWarning"),
    )
    for item in items:
        if item.path.parent == Path(__file__).parent:
            for ignore in ignores:
                item.add_marker(ignore)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if COUNTS:
        terminalreporter.section("fuzz inputs per target")
        for line in report(dict(COUNTS)):
            terminalreporter.write_line(line)
