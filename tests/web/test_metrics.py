"""/metrics through the real app: what real requests move, route templates as labels, the
queue depth and pool read from storage, pushes through the local APNs peer, the token."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest
from cryptography import x509
from prometheus_client.parser import text_string_to_metric_families

from orchardist.push.pusher import Pusher, PushSettings
from orchardist.push.sender import ApnsSender
from orchardist.scep import client
from orchardist.scep.messages import PkiStatus
from orchardist.simulator.apns_peer import ApnsPeer
from orchardist.tokens import create_api_token
from orchardist.wiring import utc_now
from tests.keys import rsa_key
from tests.push.conftest import make_sender
from tests.push.identity import PushIdentity, push_identity
from tests.web.mdm_server import Server, running

pytestmark = pytest.mark.anyio
Samples = Mapping[tuple[str, frozenset[tuple[str, str]]], float]


def _parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def _scrape(server: Server) -> Samples:
    response = await server.http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    return _parse(response.text)


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def _moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return _value(after, name, **labels) - _value(before, name, **labels)


async def _scep_enrol(server: Server, cn: str) -> PkiStatus:
    key = rsa_key(40)
    subject = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, cn)])
    ca = server.ca.certificate
    requester = client.Requester(client.self_signed_signer(key, subject), key, ca)
    challenge, _ = await server.services.challenges.issue()
    csr = client.make_csr(key, cn, challenge).public_bytes(client.Encoding.DER)
    der = client.pki_message(requester, client.MessageType.PKCS_REQ, csr, cn)
    response = await server.http.post("/scep?operation=PKIOperation", content=der)
    return client.read_cert_rep(response.content, requester, ca).status


async def test_real_requests_move_the_metrics(server: Server) -> None:
    admin = {"Authorization": f"Bearer {await create_api_token(server.services.storage, 'm')}"}
    before = await _scrape(server)
    device = await server.device("UDID-METRICS-1", 80)
    await server.enroll(device)  # two check-ins on /mdm/checkin
    await server.report(device, "Idle")  # one on /mdm/connect
    assert (await server.http.get(f"/api/v1/devices/{device.udid}", headers=admin)).is_success
    assert (await server.http.get("/api/v1/devices/NO-SUCH-UDID", headers=admin)).status_code == 404
    assert (await server.http.get("/no/such/page")).status_code == 404
    body = {"request_type": "DeviceInformation", "params": {"Queries": ["OSVersion"]},
            "targets": [device.udid]}  # fmt: skip
    assert (await server.http.post("/api/v1/commands", json=body, headers=admin)).status_code == 201
    assert await _scep_enrol(server, "metrics-scep") == PkiStatus.SUCCESS
    after = await _scrape(server)

    requests = "orchardist_http_requests_total"
    assert _moved(before, after, requests, method="PUT", route="/mdm/checkin", status="200") == 2
    assert _moved(before, after, requests, method="PUT", route="/mdm/connect", status="200") == 1
    show = {"method": "GET", "route": "/api/v1/devices/{udid}"}
    assert _moved(before, after, requests, **show, status="200") == 1
    assert _moved(before, after, requests, **show, status="404") == 1
    assert _moved(before, after, requests, method="GET", route="unmatched", status="404") == 1
    assert _moved(before, after, requests, method="POST", route="/scep", status="200") == 1
    labels = {value for _, pairs in after for _, value in pairs}
    assert not any("UDID-" in value or "NO-SUCH" in value or "/no/" in value for value in labels)

    timed = "orchardist_mdm_request_duration_seconds"
    assert _moved(before, after, f"{timed}_count", route="/mdm/checkin") == 2
    assert _moved(before, after, f"{timed}_count", route="/mdm/connect") == 1
    assert _moved(before, after, f"{timed}_bucket", route="/mdm/checkin", le="+Inf") == 2
    assert _moved(before, after, f"{timed}_sum", route="/mdm/checkin") > 0

    issued = "orchardist_scep_issuances_total"
    assert _moved(before, after, issued, outcome="issued") == 1
    assert _moved(before, after, issued, outcome="refused") == 0
    # Queued and pushed nowhere (no push certificate here): waiting for its device.
    assert _value(after, "orchardist_command_queue_depth", status="queued") == 1
    assert _value(after, "orchardist_command_queue_depth", status="sent") == 0
    assert _value(after, "orchardist_db_pool_size") >= 1
    assert _value(after, "orchardist_db_pool_checked_out") == 0  # nothing in flight mid-scrape


async def test_a_refused_scep_request_counts_as_refused(server: Server) -> None:
    before = await _scrape(server)
    key = rsa_key(41)
    subject = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "no-challenge")])
    ca = server.ca.certificate
    requester = client.Requester(client.self_signed_signer(key, subject), key, ca)
    csr = client.make_csr(key, "no-challenge", "wrong").public_bytes(client.Encoding.DER)
    der = client.pki_message(requester, client.MessageType.PKCS_REQ, csr, "no-challenge")
    response = await server.http.post("/scep?operation=PKIOperation", content=der)
    assert client.read_cert_rep(response.content, requester, ca).status == PkiStatus.FAILURE
    after = await _scrape(server)
    issued = "orchardist_scep_issuances_total"
    assert _moved(before, after, issued, outcome="refused") == 1
    assert _moved(before, after, issued, outcome="issued") == 0


async def test_pushes_through_the_local_apns_peer_are_counted(
    server: Server, tmp_path: Path
) -> None:
    identity = push_identity(tmp_path / "push")
    async with ApnsPeer(identity.ca_pem) as peer:
        await _push_twice(server, peer, identity, tmp_path)


async def _push_twice(
    server: Server, peer: ApnsPeer, identity: PushIdentity, tmp_path: Path
) -> None:
    admin = {"Authorization": f"Bearer {await create_api_token(server.services.storage, 'm')}"}
    devices = [await server.device(f"UDID-PUSH-{n}", 82 + n) for n in range(2)]
    for device in devices:
        await server.enroll(device)  # both with push token 01…01, see mdm_server
    body = {"request_type": "DeviceLock", "targets": [devices[0].udid]}
    assert (await server.http.post("/api/v1/commands", json=body, headers=admin)).status_code == 201
    sender = make_sender(peer, identity, tmp_path, retries=0)
    before = await _scrape(server)
    assert _value(before, "orchardist_push_backlog") == 1
    try:
        assert await _pusher(server, sender).run_once() == 1
        peer.behaviour.unregistered.add((b"\x01" * 32).hex())
        body["targets"] = [devices[1].udid]
        await server.http.post("/api/v1/commands", json=body, headers=admin)
        assert await _pusher(server, sender).run_once() == 1
    finally:
        await sender.close()
    after = await _scrape(server)
    pushes = "orchardist_apns_pushes_total"
    assert _moved(before, after, pushes, outcome="accepted") == 1
    assert _moved(before, after, pushes, outcome="invalid-token") == 1
    assert _moved(before, after, pushes, outcome="rejected") == 0
    assert _value(after, "orchardist_push_backlog") == 0


def _pusher(server: Server, sender: ApnsSender) -> Pusher:
    async def senders() -> ApnsSender:
        return sender

    return Pusher(server.services.storage, senders, PushSettings("unused", None), clock=utc_now)


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_a_metrics_token_is_required_when_set(backend: str, tmp_path: Path) -> None:
    async with running(backend, tmp_path, metrics_token="s3cret-scrape") as server:
        missing = await server.http.get("/metrics")
        assert (missing.status_code, missing.headers["www-authenticate"]) == (401, "Bearer")
        assert "metrics_token" in missing.text
        for wrong in ("Bearer nope", "Basic s3cret-scrape", "Bearer s3cret-scrape-and-more"):
            answer = await server.http.get("/metrics", headers={"Authorization": wrong})
            assert answer.status_code == 401
        good = await server.http.get("/metrics", headers={"Authorization": "Bearer s3cret-scrape"})
        assert good.status_code == 200
        assert "orchardist_command_queue_depth" in good.text
