"""Invitations: a one-time link delivered to a real SMTP server (aiosmtpd) and to an SMS
provider (a local HTTP server taking Twilio-style form POSTs); the link works once."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import threading
from collections.abc import Iterator
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from aiosmtpd.controller import Controller

from tests.server import ORCHARDIST, free_port, orchardist, running_server


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append((list(envelope.rcpt_tos), bytes(envelope.content)))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[int, _Inbox]]:
    inbox, port = _Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, inbox
    finally:
        controller.stop()


@pytest.fixture
def sms_provider() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            received.append({
                "path": self.path,
                "auth": self.headers.get("Authorization"),
                "form": parse_qs(self.rfile.read(length).decode()),
            })  # fmt: skip
            self.send_response(201)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"sid": "SM1", "status": "queued"}')

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/2010-04-01/Accounts/AC1/Messages.json"
        yield url, received
    finally:
        server.shutdown()
        server.server_close()


def _configure(data_dir: Path, smtp_port: int, sms_url: str) -> None:
    with (data_dir / "orchardist.toml").open("a") as config:
        config.write(
            f'\n[smtp]\nhost = "127.0.0.1"\nport = {smtp_port}\nsecurity = "none"\n'
            f'sender = "IT <it@example.com>"\n'
            f'\n[sms]\nurl = "{sms_url}"\naccount = "AC1"\ntoken = "sms-token"\n'
            f'sender = "+15550000"\n'
        )


def test_an_invitation_reaches_both_and_its_link_works_once(
    tmp_path: Path, smtp: tuple[int, _Inbox], sms_provider: tuple[str, list[dict[str, Any]]]
) -> None:
    (smtp_port, inbox), (sms_url, texts) = smtp, sms_provider
    data_dir = tmp_path / "data"
    orchardist(data_dir, "init", "--hostname", "localhost")
    _configure(data_dir, smtp_port, sms_url)
    sent = json.loads(orchardist(data_dir, "enroll", "invite", "alice", "--email",
                                 "alice@example.com", "--sms", "+15550100", "--json"))  # fmt: skip
    assert [(d["channel"], d["ok"]) for d in sent["deliveries"]] == [("email", True), ("sms", True)]
    link = sent["link"]

    ((recipients, raw),) = inbox.messages
    mail = message_from_bytes(raw)
    assert recipients == ["alice@example.com"]
    assert mail["From"] == "IT <it@example.com>"
    assert link in mail.get_payload(decode=True).decode()  # type: ignore[union-attr]

    (text,) = texts
    assert text["form"]["To"] == ["+15550100"]
    assert text["form"]["From"] == ["+15550000"]
    assert link in text["form"]["Body"][0]
    assert text["auth"] == "Basic " + base64.b64encode(b"AC1:sms-token").decode()

    with running_server(data_dir, http=True) as base:
        # The link opens the review page for alice (it stands in for the sign-in) …
        target = base + urlsplit(link).path + "?" + urlsplit(link).query
        review = httpx.get(target)
        assert (review.status_code, "Review and install" in review.text) == (200, True)
        token = parse_qs(urlsplit(link).query)["invite"][0]
        # … whose Install gives the Profile Service payload, once.
        service = httpx.get(f"{base}/enroll/profile", params={"session": token})
        assert service.status_code == 200
        assert service.headers["content-type"].startswith("application/x-apple-aspen-config")
        again = httpx.get(f"{base}/enroll/profile", params={"session": token})
        assert again.status_code == 403
        used = httpx.get(target)  # the invitation is spent too
        assert (used.status_code, "sign in again" in used.text) == (403, True)

    listed = subprocess.run(
        [*ORCHARDIST, "--data-dir", str(data_dir), "enroll", "invite", "bob", "--email",
         "bob@example.com"],
        capture_output=True, text=True, check=False,
        env={**os.environ, "ORCHARDIST_SMTP__PORT": str(free_port())},
    )  # fmt: skip
    assert listed.returncode == 1  # the SMTP server is not there: said, and recorded
    assert "email to bob@example.com: NOT sent" in listed.stdout
    assert re.search(r"link \(one use, until .*\): https://localhost:8443/enroll\?invite=",
                     listed.stdout)  # fmt: skip
