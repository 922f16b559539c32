"""SCEP requests for the mutation test: real pkiMessages (signed, encrypted to our CA) with
their parts changed (subject, challenge valid or not, message type, transaction ID, the
inner request), the DER with bytes changed, and GET/POST shapes of every operation."""

from __future__ import annotations

import base64
import string
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import strategies as st

from orchardist.scep import client
from tests.keys import rsa_key
from tests.web.live_server import Live
from tests.web.mutations import flipped

PRINTABLE = string.ascii_letters + string.digits + " '()+,-./:=?"
MESSAGE_TYPES = [3, 17, 18, 19, 20, 21, 22, 99]


@st.composite
def pki_messages(draw: st.DrawFn, site: Live) -> bytes:
    key = rsa_key(150)
    name = draw(st.text(min_size=1, max_size=30).filter(lambda text: "\x00" not in text))
    subject = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, name)])
    requester = client.Requester(
        client.self_signed_signer(key, subject), key, site.server.services.ca.certificate
    )
    if draw(st.booleans()):
        challenge, _ = site.call(site.server.services.challenges.issue)
    else:
        challenge = draw(st.text(max_size=80))
    inner = draw(
        st.one_of(
            st.just(client.make_csr(key, name, challenge).public_bytes(Encoding.DER)),
            st.binary(max_size=200),
        )
    )
    message_type = draw(st.sampled_from(MESSAGE_TYPES))
    transaction_id = draw(st.text(alphabet=PRINTABLE, min_size=1, max_size=300))
    der = client.pki_message(requester, message_type, inner, transaction_id)  # type: ignore[arg-type]
    return draw(flipped(der)) if draw(st.booleans()) else der


@st.composite
def scep_requests(draw: st.DrawFn, site: Live) -> tuple[str, dict[str, Any]]:
    """(method, httpx keyword arguments) for one request to /scep."""
    operation = draw(
        st.sampled_from(["GetCACaps", "GetCACert", "PKIOperation", "PKIOperation", ""])
        | st.text(max_size=80)
    )
    method = draw(st.sampled_from(["GET", "POST"]))
    der = draw(pki_messages(site) | st.binary(max_size=300))
    if method == "POST":
        return method, {"params": {"operation": operation}, "content": der}
    message = base64.b64encode(der).decode()
    message = draw(st.sampled_from([message, message.replace("+", " "), message[:-3]]) | st.text())
    return method, {"params": {"operation": operation, "message": message}}
