"""CA, TLS, SCEP RA and push key material in the data dir, as PEM files.

Private keys (ca.key, server.key, ra.key, push.key, push-request.key) are encrypted PKCS#8
PEM ("BEGIN ENCRYPTED PRIVATE KEY", PBES2 with AES-256-CBC) under a passphrase derived from
the master key per file (orchardist.keys.master.file_passphrase), with mode 0600: a copy of
the data dir without the master key holds no usable key, and `openssl pkey -passin` still
reads a file given its passphrase (`orchardist keys passphrase FILE`). Why not the master
key's AES-GCM sealing: these files are also read by OpenSSL itself (the TLS key through
uvicorn's ssl_keyfile_password, the push key through ssl's load_cert_chain), which takes
encrypted PEM and a password, not our own format.

A key file is opened with each held master key in turn (current first). A plaintext file,
from before the master key or written without one (tests), still loads; `seal_plaintext`
(every server start) encrypts it, `reseal` (`orchardist keys rotate`) moves every file to
the current key. Each write is a new file, fsynced, renamed over the old one: a crash
leaves the old file or the new one.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from orchardist.keys.master import MasterKeys
from orchardist.pki.ca import CertificateAuthority

_ENCRYPTED_MARKERS = (b"BEGIN ENCRYPTED PRIVATE KEY", b"Proc-Type: 4,ENCRYPTED")


class KeyMaterialError(RuntimeError):
    """The data dir's CA or TLS files are missing or unreadable; str(err) says what to do."""


@dataclass(frozen=True)
class PkiFiles:
    """Where the CA and the server's TLS certificate live in a data dir. Without `keys`
    (tests, tools run without the master key) keys are written in the clear and only
    plaintext key files open; a server's next start encrypts them."""

    directory: Path
    keys: MasterKeys | None = None
    # What each key file opened to, with the bytes it was read from: opening one checks
    # the RSA key (tens of ms), and a server start reads ca.key and server.key in
    # seal_plaintext, then in load_ca and load_server (and `serve` in its preflight
    # too). The file is still read each time: a key rewritten since (here, by
    # `keys rotate`, or by another process) is opened afresh.
    _opened: dict[Path, tuple[bytes, tuple[PrivateKeyTypes, bytes | None]]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @classmethod
    def in_data_dir(cls, data_dir: Path, keys: MasterKeys | None = None) -> PkiFiles:
        return cls(data_dir / "pki", keys)

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca.key"

    @property
    def server_cert(self) -> Path:
        """The server certificate followed by the CA certificate (the chain TLS clients need)."""
        return self.directory / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.directory / "server.key"

    def has_ca(self) -> bool:
        return self.ca_cert.exists() and self.ca_key.exists()

    def save_ca(self, ca: CertificateAuthority) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._write_key(self.ca_key, ca.key)
        self.ca_cert.write_bytes(ca.certificate.public_bytes(serialization.Encoding.PEM))

    def load_ca(self) -> CertificateAuthority:
        if not self.has_ca():
            raise KeyMaterialError(
                f"no CA in {self.directory}: run `orchardist init --hostname HOST` first"
            )
        return self._load_pair(self.ca_cert, self.ca_key)

    def save_server(
        self, cert: x509.Certificate, key: rsa.RSAPrivateKey, chain: x509.Certificate
    ) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._write_key(self.server_key, key)
        pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (cert, chain))
        self.server_cert.write_bytes(pem)

    def has_server(self) -> bool:
        return self.server_cert.exists() and self.server_key.exists()

    def load_server(self) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
        """The TLS certificate (the first in server.pem) and its key."""
        pair = self._load_pair(self.server_cert, self.server_key)
        return pair.certificate, pair.key

    @property
    def push_cert(self) -> Path:
        return self.directory / "push.pem"

    @property
    def push_key(self) -> Path:
        return self.directory / "push.key"

    def save_push(self, cert: x509.Certificate, key: rsa.RSAPrivateKey) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._write_key(self.push_key, key)
        self.push_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    def has_push(self) -> bool:
        return self.push_cert.exists() and self.push_key.exists()

    @property
    def push_request_key(self) -> Path:
        """The key of a push CSR made on the console, until Apple's certificate for it is
        imported (then it becomes push.key)."""
        return self.directory / "push-request.key"

    def save_push_request_key(self, key: rsa.RSAPrivateKey) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._write_key(self.push_request_key, key)

    def load_push_request_key(self) -> rsa.RSAPrivateKey | None:
        """The pending request's key, or None when no CSR is waiting (or the file is not
        an RSA key: a new CSR then makes a new one)."""
        try:
            key = self.read_key(self.push_request_key)
        except KeyMaterialError:
            return None
        return key if isinstance(key, rsa.RSAPrivateKey) else None

    @property
    def ra_cert(self) -> Path:
        return self.directory / "ra.pem"

    @property
    def ra_key(self) -> Path:
        return self.directory / "ra.key"

    def save_ra(self, ra: CertificateAuthority) -> None:
        self._write_key(self.ra_key, ra.key)
        self.ra_cert.write_bytes(ra.certificate.public_bytes(serialization.Encoding.PEM))

    def load_ra(self) -> CertificateAuthority | None:
        """The SCEP registration authority, or None when none is configured."""
        if not (self.ra_cert.exists() and self.ra_key.exists()):
            return None
        return self._load_pair(self.ra_cert, self.ra_key)

    def key_files(self) -> list[Path]:
        """The private key files there are."""
        paths = (self.ca_key, self.server_key, self.ra_key, self.push_key, self.push_request_key)
        return [path for path in paths if path.exists()]

    def read_key(self, path: Path) -> PrivateKeyTypes:
        """The private key in `path`, opened with the held master keys (or plaintext)."""
        return self._open(path)[0]

    def password_of(self, path: Path) -> bytes | None:
        """The passphrase that opens `path` (for OpenSSL's own readers: uvicorn's
        ssl_keyfile_password, ssl's load_cert_chain); None for a plaintext file."""
        return self._open(path)[1]

    def seal_plaintext(self) -> list[Path]:
        """Encrypt the plaintext key files under the current master key; which were."""
        return [path for path in self.key_files() if self._rewrite(path, rotate=False)]

    def reseal(self) -> list[Path]:
        """Re-encrypt every key file not under the current master key (`keys rotate`)."""
        return [path for path in self.key_files() if self._rewrite(path, rotate=True)]

    def _rewrite(self, path: Path, *, rotate: bool) -> bool:
        if self.keys is None:
            return False
        key, password = self._open(path)
        if password == self.keys.passphrases(path.name)[0] or (password and not rotate):
            return False
        self._write_key(path, key)
        return True

    def _open(self, path: Path) -> tuple[PrivateKeyTypes, bytes | None]:
        try:
            pem = path.read_bytes()
        except OSError as exc:
            raise KeyMaterialError(f"cannot read {path}: {exc}") from exc
        known = self._opened.get(path)
        if known is not None and known[0] == pem:
            return known[1]
        opened = self._decrypt(path, pem)
        self._opened[path] = (pem, opened)
        return opened

    def _decrypt(self, path: Path, pem: bytes) -> tuple[PrivateKeyTypes, bytes | None]:
        if not any(marker in pem for marker in _ENCRYPTED_MARKERS):
            try:
                return serialization.load_pem_private_key(pem, password=None), None
            except (ValueError, TypeError) as exc:
                raise KeyMaterialError(f"cannot read {path}: {exc}") from exc
        held = self.keys.passphrases(path.name) if self.keys is not None else ()
        for password in held:
            try:
                return serialization.load_pem_private_key(pem, password=password), password
            except (ValueError, TypeError):
                continue  # encrypted under another master key: try the next
        ids = ", ".join(self.keys.ids) if self.keys is not None else "none"
        raise KeyMaterialError(
            f"{path} does not open: it is encrypted under a master key that is not held "
            f"(held: {ids}), or it is another key file moved here; restore the master key "
            "that encrypted it, or the file (see docs/keys.md)"
        )

    def _load_pair(self, cert_path: Path, key_path: Path) -> CertificateAuthority:
        try:
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        except (OSError, ValueError) as exc:
            raise KeyMaterialError(f"cannot read {cert_path}: {exc}") from exc
        key = self.read_key(key_path)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise KeyMaterialError(f"{key_path} is not an RSA key")
        if cert.public_key() != key.public_key():
            raise KeyMaterialError(f"{key_path} is not the key of {cert_path}")
        return CertificateAuthority(cert, key)

    def _write_key(self, path: Path, key: PrivateKeyTypes) -> None:
        encryption: serialization.KeySerializationEncryption = serialization.NoEncryption()
        password: bytes | None = None
        if self.keys is not None:
            password = self.keys.passphrases(path.name)[0]
            encryption = serialization.BestAvailableEncryption(password)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )
        # A new file (mode 0600 from the start, so never readable by others even briefly),
        # fsynced, renamed over the old one; a unique name, as several workers may start
        # at once and each encrypt the same plaintext file.
        try:
            fd, partial = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial",
                                           dir=path.parent)  # fmt: skip
        except OSError as exc:
            raise KeyMaterialError(f"cannot write {path}: {exc}") from exc
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(pem)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(partial, path)
            _fsync_dir(path.parent)
        except OSError as exc:
            Path(partial).unlink(missing_ok=True)
            raise KeyMaterialError(f"cannot write {path}: {exc}") from exc
        self._opened[path] = (pem, (key, password))  # what reading it back would give


def _fsync_dir(directory: Path) -> None:
    """Make a rename in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
