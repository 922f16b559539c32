"""A push key kept encrypted at rest (PKCS#8 under a passphrase derived from the master key)
still pushes: the server's pusher opens it, and the local APNs peer, which asks for the push
certificate during the TLS handshake and takes the topic from it, accepts its pushes; and
after `orchardist keys rotate` (the key file encrypted anew, under the new master key) the
next server's pushes go through as well."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from orchardist.keys.sources import KeySource
from orchardist.pki.store import PkiFiles
from tests.cli.test_pushcert_stand_in import _enroll
from tests.push.identity import PushIdentity, apns_peer, push_identity
from tests.server import orchardist, running_server

UDID = "UDID-SEALED-PUSH"


def _sealed_push_key(data_dir: Path, identity: PushIdentity) -> bytes:
    """The push key file as it is on disk, after checking that it is encrypted: no
    plaintext PEM, unreadable without a passphrase, the imported key with it."""
    pem = (data_dir / "pki" / "push.key").read_bytes()
    assert b"BEGIN ENCRYPTED PRIVATE KEY" in pem
    assert b"BEGIN PRIVATE KEY" not in pem
    with pytest.raises(TypeError, match="encrypted"):
        serialization.load_pem_private_key(pem, password=None)
    files = PkiFiles.in_data_dir(data_dir, KeySource(data_dir / "master.key").load())
    opened = serialization.load_pem_private_key(pem, password=files.password_of(files.push_key))
    imported = serialization.load_pem_private_key(identity.key_file.read_bytes(), None)
    assert opened.public_key() == imported.public_key()
    return pem


def _push(data_dir: Path, udid: str) -> None:
    """A push by hand, through the running server's pusher."""
    pushed = json.loads(orchardist(data_dir, "device", "push", udid, "--json"))
    assert pushed == {"udid": udid, "accepted": True}


def test_an_encrypted_push_key_pushes_before_and_after_a_rotation(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    orchardist(data_dir, "init", "--hostname", "localhost")
    identity = push_identity(tmp_path / "apple")  # Apple's: a plaintext key to import
    orchardist(
        data_dir, "pushcert", "import", "--cert", str(identity.cert_file),
        "--key", str(identity.key_file), "--force",
    )  # fmt: skip
    before = _sealed_push_key(data_dir, identity)
    # A device in storage, as Authenticate and TokenUpdate leave it (a token APNs takes).
    _enroll(data_dir, UDID, identity.topic, token=b"\x02" * 32)
    client_ca = tmp_path / "apple-ca.pem"
    client_ca.write_bytes(identity.ca_pem)
    with apns_peer(client_ca, tmp_path) as peer:
        with running_server(data_dir, http=True, env=peer.env):
            _push(data_dir, UDID)
        # Rotated with the server stopped, as docs/keys.md says.
        orchardist(data_dir, "keys", "rotate")
        assert _sealed_push_key(data_dir, identity) != before  # encrypted anew
        with running_server(data_dir, http=True, env=peer.env):
            _push(data_dir, UDID)
    # Both pushes reached the peer over TLS with the push certificate; none was refused.
    assert (peer.tally["accepted"], peer.tally["tokens"], peer.tally["refused"]) == (2, 1, {})
