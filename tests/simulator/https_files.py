"""A real HTTPS file server on 127.0.0.1 for virtual devices to install apps from: its
certificate comes from a test CA (`ca`), which a device trusts when its enrollment plan
carries it, as an enrollment profile's certificate payload would. Serves `files` (path →
bytes, changeable while it runs) with GET; anything else is a 404."""

from __future__ import annotations

import functools
import ipaddress
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class AppServerCa:
    cert: x509.Certificate
    server_pem: bytes  # the server's certificate then its key, for load_cert_chain


@dataclass
class FileServer:
    base: str  # https://127.0.0.1:PORT
    files: dict[str, bytes] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)


@functools.cache
def app_server_ca() -> AppServerCa:
    """One CA and a server certificate for 127.0.0.1 and localhost, per run."""
    now = datetime.now(UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test App Server CA")])
    ca = (
        x509.CertificateBuilder(issuer_name=ca_name, subject_name=ca_name,
                                public_key=ca_key.public_key(),
                                serial_number=x509.random_serial_number(),
                                not_valid_before=now - timedelta(days=1),
                                not_valid_after=now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                       critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        x509.CertificateBuilder(issuer_name=ca_name,
                                subject_name=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                                                           "localhost")]),
                                public_key=key.public_key(),
                                serial_number=x509.random_serial_number(),
                                not_valid_before=now - timedelta(days=1),
                                not_valid_after=now + timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    pem = cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return AppServerCa(ca, pem)


@contextmanager
def serving_files(tmp_path: Path) -> Iterator[FileServer]:
    ca = app_server_ca()
    pem = tmp_path / "file-server.pem"
    pem.write_bytes(ca.server_pem)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pem)
    server_state = FileServer("")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            server_state.requests.append(path)
            body = server_state.files.get(path)
            self.send_response(404 if body is None else 200)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server_state.base = f"https://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield server_state
    finally:
        server.shutdown()
        server.server_close()
