"""Reading CSRs as clients send them: signature over the bytes as sent, attributes in any
order."""

from __future__ import annotations

import pytest
from cryptography import x509

from orchardist.pki.csr import CsrError, read_csr
from tests.keys import rsa_key
from tests.pki.go_csr import go_style_csr


def test_cryptography_alone_refuses_the_go_layout() -> None:
    # The premise of the vector: without Orchardist's fallback this CSR is unreadable.
    with pytest.raises(ValueError, match="InvalidSetOrdering"):
        x509.load_der_x509_csr(go_style_csr(rsa_key(40), "go-device", "short-static", "a.test"))


def test_attributes_out_of_der_order_are_read() -> None:
    key = rsa_key(40)
    checked = read_csr(go_style_csr(key, "go-device", "short-static", "go.example.test"))
    assert checked.subject.rfc4514_string() == "CN=go-device"
    assert checked.public_key == key.public_key()
    assert checked.challenge == "short-static"
    assert checked.san is not None
    assert checked.san.get_values_for_type(x509.DNSName) == ["go.example.test"]


@pytest.mark.parametrize("where", ["signature", "challenge"])
def test_the_signature_covers_the_bytes_as_sent(where: str) -> None:
    der = bytearray(go_style_csr(rsa_key(40), "go-device", "short-static", "a.test"))
    index = len(der) - 3 if where == "signature" else der.index(b"short-static")
    der[index] ^= 0x01
    with pytest.raises(CsrError, match="signature"):
        read_csr(bytes(der))


def test_garbage_is_a_csr_error() -> None:
    with pytest.raises(CsrError):
        read_csr(b"\x30\x03\x02\x01\x00")
