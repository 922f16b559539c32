"""orchardist.apps.links: signed links work for their subject until they expire, and say
why not otherwise; the data dir's secret is made once and kept."""

from __future__ import annotations

import stat
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from orchardist.apps.links import LinkCheck, LinkSigner, link_secret

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SUBJECT = "a" * 64  # a file's SHA-256


@pytest.fixture
def signer(tmp_path: Path) -> LinkSigner:
    return LinkSigner.from_data_dir(tmp_path)


def test_a_link_works_until_it_expires(signer: LinkSigner) -> None:
    token = signer.sign(SUBJECT, NOW + timedelta(hours=2))
    assert signer.verify(SUBJECT, token, NOW)
    assert signer.verify(SUBJECT, token, NOW + timedelta(hours=1, minutes=59))
    assert signer.check(SUBJECT, token, NOW + timedelta(hours=2)) == LinkCheck(False, "expired")


def test_a_token_is_url_safe(signer: LinkSigner) -> None:
    token = signer.sign("manifest/com.example.expenses/1.0", NOW)
    assert token.replace(".", "").replace("-", "").replace("_", "").isalnum()


def test_a_link_grants_only_its_subject(signer: LinkSigner) -> None:
    token = signer.sign(SUBJECT, NOW + timedelta(hours=1))
    assert signer.check("b" * 64, token, NOW) == LinkCheck(False, "bad signature")


def test_a_changed_expiry_or_mac_is_refused(signer: LinkSigner) -> None:
    token = signer.sign(SUBJECT, NOW + timedelta(hours=1))
    expiry, mac = token.split(".")
    extended = f"{int(expiry) + 86400}.{mac}"
    assert signer.check(SUBJECT, extended, NOW) == LinkCheck(False, "bad signature")
    flipped = f"{expiry}.{'A' if mac[0] != 'A' else 'B'}{mac[1:]}"
    assert signer.check(SUBJECT, flipped, NOW) == LinkCheck(False, "bad signature")


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("", "malformed"),
        ("abc", "malformed"),
        (".abc", "malformed"),
        ("-5.abc", "malformed"),
        ("1e9.abc", "malformed"),
        ("9" * 20 + ".x", "malformed"),
        ("12.", "bad signature"),
    ],
)
def test_malformed_tokens_are_refused(signer: LinkSigner, token: str, reason: str) -> None:
    assert signer.check(SUBJECT, token, NOW) == LinkCheck(False, reason)
    assert not signer.verify(SUBJECT, token, NOW)


def test_another_servers_secret_does_not_verify(signer: LinkSigner, tmp_path: Path) -> None:
    other = LinkSigner.from_data_dir(tmp_path / "other")
    token = other.sign(SUBJECT, NOW + timedelta(hours=1))
    assert not signer.verify(SUBJECT, token, NOW)


def test_the_secret_is_made_once_private_and_shared(tmp_path: Path) -> None:
    results: list[bytes] = []
    threads = [
        threading.Thread(target=lambda: results.append(link_secret(tmp_path))) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results)) == 1
    assert len(results[0]) == 32
    key = tmp_path / "secrets" / "links.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert [path.name for path in key.parent.iterdir()] == ["links.key"]
    assert link_secret(tmp_path) == results[0]


def test_naive_times_and_short_secrets_are_refused(signer: LinkSigner) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        signer.sign(SUBJECT, datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="at least 32 bytes"):
        LinkSigner(b"short")
