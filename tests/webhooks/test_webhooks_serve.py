"""`orchardist serve` delivers webhooks by itself, with the URLs from ORCHARDIST_WEBHOOK_URLS
(a JSON list)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.cli.test_device_cli import enroll_phone
from tests.server import orchardist, running_server
from tests.webhooks.receiver import receiving


def test_serve_posts_events_to_the_urls_in_the_environment(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    orchardist(data_dir, "init", "--hostname", "localhost")
    with receiving() as first, receiving() as second:
        env = {"ORCHARDIST_WEBHOOK_URLS": json.dumps([first.url, second.url])}
        with running_server(data_dir, http=True, env=env) as base:
            enroll_phone(base, data_dir, "UDID-SERVE-HOOK")
            deadline = time.monotonic() + 30
            while len(first.received) < 2 or len(second.received) < 2:
                assert time.monotonic() < deadline, (first.received, second.received)
                time.sleep(0.1)
    for receiver in (first, second):
        topics = sorted(json.loads(r.body)["topic"] for r in receiver.received)
        assert topics == ["mdm.Authenticate", "mdm.TokenUpdate"]
        assert "X-Orchardist-Signature-256" not in receiver.received[0].headers  # no secret set


def test_a_webhook_url_that_is_not_http_is_refused_in_one_line(tmp_path: Path) -> None:
    from tests.cli.test_device_cli import cli

    data_dir = tmp_path / "data"
    orchardist(data_dir, "init", "--hostname", "localhost")
    with (data_dir / "orchardist.toml").open("a") as config:
        config.write('\nwebhook_urls = ["ftp://files.example.com/drop"]\n')
    refused = cli(data_dir, "device", "list")
    assert refused.returncode == 1
    assert "webhook_urls" in refused.stderr
    assert "'ftp://files.example.com/drop' is not one" in refused.stderr
    assert "Traceback" not in refused.stderr
