"""Mutation tests of the device routes: valid check-ins, command results, SCEP requests and
over-the-air posts, changed by Hypothesis (see tests/web/mutations.py) and sent the way a
device sends them (MDM bodies signed by an enrolled device's identity, so the parsers are
reached). Whatever arrives, the answer is never a 5xx and the API keeps answering for the
device. Bounded and derandomized: the same examples on every run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import given
from hypothesis import strategies as st

from orchardist.pki import cms
from tests.web.live_server import live
from tests.web.mdm_server import CHECKIN
from tests.web.mutation_seeds import OTA_ATTRIBUTES, checkins, command_results
from tests.web.mutations import bounded, flipped, mutated, texts, written
from tests.web.scep_mutations import scep_requests


def test_command_results_never_answer_5xx(backend: str, tmp_path: Path) -> None:
    with live(backend, tmp_path) as site:
        device = site.enrolled("UDID-MUT-R", 140)
        results = command_results(site.server.ca.certificate.public_bytes(Encoding.DER))
        statuses = st.sampled_from(["Acknowledged", "Acknowledged", "Error", "NotNow"])

        @bounded(120)
        @given(data=st.data(), request_type=st.sampled_from(sorted(results)), status=statuses)
        def check(data: st.DataObject, request_type: str, status: str) -> None:
            params, answer = results[request_type]
            command_uuid = site.call(site.server.queue, request_type, params, device)
            seed = {"Status": status, "UDID": device.udid, "CommandUUID": command_uuid, **answer}
            body = data.draw(written(data.draw(mutated(seed))), label="body")
            headers = device.headers(body)
            response = site.request("PUT", "/mdm/connect", content=body, headers=headers)
            assert response.status_code < 500, response.text
            site.assert_device_readable(device.udid)

        check()
        assert site.answers[("/mdm/connect", 200)] > 0  # some got past every check


def test_check_ins_never_answer_5xx(backend: str, tmp_path: Path) -> None:
    with live(backend, tmp_path) as site:
        device = site.enrolled("UDID-MUT-C", 141)
        bodies = st.sampled_from(checkins(device.udid)).flatmap(mutated).flatmap(written)

        @bounded(100)
        @given(body=bodies, path=st.sampled_from(["/mdm/checkin", "/mdm/connect"]))
        def check(body: bytes, path: str) -> None:
            headers = device.headers(body, CHECKIN)
            response = site.request("PUT", path, content=body, headers=headers)
            assert response.status_code < 500, response.text
            site.assert_device_readable(device.udid)

        check()
        assert site.answers[("/mdm/checkin", 200)] > 0


def test_over_the_air_posts_never_answer_5xx(backend: str, tmp_path: Path) -> None:
    """Phase-3 posts signed by an identity our CA issued: the attributes are parsed."""
    with live(backend, tmp_path) as site:
        device = site.call(site.server.device, "UDID-MUT-OTA", 142)
        attributes = mutated({"UDID": device.udid, **OTA_ATTRIBUTES}).flatmap(written)
        signed = attributes.map(lambda content: cms.sign(content, device.cert, device.key))
        unsigned = st.binary(max_size=256) | signed.flatmap(flipped)

        @bounded(40)
        @given(body=signed | unsigned)
        def check(body: bytes) -> None:
            response = site.request("POST", "/enroll/ota", content=body)
            assert response.status_code < 500, response.text

        check()


ENROLLMENT_PAGES = [
    ("GET", "/enroll"),
    ("POST", "/enroll"),
    ("GET", "/enroll/profile"),
    ("POST", "/enroll/install"),
    ("POST", "/enroll/decline"),
    ("GET", "/mdm/enroll"),
]


def test_enrollment_pages_never_answer_5xx(backend: str, tmp_path: Path) -> None:
    with live(backend, tmp_path) as site:
        names = st.sampled_from(["user", "password", "session", "invite", "token", "x"])
        fields = st.dictionaries(names, texts, max_size=4)
        raw = st.binary(max_size=128).map(lambda content: {"content": content})
        posted = fields.map(lambda form: {"data": form}) | raw

        @bounded(40)
        @given(page=st.sampled_from(ENROLLMENT_PAGES), query=fields, sent=posted)
        def check(page: tuple[str, str], query: dict[str, str], sent: dict[str, Any]) -> None:
            method, path = page
            extra = sent if method == "POST" else {}
            response = site.request(method, path, params=query, **extra)
            assert response.status_code < 500, response.text

        check()


def test_scep_never_answers_5xx(backend: str, tmp_path: Path) -> None:
    with live(backend, tmp_path) as site:

        @bounded(40)
        @given(request=scep_requests(site))
        def check(request: tuple[str, dict[str, Any]]) -> None:
            method, sent = request
            response = site.request(method, "/scep", **sent)
            assert response.status_code < 500, response.text

        check()
        assert site.answers[("/scep", 200)] > 0
