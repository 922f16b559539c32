"""Scenario `profiles`: build + encrypt + sign one profile per device for N devices (the
work InstallProfile delivery does per device), in one process; profiles/s.

The profile is a realistic one (Wi-Fi with EAP, a root certificate, restrictions); each
device's copy is built from the spec, its payloads encrypted to that device's identity
certificate (AES-256 CMS) and the whole signed with the server's certificate.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from tests.keys import rsa_key

from bench.scep import rsa_private_ops_per_second
from orchardist.pki.ca import CertificateAuthority, generate_ca
from orchardist.profiles import envelope
from orchardist.profiles.spec import build_profile
from orchardist.scep.client import make_csr


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    count = args.profile_devices
    ca = CertificateAuthority(*generate_ca("Bench CA", "Orchardist bench"))
    signer, signer_key = ca.issue_server_certificate("mdm.bench")
    key, now = rsa_key(190), datetime.now(UTC)
    # One key for every device: encryption costs the same public-key operation per device.
    devices = [
        ca.issue_client_certificate(make_csr(key, f"BENCH-{n}"), validity_days=30, now=now)
        for n in range(count)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        (base / "ca.pem").write_bytes(ca.certificate.public_bytes(serialization.Encoding.PEM))
        spec = _spec()
        started, cpu = time.perf_counter(), time.process_time()
        for device in devices:
            profile = build_profile(spec, base_dir=base, env={"PW": "bench-secret"})
            body = envelope.serialize(envelope.encrypt_for(profile, device))
            envelope.sign(body, signer, signer_key, [ca.certificate])
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    per_core = rsa_private_ops_per_second(1, seconds=1.0)
    rate = count / elapsed
    return [
        _row("profiles built + encrypted + signed /s", rate, "1/s", f"{count} devices, 1 process"),
        _row("CPU per profile", cpu / count * 1000, "ms"),
        _row(
            "ratio to one core's RSA signing limit",
            rate / per_core,
            "",
            "one RSA signature per profile bounds it",
        ),
    ]


def _spec() -> dict[str, Any]:
    return {
        "identifier": "com.example.bench",
        "name": "Bench",
        "payloads": [
            {"type": "wifi", "SSID_STR": "Corp", "EncryptionType": "WPA2",
             "EAPClientConfiguration": {"AcceptEAPTypes": [25], "UserName": "alice",
                                        "UserPassword": {"env": "PW"}}},
            {"type": "root-certificate", "PayloadContent": {"file": "ca.pem"}},
            {"type": "restrictions", "allowCamera": False},
        ],
    }  # fmt: skip


def _row(metric: str, value: float, unit: str, note: str = "") -> dict[str, Any]:
    return {"scenario": "profiles", "metric": metric, "value": value, "unit": unit, "note": note}
