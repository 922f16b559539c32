"""`orchardist serve` speaks HTTPS with the certificate `init` made, and logs JSON."""

from __future__ import annotations

import json
import ssl
from pathlib import Path

import httpx
import pytest

from tests.server import orchardist, running_server


def test_https_with_our_ca_and_json_logs(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    orchardist(data_dir, "init", "--hostname", "localhost")
    trusted = ssl.create_default_context(cafile=str(data_dir / "pki" / "ca.pem"))
    with running_server(data_dir, http=False) as base:
        assert base.startswith("https://")
        response = httpx.get(f"{base}/healthz", verify=trusted)
        assert response.json()["status"] == "ok"
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"{base}/healthz", verify=ssl.create_default_context())
    lines = [json.loads(line) for line in _log(data_dir).splitlines() if line.startswith("{")]
    requests = [line for line in lines if line.get("event") == "http_request"]
    assert any(r["path"] == "/healthz" and r["status"] == 200 for r in requests)


def _log(data_dir: Path) -> str:
    (log,) = data_dir.glob("serve-*.log")
    return log.read_text()
