"""Debian's nginx running the shipped deploy/nginx.conf, for tests: the same file with only
its ports, certificate paths and log folder replaced, included in a small main
configuration as Debian's /etc/nginx/nginx.conf includes conf.d/*.conf. Its own folder for
everything it writes, so no root and no /etc or /var is needed (as root, its workers run as
root: the test's folders are not readable by `nobody`)."""

from __future__ import annotations

import os
import pwd
import ssl
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from orchardist.pki.ca import CertificateAuthority, generate_ca

SHIPPED = Path(__file__).resolve().parents[2] / "deploy" / "nginx.conf"
NGINX = "/usr/sbin/nginx"  # Debian's package (make debs)


@dataclass(frozen=True)
class Ports:
    https: int
    http: int  # the redirect to HTTPS
    backends: tuple[int, int]  # the upstream's two `serve --http` processes


@dataclass(frozen=True)
class Tls:
    """nginx's certificate and key files, and the CA that issued them."""

    cert: Path
    key: Path
    ca: str  # PEM: what a client trusts to reach nginx

    def client(self, identity: tuple[Path, Path] | None = None) -> ssl.SSLContext:
        """A client's TLS context; with `identity` (certificate, key files) it presents that
        certificate when nginx asks for one."""
        context = ssl.create_default_context(cadata=self.ca)
        if identity is not None:
            context.load_cert_chain(*identity)
        return context


def make_tls(folder: Path) -> Tls:
    """A certificate for 127.0.0.1 from a CA made for the test (as a public CA's would be)."""
    folder.mkdir(parents=True, exist_ok=True)
    ca = CertificateAuthority(*generate_ca("nginx test CA", "Orchardist tests"))
    cert, key = ca.issue_server_certificate("localhost")
    cert_file, key_file = folder / "fullchain.pem", folder / "privkey.pem"
    chain = cert.public_bytes(Encoding.PEM) + ca.certificate.public_bytes(Encoding.PEM)
    cert_file.write_bytes(chain)
    key_file.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    return Tls(cert_file, key_file, ca.certificate.public_bytes(Encoding.PEM).decode())


def render(shipped: str, ports: Ports, tls: Tls, logs: Path) -> str:
    """The shipped file with this test's ports and paths. Each replaced text must be there:
    a changed deploy/nginx.conf fails here, not by serving something else."""
    replacements = {
        "server 127.0.0.1:8001 ": f"server 127.0.0.1:{ports.backends[0]} ",
        "server 127.0.0.1:8002 ": f"server 127.0.0.1:{ports.backends[1]} ",
        "listen 80;": f"listen 127.0.0.1:{ports.http};",
        "listen [::]:80;\n": "",  # one loopback address is enough here
        "listen 443 ssl http2;": f"listen 127.0.0.1:{ports.https} ssl http2;",
        "listen [::]:443 ssl http2;\n": "",
        "/etc/orchardist/tls/fullchain.pem": str(tls.cert),
        "/etc/orchardist/tls/privkey.pem": str(tls.key),
        "/var/log/nginx/": f"{logs}/",
    }
    for shipped_text, test_text in replacements.items():
        assert shipped_text in shipped, f"deploy/nginx.conf no longer has {shipped_text!r}"
        shipped = shipped.replace(shipped_text, test_text)
    return shipped


def _main_conf(folder: Path, site: Path) -> str:
    """What Debian's /etc/nginx/nginx.conf provides around conf.d, in this folder."""
    user = f"user {pwd.getpwuid(0).pw_name};\n" if os.geteuid() == 0 else ""
    temp = "".join(f"    {kind}_temp_path {folder / 'temp' / kind};\n"
                   for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))  # fmt: skip
    return (
        f"{user}worker_processes 1;\npid {folder / 'nginx.pid'};\n"
        f"error_log {folder / 'logs' / 'error.log'};\n"
        "events { worker_connections 256; }\n"
        f"http {{\n{temp}    access_log {folder / 'logs' / 'access.log'};\n"
        f"    include {site};\n}}\n"
    )


@contextmanager
def running_nginx(folder: Path, ports: Ports, tls: Tls) -> Iterator[str]:
    """nginx with the rendered deploy/nginx.conf until the block ends; yields its HTTPS
    base URL once it answers /readyz (so once a backend does too)."""
    logs = folder / "logs"
    for sub in (logs, folder / "temp"):
        sub.mkdir(parents=True, exist_ok=True)
    site = folder / "orchardist.conf"
    site.write_text(render(SHIPPED.read_text(), ports, tls, logs))
    main = folder / "nginx.conf"
    main.write_text(_main_conf(folder, site))
    command = [NGINX, "-p", str(folder), "-c", str(main), "-e", str(logs / "error.log")]
    checked = subprocess.run([*command, "-t"], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, f"nginx -t refused the configuration:\n{checked.stderr}"
    with (logs / "stderr.log").open("wb") as stderr:
        proc = subprocess.Popen([*command, "-g", "daemon off;"], stderr=stderr)
    base = f"https://127.0.0.1:{ports.https}"
    try:
        _wait_ready(base, proc, tls, logs)
        yield base
    finally:
        proc.terminate()  # SIGTERM: nginx's fast shutdown
        proc.wait(timeout=15)


def _wait_ready(base: str, proc: subprocess.Popen[bytes], tls: Tls, logs: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            said = (logs / "stderr.log").read_text() + (logs / "error.log").read_text()
            raise AssertionError(f"nginx exited early:\n{said}")
        try:
            if httpx.get(f"{base}/readyz", verify=tls.client(), timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("nginx did not answer /readyz")
