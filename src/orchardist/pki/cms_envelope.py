"""CMS EnvelopedData (RFC 5652 §6) with RSA key transport: encrypt, decrypt.

cryptography's PKCS7EnvelopeBuilder encrypts with AES-128/256-CBC only, and its
pkcs7_decrypt_der decrypts AES only, without saying which cipher was used. SCEP clients
still send (and expect) DES3 and even single DES, so what those lack is written here with
asn1crypto for the structure and cryptography for RSA and the ciphers.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from asn1crypto import algos, core, parser
from asn1crypto import cms as asn1_cms
from cryptography import x509
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import padding as symmetric_padding
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import BlockCipherAlgorithm, Cipher, algorithms, modes
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7

from orchardist.pki.cms_common import (
    CmsError,
    ContentCipher,
    identifies,
    issuer_and_serial,
    load_content,
    malformed_as_cms_error,
)
from orchardist.pki.cms_quick import read_enveloped

# One message for every way decryption can fail once the RSA step is reached: a distinct
# "bad key" versus "bad padding" reply is exactly the oracle Bleichenbacher's attack needs,
# and the SCEP service sends str(err) back to the client.
_UNDECRYPTABLE = "cannot decrypt the envelope (wrong key or corrupted data)"


@dataclass(frozen=True)
class DecryptedEnvelope:
    content: bytes
    cipher: ContentCipher


@dataclass(frozen=True)
class _Cipher:
    name: ContentCipher
    oid: str
    key_size: int  # bytes
    block_size: int  # bytes
    make: Callable[[bytes], BlockCipherAlgorithm]


def _single_des(key: bytes) -> BlockCipherAlgorithm:
    # cryptography has no single DES. Three-key 3DES with K1 = K2 = K3 is DES (E_K D_K E_K
    # = E_K), so K|K|K gives DES-CBC exactly; it is spelled out because cryptography
    # deprecates 8-byte TripleDES keys. Old SCEP clients (fullsailor/pkcs7 and its Go
    # descendants, some printers) still default to DES-CBC, RFC 8894 §3.5.2 notwithstanding.
    return TripleDES(key * 3)


_CIPHERS = (
    _Cipher("aes128", "2.16.840.1.101.3.4.1.2", 16, 16, algorithms.AES),
    _Cipher("aes256", "2.16.840.1.101.3.4.1.42", 32, 16, algorithms.AES),
    _Cipher("des3", "1.2.840.113549.3.7", 24, 8, TripleDES),  # des-ede3-cbc
    _Cipher("des", "1.3.14.3.2.7", 8, 8, _single_des),  # desCBC
)
_BY_NAME = {c.name: c for c in _CIPHERS}
_BY_OID = {c.oid: c for c in _CIPHERS}
_BUILDER_ALGORITHMS: dict[str, type[algorithms.AES128] | type[algorithms.AES256]] = {
    "aes128": algorithms.AES128,
    "aes256": algorithms.AES256,
}


def encrypt(
    content: bytes, recipients: Sequence[x509.Certificate], *, cipher: ContentCipher = "aes256"
) -> bytes:
    """DER ContentInfo(EnvelopedData), RSA PKCS#1 v1.5 key transport, issuerAndSerialNumber
    recipient ids. Bad arguments (no recipient, a non-RSA one) raise ValueError."""
    if not recipients:
        raise ValueError("an envelope needs at least one recipient")
    keys = [r.public_key() for r in recipients]
    rsa_keys = [k for k in keys if isinstance(k, rsa.RSAPublicKey)]
    if len(rsa_keys) != len(keys):
        raise ValueError("every recipient certificate must have an RSA key")
    spec = _BY_NAME[cipher]
    builder_algorithm = _BUILDER_ALGORITHMS.get(cipher)
    if builder_algorithm is not None:
        # Binary: without it the builder rewrites LF as CRLF (S/MIME canonical text), which
        # would corrupt a DER CSR or certs-only SignedData.
        builder = pkcs7.PKCS7EnvelopeBuilder().set_data(content)
        for recipient in recipients:
            builder = builder.add_recipient(recipient)
        builder = builder.set_content_encryption_algorithm(builder_algorithm)
        return builder.encrypt(Encoding.DER, [pkcs7.PKCS7Options.Binary])
    key = _des_parity(os.urandom(spec.key_size))
    iv = os.urandom(spec.block_size)
    padder = symmetric_padding.PKCS7(spec.block_size * 8).padder()  # RFC 5652 §6.3
    padded = padder.update(content) + padder.finalize()
    encryptor = Cipher(spec.make(key), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(padded) + encryptor.finalize()
    recipient_infos = [
        asn1_cms.RecipientInfo(
            {
                "ktri": {
                    "version": "v0",  # §6.2.1: v0 with issuerAndSerialNumber
                    "rid": {"issuer_and_serial_number": issuer_and_serial(recipient)},
                    "key_encryption_algorithm": {
                        "algorithm": "rsaes_pkcs1v15",
                        "parameters": core.Null(),  # RFC 3370 §4.2.1: NULL parameters
                    },
                    "encrypted_key": public_key.encrypt(key, padding.PKCS1v15()),
                }
            }
        )
        for recipient, public_key in zip(recipients, rsa_keys, strict=True)
    ]
    enveloped = asn1_cms.EnvelopedData(
        {
            "version": "v0",  # §6.1: no originatorInfo, v0 ktris, no unprotectedAttrs
            "recipient_infos": recipient_infos,
            "encrypted_content_info": {
                "content_type": "data",
                "content_encryption_algorithm": algos.EncryptionAlgorithm(
                    {"algorithm": spec.oid, "parameters": core.OctetString(iv)}
                ),
                "encrypted_content": ciphertext,
            },
        }
    )
    info = asn1_cms.ContentInfo({"content_type": "enveloped_data", "content": enveloped})
    der: bytes = info.dump()
    return der


def _des_parity(key: bytes) -> bytes:
    # DES keys carry odd parity in each byte's low bit. OpenSSL ignores it, but some
    # decryptors check it, so the random key is made well-formed.
    return bytes((b & 0xFE) | (bin(b & 0xFE).count("1") + 1) % 2 for b in key)


def decrypt(der: bytes, cert: x509.Certificate, key: rsa.RSAPrivateKey) -> DecryptedEnvelope:
    """Decrypt an EnvelopedData addressed to `cert` (by issuerAndSerialNumber or SKI).

    Done by hand for every cipher, AES included: pkcs7_decrypt_der cannot do (3)DES, does
    not report the cipher, and only finds recipients by issuer and serial, and one code
    path keeps the Bleichenbacher handling in one place."""
    quick = _decrypt_quick(der, cert, key)
    if quick is not None:
        return quick
    enveloped = load_content(der, "enveloped_data")
    with malformed_as_cms_error("EnvelopedData"):
        recipient = _recipient(enveloped["recipient_infos"], cert)
        if recipient["key_encryption_algorithm"]["algorithm"].native != "rsaes_pkcs1v15":
            raise CmsError("unsupported key transport (only RSA PKCS#1 v1.5)")
        encrypted_key = bytes(recipient["encrypted_key"].native)
        content_info = enveloped["encrypted_content_info"]
        algorithm = content_info["content_encryption_algorithm"]
        spec = _BY_OID.get(algorithm["algorithm"].dotted)
        if spec is None:
            raise CmsError(f"unsupported content cipher {algorithm['algorithm'].native}")
        iv = algorithm["parameters"].native
        ciphertext = _encrypted_content(content_info)
    return _open(spec, iv, ciphertext, key, encrypted_key)


def _decrypt_quick(
    der: bytes, cert: x509.Certificate, key: rsa.RSAPrivateKey
) -> DecryptedEnvelope | None:
    """`decrypt` for the common shape read by `cms_quick` (no asn1crypto objects); None for
    any other shape, a recipient named another way, or an unknown cipher: the full path
    then decides, with its reasons. Failures of the decryption itself are final."""
    parts = read_enveloped(der)
    if parts is None or (spec := _BY_OID.get(parts.cipher)) is None:
        return None
    issuer, serial = cert.issuer.public_bytes(), cert.serial_number
    recipient = next(
        (r for r in parts.recipients if r.serial == serial and r.issuer == issuer), None
    )
    if recipient is None:
        return None
    return _open(spec, parts.iv, parts.ciphertext, key, recipient.encrypted_key)


def _open(
    spec: _Cipher,
    iv: object,
    ciphertext: bytes,
    key: rsa.RSAPrivateKey,
    encrypted_key: bytes,
) -> DecryptedEnvelope:
    block = spec.block_size
    if not isinstance(iv, bytes) or len(iv) != block:
        raise CmsError("the content cipher has no valid IV")
    if not ciphertext or len(ciphertext) % block:
        raise CmsError("the encrypted content is not a whole number of blocks")
    content_key = _unwrap_key(key, encrypted_key, spec.key_size)
    decryptor = Cipher(spec.make(content_key), modes.CBC(iv)).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    unpadder = symmetric_padding.PKCS7(block * 8).unpadder()
    try:
        content = unpadder.update(padded) + unpadder.finalize()
    except ValueError as exc:
        raise CmsError(_UNDECRYPTABLE) from exc
    return DecryptedEnvelope(content=content, cipher=spec.name)


def _recipient(recipient_infos: Any, cert: x509.Certificate) -> Any:
    key_transports = [r.chosen for r in recipient_infos if r.name == "ktri"]
    for recipient in key_transports:
        if identifies(recipient["rid"], cert):
            return recipient
    # No "try the only recipient anyway": an envelope for another certificate would then
    # decrypt to garbage one time in 256 (CBC padding happens to check out), and a SCEP
    # client would get badRequest instead of badMessageCheck at random. The identifier is
    # public, so refusing on it tells an attacker nothing about the key (RFC 3218).
    raise CmsError("no recipient in the EnvelopedData matches our certificate")


def _unwrap_key(key: rsa.RSAPrivateKey, encrypted_key: bytes, size: int) -> bytes:
    # RFC 3218 §2.3.2: on any RSA failure carry on with a random key, so that a bad
    # PKCS#1 block fails exactly like a bad content padding, in one error and similar
    # time. (Recent OpenSSL adds implicit rejection, returning a synthetic key itself.)
    try:
        content_key = key.decrypt(encrypted_key, padding.PKCS1v15())
    except ValueError:
        content_key = b""
    if len(content_key) != size:
        content_key = os.urandom(size)
    return content_key


def _encrypted_content(content_info: Any) -> bytes:
    """The ciphertext of an EncryptedContentInfo. BER allows `[0] IMPLICIT OCTET STRING` in
    constructed form (chunks of OCTET STRINGs), which Go's fullsailor/pkcs7 — behind
    micromdm's scepclient — emits and asn1crypto cannot read for an implicit tag; so the
    field is read from the raw encoding here."""
    _, _, _, _, contents, _ = parser.parse(content_info.dump())
    while contents:
        length = parser.peek(contents)
        class_, method, tag, _, value, _ = parser.parse(contents[:length])
        contents = contents[length:]
        if class_ == 2 and tag == 0:  # context-specific [0]: encryptedContent
            return _octets(method, value)
    raise CmsError("the EnvelopedData carries no encrypted content")


def _octets(method: int, value: bytes) -> bytes:
    if method == 0:  # primitive
        return value
    chunks = []
    while value:
        length = parser.peek(value)
        _, inner_method, _, _, inner, _ = parser.parse(value[:length])
        chunks.append(_octets(inner_method, inner))
        value = value[length:]
    return b"".join(chunks)
