"""`orchardist serve` takes the client address from X-Forwarded-For only when the peer is in
`trusted_proxies` (web/proxy.py; with --workers, see test_serve.py): the address sign-in
limits count and logs name."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.server import orchardist, running_server

FORWARDED = {"X-Forwarded-For": "198.51.100.77"}


def _clients(data_dir: Path) -> set[str]:
    lines = [json.loads(line) for path in data_dir.glob("serve-*.log")
             for line in path.read_text().splitlines() if line.startswith("{")]  # fmt: skip
    return {line["client"] for line in lines if line.get("event") == "http_request"}


def test_only_a_trusted_proxy_names_the_client(tmp_path: Path) -> None:
    trusting, wary = tmp_path / "trusting", tmp_path / "wary"
    for data_dir in (trusting, wary):
        orchardist(data_dir, "init", "--hostname", "localhost")
    with running_server(trusting, http=True) as base:  # default: this host is a proxy
        httpx.get(f"{base}/healthz", headers=FORWARDED)
    untrusted = {"ORCHARDIST_TRUSTED_PROXIES": '["10.9.9.9"]'}
    with running_server(wary, http=True, env=untrusted) as base:
        httpx.get(f"{base}/healthz", headers=FORWARDED)
    assert "198.51.100.77" in _clients(trusting)
    assert _clients(wary) == {"127.0.0.1"}
