"""A stand-in for Apple's push certificate (orchardist.push.stand_in) with the suite's
cached keys, written as PEM files: the CA the local APNs peer trusts, the certificate, its key."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization

from orchardist.push.stand_in import stand_in_identity
from tests.keys import rsa_key
from tests.server import free_port

TOPIC = "com.apple.mgmt.External.0b7c3c52-8d8c-4f0e-9a35-2b1a4f6c1d20"


@dataclass(frozen=True)
class PushIdentity:
    ca_pem: bytes  # what the peer trusts for client certificates
    cert_file: Path
    key_file: Path
    topic: str


def push_identity(directory: Path, *, topic: str = TOPIC, days: int = 365) -> PushIdentity:
    made = stand_in_identity(
        datetime.now(UTC), topic=topic, days=days, ca_key=rsa_key(120), key=rsa_key(121)
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_file, key_file = directory / "push.pem", directory / "push.key"
    cert_file.write_bytes(made.certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        made.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return PushIdentity(
        made.ca.public_bytes(serialization.Encoding.PEM), cert_file, key_file, topic
    )


@dataclass(frozen=True)
class SimulatedApns:
    """Where `orchardist simulate --apns-port` plays Apple's push service: `env` points a
    server at it, `simulate_args` tell the simulator where to listen, which CA's push
    certificates to accept and where to write its own CA (which the server then trusts)."""

    port: int
    client_ca: Path
    peer_ca: Path

    @property
    def env(self) -> dict[str, str]:
        return {"ORCHARDIST_APNS_URL": f"https://127.0.0.1:{self.port}",
                "ORCHARDIST_APNS_CA_FILE": str(self.peer_ca)}  # fmt: skip

    @property
    def simulate_args(self) -> list[str]:
        return ["--apns-port", str(self.port), "--apns-client-ca", str(self.client_ca),
                "--apns-ca-out", str(self.peer_ca)]  # fmt: skip


def simulated_apns(identity: PushIdentity, directory: Path) -> SimulatedApns:
    """A free port for the simulator's APNs peer, trusting `identity`'s CA."""
    client_ca = directory / "push-identity-ca.pem"
    client_ca.write_bytes(identity.ca_pem)
    return SimulatedApns(free_port(), client_ca, directory / "apns-peer-ca.pem")


@dataclass
class PeerRun:
    """A local APNs peer in its own process: `env` points a server at it; `tally` is its
    closing report (accepted, tokens, most_per_token, refused), once the block has ended;
    `pid` its process (benchmarks read its CPU)."""

    env: dict[str, str]
    pid: int
    tally: dict[str, Any] = field(default_factory=dict)


@contextmanager
def apns_peer(
    client_ca: Path, directory: Path, *, feed_port: int | None = None
) -> Iterator[PeerRun]:
    """`python -m orchardist.simulator.apns_peer` trusting `client_ca` for push
    certificates, until the block ends; with `feed_port`, feeding `simulate --apns-feed`."""
    peer_ca = directory / "apns-peer-ca.pem"
    feed = ["--feed-port", str(feed_port)] if feed_port is not None else []
    peer = subprocess.Popen(
        [sys.executable, "-m", "orchardist.simulator.apns_peer",
         "--client-ca", str(client_ca), "--ca-out", str(peer_ca), *feed],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert peer.stdout is not None
    url = peer.stdout.readline().strip()
    run = PeerRun({"ORCHARDIST_APNS_URL": url, "ORCHARDIST_APNS_CA_FILE": str(peer_ca)}, peer.pid)
    try:
        yield run
    finally:
        peer.terminate()
        out, _ = peer.communicate(timeout=30)
        run.tally.update(json.loads(out.strip().splitlines()[-1]))


def subscribed(port: int) -> bool:
    """Whether a connection to 127.0.0.1:`port` is established: a `simulate --apns-feed`
    process's to the peer's feed (pushes before it would reach no device)."""
    local = f"0100007F:{port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == local and fields[3] == "01":  # ESTABLISHED
            return True
    return False
