"""Mutation tests of every route the app serves, read from the app itself (so a new route
is covered the day it is added): path and query parameters and bodies of wrong shapes,
drawn from the OpenAPI document and mutated (see tests/web/api_mutations.py), with an
admin's token so the handlers are reached. No answer is a 5xx, and every JSON answer is
strict JSON. Bounded and derandomized: the same examples on every run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import given

from orchardist.profiles import envelope
from orchardist.profiles.spec import build_profile
from orchardist.web.app import create_app
from tests.apps.factory import BUNDLE_ID, build_ipa, build_mobileprovision
from tests.web.api_mutations import Endpoint, endpoints, requests
from tests.web.live_server import Live, live
from tests.web.mutations import bounded

PROFILE_SPEC = {
    "identifier": "com.example.wifi",
    "name": "Office Wi-Fi",
    "payloads": [{"type": "wifi", "SSID_STR": "Office", "EncryptionType": "None"}],
}
EXAMPLES_PER_ROUTE = 16
PROVISIONING = build_mobileprovision()  # one UUID: stored again after a route deletes it


def _known(site: Live, n: int, profile: bytes, ipa: bytes) -> dict[str, str]:
    """A device, a command, a profile, a group, a provisioning profile and an app for the
    examples to name: made afresh after each route that may change them (delete, retire)."""
    device = site.enrolled(f"UDID-API-{n}", 160 + n % 2)  # a key each would be 64 keygens
    command_uuid = site.call(site.server.queue, "DeviceLock", {}, device)
    uploaded = site.request("POST", "/api/v1/profiles", content=profile, headers=site.admin)
    assert uploaded.status_code in (200, 201), uploaded.text
    grouped = site.request(
        "PUT", "/api/v1/groups/sales", json={"devices": [device.udid]}, headers=site.admin
    )
    assert grouped.status_code == 200, grouped.text
    provisioning = site.request(
        "POST", "/api/v1/provisioning-profiles", content=PROVISIONING, headers=site.admin
    )
    assert provisioning.status_code in (200, 201), provisioning.text
    app = site.request("POST", "/api/v1/apps", files={"file": ("app.ipa", ipa)},
                       headers=site.admin)  # fmt: skip
    assert app.status_code in (201, 409), app.text
    return {
        "bundle_id": BUNDLE_ID,
        "udid": device.udid,
        "command_uuid": command_uuid,
        "identifier": PROFILE_SPEC["identifier"],
        "name": "sales",
        "path": "x",
        "uuid": provisioning.json()["uuid"],
    }


def _strict_json(response_body: bytes) -> None:
    def refuse(token: str) -> None:
        raise AssertionError(f"{token} in a JSON answer")

    json.loads(response_body, parse_constant=refuse)


def test_every_route_never_answers_5xx(backend: str, tmp_path: Path) -> None:
    with live(backend, tmp_path) as site:
        services = site.server.services
        routes = endpoints(create_app(services.settings, services))
        assert len({e.path for e in routes if e.path.startswith("/api/v1/")}) >= 15
        profile = build_profile(PROFILE_SPEC, base_dir=tmp_path, env={})
        body = envelope.serialize(profile)
        ipa = build_ipa(tmp_path / "app.ipa").read_bytes()
        known = _known(site, 0, body, ipa)
        for n, endpoint in enumerate(routes, start=1):
            _fuzz(site, endpoint, known, profile)
            if endpoint.method != "GET":  # it may have deleted or retired what is known
                known = _known(site, n, body, ipa)
        untried = {(e.method, e.path) for e in routes} - site.tried
        assert not untried


def _fuzz(site: Live, endpoint: Endpoint, known: dict[str, str], profile: dict[str, Any]) -> None:
    @bounded(EXAMPLES_PER_ROUTE)
    @given(request=requests(endpoint, known, profile))
    def check(request: tuple[str, dict[str, Any]]) -> None:
        url, sent = request
        headers = {**site.admin, **sent.pop("headers", {})}
        response = site.request(endpoint.method, url, headers=headers, **sent)
        assert response.status_code < 500, (endpoint, url, response.text[:300])
        if response.headers.get("content-type", "").startswith("application/json"):
            _strict_json(response.content)
        site.tried.add((endpoint.method, endpoint.path))

    check()
