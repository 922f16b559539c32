"""`orchardist serve` speaks HTTPS with the certificate `init` made, and logs JSON."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import make_url

from orchardist import sched_slices
from orchardist.scep import client
from orchardist.scep.messages import MessageType, PkiStatus
from tests.db import POSTGRES_ENV
from tests.keys import rsa_key
from tests.server import ORCHARDIST, free_port, orchardist, running_server, serve_process
from tests.test_sched_slices import PER_TASK_SLICES


def test_https_with_our_ca_and_json_logs(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    orchardist(data_dir, "init", "--hostname", "localhost")
    trusted = ssl.create_default_context(cafile=str(data_dir / "pki" / "ca.pem"))
    with serve_process(data_dir, http=False) as (base, server):
        assert base.startswith("https://")
        response = httpx.get(f"{base}/healthz", verify=trusted)
        assert response.json()["status"] == "ok"
        assert httpx.get(f"{base}/readyz", verify=trusted).status_code == 200
        if PER_TASK_SLICES:  # the event loop's thread asked for short slices; it alone
            slices = _slices(server.server_pid)
            assert slices.pop(server.server_pid) == sched_slices.SHORTEST
            assert slices  # uvloop's resolver threads at least, started by the loop
            assert sched_slices.SHORTEST not in slices.values()
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"{base}/healthz", verify=ssl.create_default_context())
    lines = [json.loads(line) for line in _log(data_dir).splitlines() if line.startswith("{")]
    requests = [line for line in lines if line.get("event") == "http_request"]
    assert any(r["path"] == "/healthz" and r["status"] == 200 for r in requests)


def _slices(pid: int) -> dict[int, int | None]:
    """Each thread of a process, with its scheduler slice."""
    threads = [int(task.name) for task in Path(f"/proc/{pid}/task").iterdir()]
    return {thread: sched_slices.slice_of(thread) for thread in threads}


def _log(data_dir: Path) -> str:
    (log,) = data_dir.glob("serve-*.log")
    return log.read_text()


def test_several_worker_processes_share_one_database(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    orchardist(data_dir, "init", "--hostname", "localhost")
    with running_server(data_dir, http=True, extra=("--workers", "2")) as base:
        challenges = [orchardist(data_dir, "scep", "challenge").strip() for _ in range(6)]
        replies = [
            _enrol(base, data_dir, challenge, index) for index, challenge in enumerate(challenges)
        ]
        # Whichever worker answers a scrape reports every worker's counts (multiprocess mode).
        # Each worker's app believes X-Forwarded-For from this host (trusted_proxies).
        forwarded = {"X-Forwarded-For": "198.51.100.77"}
        scrapes = [_issued(httpx.get(f"{base}/metrics", headers=forwarded).text)
                   for _ in range(6)]  # fmt: skip
    assert replies == [PkiStatus.SUCCESS] * 6
    assert scrapes == [6] * 6
    started = [line for line in _log(data_dir).splitlines() if "Started server process" in line]
    assert len(started) == 2
    lines = [json.loads(line) for line in _log(data_dir).splitlines() if line.startswith("{")]
    scraped = [line for line in lines if line.get("path") == "/metrics"]
    assert {line["client"] for line in scraped} == {"198.51.100.77"}


def _issued(exposition: str) -> float:
    (family,) = [f for f in text_string_to_metric_families(exposition)
                 if f.name == "orchardist_scep_issuances"]  # fmt: skip
    return sum(s.value for s in family.samples if s.labels == {"outcome": "issued"})


def _enrol(base: str, data_dir: Path, challenge: str, index: int) -> PkiStatus:
    ca = x509.load_pem_x509_certificate((data_dir / "pki" / "ca.pem").read_bytes())
    key = rsa_key(60 + index)
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, f"worker-{index}")])
    requester = client.Requester(client.self_signed_signer(key, name), key, ca)
    csr = client.make_csr(key, f"worker-{index}", challenge).public_bytes(Encoding.DER)
    der = client.pki_message(requester, MessageType.PKCS_REQ, csr, f"worker-{index}")
    response = httpx.post(f"{base}/scep?operation=PKIOperation", content=der)
    return client.read_cert_rep(response.content, requester, ca).status


def _refused(data_dir: Path, env: dict[str, str] | None = None) -> str:
    """`serve` run to its end: it must exit non-zero before listening; its stderr."""
    done = subprocess.run(
        [*ORCHARDIST, "--data-dir", str(data_dir), "serve", "--http", "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )
    assert done.returncode != 0, done.stdout + done.stderr
    assert "Started server process" not in done.stdout + done.stderr
    return " ".join(done.stderr.split())  # rich wraps long lines


def test_serve_refuses_an_unreadable_ca_key(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    orchardist(data_dir, "init", "--hostname", "localhost")
    (data_dir / "pki" / "ca.key").write_bytes(b"not a key")
    message = _refused(data_dir)
    assert "cannot read the server's keys" in message
    assert "ca.key" in message
    assert "restore the file from your backup" in message


def test_serve_refuses_an_unreachable_database(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    orchardist(data_dir, "init", "--hostname", "localhost")
    url = f"postgresql://orchardist:secret@127.0.0.1:{free_port()}/orchardist"
    message = _refused(data_dir, {"ORCHARDIST_DATABASE_URL": url})
    assert "the database at postgresql://orchardist:***@127.0.0.1" in message
    assert "does not answer" in message
    assert "secret" not in message
    assert "start the database server, or correct database_url" in message


def test_serve_refuses_an_unreadable_database(backend: str, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    orchardist(data_dir, "init", "--hostname", "localhost")
    env: dict[str, str] = {}
    if backend == "sqlite":
        (data_dir / "orchardist.db").write_bytes(b"not a database\n" * 512)
        expected = "file is not a database"
    else:  # a server that answers, without this database
        missing = make_url(os.environ[POSTGRES_ENV]).set(database="orchardist_never_made")
        env["ORCHARDIST_DATABASE_URL"] = missing.render_as_string(hide_password=False)
        expected = 'database "orchardist_never_made" does not exist'
    message = _refused(data_dir, env)
    assert "does not answer" in message
    assert expected in message
