"""CA and TLS key material in the data dir, as PEM files.

Private keys are written unencrypted with mode 0600: the data dir is the server's secret
store (like /etc/ssl/private), and an encrypted key would need a passphrase at every start.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from orchardist.pki.ca import CertificateAuthority


class KeyMaterialError(RuntimeError):
    """The data dir's CA or TLS files are missing or unreadable; str(err) says what to do."""


@dataclass(frozen=True)
class PkiFiles:
    """Where the CA and the server's TLS certificate live in a data dir."""

    directory: Path

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> PkiFiles:
        return cls(data_dir / "pki")

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
        _write_key(self.ca_key, ca.key)
        self.ca_cert.write_bytes(ca.certificate.public_bytes(serialization.Encoding.PEM))

    def load_ca(self) -> CertificateAuthority:
        if not self.has_ca():
            raise KeyMaterialError(
                f"no CA in {self.directory}: run `orchardist init --hostname HOST` first"
            )
        return _load_pair(self.ca_cert, self.ca_key)

    def save_server(
        self, cert: x509.Certificate, key: rsa.RSAPrivateKey, chain: x509.Certificate
    ) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        _write_key(self.server_key, key)
        pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (cert, chain))
        self.server_cert.write_bytes(pem)

    def has_server(self) -> bool:
        return self.server_cert.exists() and self.server_key.exists()

    def load_server(self) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
        """The TLS certificate (the first in server.pem) and its key."""
        pair = _load_pair(self.server_cert, self.server_key)
        return pair.certificate, pair.key

    @property
    def push_cert(self) -> Path:
        return self.directory / "push.pem"

    @property
    def push_key(self) -> Path:
        return self.directory / "push.key"

    def save_push(self, cert: x509.Certificate, key: rsa.RSAPrivateKey) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        _write_key(self.push_key, key)
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
        _write_key(self.push_request_key, key)

    def load_push_request_key(self) -> rsa.RSAPrivateKey | None:
        """The pending request's key, or None when no CSR is waiting (or the file is not
        an RSA key: a new CSR then makes a new one)."""
        try:
            key = serialization.load_pem_private_key(
                self.push_request_key.read_bytes(), password=None
            )
        except (OSError, ValueError, TypeError):
            return None
        return key if isinstance(key, rsa.RSAPrivateKey) else None

    @property
    def ra_cert(self) -> Path:
        return self.directory / "ra.pem"

    @property
    def ra_key(self) -> Path:
        return self.directory / "ra.key"

    def save_ra(self, ra: CertificateAuthority) -> None:
        _write_key(self.ra_key, ra.key)
        self.ra_cert.write_bytes(ra.certificate.public_bytes(serialization.Encoding.PEM))

    def load_ra(self) -> CertificateAuthority | None:
        """The SCEP registration authority, or None when none is configured."""
        if not (self.ra_cert.exists() and self.ra_key.exists()):
            return None
        return _load_pair(self.ra_cert, self.ra_key)


def _load_pair(cert_path: Path, key_path: Path) -> CertificateAuthority:
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise KeyMaterialError(f"cannot read {cert_path} and {key_path.name}: {exc}") from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise KeyMaterialError(f"{key_path} is not an RSA key")
    if cert.public_key() != key.public_key():
        raise KeyMaterialError(f"{key_path} is not the key of {cert_path}")
    return CertificateAuthority(cert, key)


def _write_key(path: Path, key: rsa.RSAPrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # Create with 0600 from the start so the key is never readable by others, even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
