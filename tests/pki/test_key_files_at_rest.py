"""The key files in pki/ at rest: encrypted PKCS#8 under a passphrase derived from the
master key per file, opened with each held key (current first); plaintext files from before
the master key still open and are encrypted by a start (seal_plaintext) or `keys rotate`;
after a rotation everything still loads and the old key opens nothing."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from orchardist.keys.master import MasterKeys
from orchardist.keys.sources import KeySource
from orchardist.pki.ca import CertificateAuthority, generate_ca
from orchardist.pki.store import KeyMaterialError, PkiFiles
from orchardist.push.pusher import PushSettings, SenderSource
from orchardist.push.stand_in import stand_in_identity
from tests.keys import rsa_key
from tests.server import orchardist

PLAINTEXT = (b"BEGIN PRIVATE KEY", b"BEGIN RSA PRIVATE KEY")


def _plaintext_keys(data_dir: Path) -> list[Path]:
    return [
        path
        for path in data_dir.rglob("*")
        if path.is_file() and any(marker in path.read_bytes() for marker in PLAINTEXT)
    ]


def _ca() -> CertificateAuthority:
    cert, key = generate_ca("Test CA", "Test", key_size=2048, validity_days=30)
    return CertificateAuthority(cert, key)


def test_a_key_file_is_encrypted_and_opens_only_with_a_held_key(tmp_path: Path) -> None:
    keys, other = MasterKeys.generate(), MasterKeys.generate()
    files = PkiFiles.in_data_dir(tmp_path, keys)
    ca = _ca()
    files.save_ca(ca)
    pem = files.ca_key.read_bytes()
    assert b"BEGIN ENCRYPTED PRIVATE KEY" in pem
    assert oct(files.ca_key.stat().st_mode & 0o777) == "0o600"
    assert files.load_ca().key.public_key() == ca.key.public_key()
    with pytest.raises(KeyMaterialError, match="not held"):
        PkiFiles(files.directory, other).load_ca()
    with pytest.raises(KeyMaterialError, match="not held"):
        PkiFiles(files.directory).load_ca()  # no master key at all
    # Held as the older of two keys (mid-rotation): it still opens.
    assert PkiFiles(files.directory, MasterKeys((*other.keys, *keys.keys))).load_ca()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl")
def test_openssl_reads_a_key_file_given_its_passphrase(tmp_path: Path) -> None:
    files = PkiFiles.in_data_dir(tmp_path, MasterKeys.generate())
    files.save_ca(_ca())
    password = files.password_of(files.ca_key)
    assert password is not None
    done = subprocess.run(
        ["openssl", "pkey", "-in", str(files.ca_key), "-passin", "stdin", "-noout"],
        input=password + b"\n",
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_plaintext_files_load_and_are_encrypted_then_rotated(tmp_path: Path) -> None:
    legacy = PkiFiles.in_data_dir(tmp_path)  # written as before the master key
    ca = _ca()
    legacy.save_ca(ca)
    legacy.save_push_request_key(rsa_key(1))
    old = MasterKeys.generate()
    files = PkiFiles(legacy.directory, old)
    assert files.load_ca().key.public_key() == ca.key.public_key()
    assert sorted(p.name for p in files.seal_plaintext()) == ["ca.key", "push-request.key"]
    assert _plaintext_keys(tmp_path) == []
    assert files.seal_plaintext() == []  # nothing left: a start rewrites nothing
    new = MasterKeys((MasterKeys.generate().keys[0], *old.keys))
    assert len(PkiFiles(files.directory, new).reseal()) == 2
    after = PkiFiles(files.directory, MasterKeys(new.keys[:1]))
    assert after.load_ca().key.public_key() == ca.key.public_key()
    assert after.load_push_request_key() is not None
    with pytest.raises(KeyMaterialError):
        files.load_ca()  # the old key opens nothing any more


@pytest.mark.anyio
async def test_the_pusher_loads_an_encrypted_push_key(tmp_path: Path) -> None:
    files = PkiFiles.in_data_dir(tmp_path, MasterKeys.generate())
    made = stand_in_identity(datetime.now(UTC), ca_key=rsa_key(120), key=rsa_key(121))
    files.save_push(made.certificate, made.key)
    assert b"BEGIN ENCRYPTED PRIVATE KEY" in files.push_key.read_bytes()
    source = SenderSource(files, PushSettings(apns_url="https://127.0.0.1:1", ca_file=None))
    try:
        sender = await source.current()  # ssl's load_cert_chain with the passphrase
        assert sender is not None
        assert sender.topic == made.topic
    finally:
        await source.close()


def test_no_plaintext_key_in_the_data_dir_and_rotate_keeps_it_loading(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    orchardist(data_dir, "init", "--hostname", "localhost")
    orchardist(data_dir, "ca", "create-ra")
    orchardist(data_dir, "pushcert", "test-cert", "--dir", str(tmp_path))
    assert _plaintext_keys(data_dir) == []
    before = {p.name: p.read_bytes() for p in (data_dir / "pki").glob("*.key")}
    assert sorted(before) == ["ca.key", "push.key", "ra.key", "server.key"]
    old = KeySource(data_dir / "master.key").load()
    orchardist(data_dir, "keys", "rotate")
    new = KeySource(data_dir / "master.key").load()
    assert new.ids != old.ids
    assert len(new.keys) == 1
    assert _plaintext_keys(data_dir) == []
    files = PkiFiles.in_data_dir(data_dir, new)
    files.load_ca(), files.load_server(), files.load_ra()
    assert "com.apple.mgmt" in orchardist(data_dir, "pushcert", "show")
    for name in before:
        with pytest.raises(KeyMaterialError):
            PkiFiles.in_data_dir(data_dir, old).read_key(files.directory / name)


def test_a_key_file_replaced_since_it_was_read_is_read_again(tmp_path: Path) -> None:
    """A PkiFiles opens each key file once while it is unchanged (a start reads ca.key in
    seal_plaintext and load_ca); one replaced since, by another writer, is opened anew."""
    keys = MasterKeys.generate()
    files = PkiFiles.in_data_dir(tmp_path, keys)
    files.save_ca(_ca())
    assert files.seal_plaintext() == []
    first = files.load_ca()
    assert files.load_ca().key is first.key  # unchanged: not opened again
    other_writer = PkiFiles(files.directory, keys)
    replacement = _ca()
    other_writer.save_ca(replacement)
    assert files.load_ca().key.public_key() == replacement.key.public_key()
    # Replaced by a file this master key does not open: refused, not the key read before.
    PkiFiles(files.directory, MasterKeys.generate()).save_ca(_ca())
    with pytest.raises(KeyMaterialError, match="not held"):
        files.load_ca()
