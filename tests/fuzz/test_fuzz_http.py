"""The fuzzed inputs through the in-process app, on SQLite: SCEP PKIOperation (a real
pkiMessage for our CA, DER-tree mutated, then ScepService.pki_operation behind /scep),
over-the-air phase 3 posts and .mobileconfig uploads. No answer is a 5xx, and no request
takes longer than the bound."""

from __future__ import annotations

import plistlib
from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import example, given
from hypothesis import strategies as st

from orchardist.scep import client
from orchardist.scep.messages import MessageType
from tests.fuzz.der_mutations import der_mutated
from tests.fuzz.harness import bounded_call, fuzzing
from tests.fuzz.test_fuzz_uploads import PROFILE, mobileconfigs
from tests.keys import rsa_key
from tests.web.live_server import Live, live


def _pki_messages(site: Live) -> list[bytes]:
    key = rsa_key(173)
    ca = site.server.services.ca.certificate
    subject = client.make_csr(key, "fuzz").subject
    requester = client.Requester(client.self_signed_signer(key, subject), key, ca)
    challenge, _ = site.call(site.server.services.challenges.issue)
    csr = client.make_csr(key, "fuzz", challenge).public_bytes(Encoding.DER)
    return [
        client.pki_message(requester, MessageType.PKCS_REQ, csr, "F" * 40),
        client.pki_message(requester, MessageType.CERT_POLL, b"\x30\x00", "F" * 40),
    ]


def test_fuzzed_inputs_never_answer_5xx(tmp_path: Path) -> None:
    with live("sqlite", tmp_path) as site:

        def post(target: str, url: str, body: bytes, **extra: object) -> None:
            response = bounded_call(target, lambda: site.request("POST", url, content=body,
                                    **extra), ())  # fmt: skip
            assert response is not None
            assert response.status_code < 500, (target, response.text[:300])

        @fuzzing(40)
        @given(der=st.sampled_from(_pki_messages(site)).flatmap(der_mutated))
        def scep(der: bytes) -> None:
            post("http /scep PKIOperation", "/scep?operation=PKIOperation", der)

        @fuzzing(30)
        @given(data=mobileconfigs())
        # A control character under a key the schema does not know (an upload allows
        # unknown keys): a binary plist carries it, the XML the profile is stored as
        # cannot (a 500). Found by `make fuzz`.
        @example(data=plistlib.dumps({**PROFILE, "": ["\x08"]}, fmt=plistlib.FMT_BINARY))
        def uploads(data: bytes) -> None:
            post("http /api/v1/profiles", "/api/v1/profiles", data, headers=site.admin)

        scep()
        uploads()
        assert site.answers[("/scep", 200)] > 0
