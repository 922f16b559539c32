"""The push certificate as the pusher loads it: an expiring one is announced in the log (a
warning from 30 days before, an error from 7: every device is stranded when it lapses), and
a missing APNs CA file is named."""

from __future__ import annotations

from pathlib import Path

import pytest
from structlog.testing import capture_logs

from orchardist.pki.store import PkiFiles
from orchardist.push.pusher import PushSettings, SenderSource
from tests.push.identity import push_identity

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(("days", "level"), [(400, None), (20, "warning"), (5, "error")])
async def test_the_log_warns_before_the_push_certificate_expires(
    tmp_path: Path, days: int, level: str | None
) -> None:
    identity = push_identity(tmp_path / "apple", days=days)
    files = PkiFiles.in_data_dir(tmp_path / "data")
    files.push_cert.parent.mkdir(parents=True)
    files.push_cert.write_bytes(identity.cert_file.read_bytes())
    files.push_key.write_bytes(identity.key_file.read_bytes())
    source = SenderSource(files, PushSettings(apns_url="https://127.0.0.1:1", ca_file=None))
    try:
        with capture_logs() as logs:
            assert await source.current() is not None
            await source.current()  # once a day, not on every round
    finally:
        await source.close()
    expiring = [e for e in logs if e["event"] == "push_certificate_expiring"]
    if level is None:
        assert expiring == []
        return
    (entry,) = expiring
    assert entry["log_level"] == level
    assert entry["days_left"] in (days - 1, days)
    assert entry["topic"] == identity.topic


async def test_a_missing_apns_ca_file_is_named(tmp_path: Path) -> None:
    identity = push_identity(tmp_path / "apple")
    files = PkiFiles.in_data_dir(tmp_path / "data")
    files.push_cert.parent.mkdir(parents=True)
    files.push_cert.write_bytes(identity.cert_file.read_bytes())
    files.push_key.write_bytes(identity.key_file.read_bytes())
    missing = tmp_path / "nowhere.pem"
    source = SenderSource(files, PushSettings(apns_url="https://127.0.0.1:1", ca_file=missing))
    with pytest.raises(FileNotFoundError, match="ORCHARDIST_APNS_CA_FILE"):
        await source.current()
