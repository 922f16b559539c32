"""The Prometheus metrics every layer counts into; `/metrics` (orchardist.web.metrics)
exposes them.

This module imports nothing of Orchardist's and no web framework, so the protocol cores
(push, scep) can count without depending on the web layer. Labels hold only bounded
values (route templates, outcomes), never a UDID or a raw path.

Several `serve --workers N` processes each count their own requests. With
PROMETHEUS_MULTIPROC_DIR set (`serve` sets it for N > 1) every process writes its values
to files there and a scrape of any process adds them all up; the variable must be set
before prometheus_client is first imported, so it is read from the environment, never set
by the process that counts.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import REGISTRY, Collector

MULTIPROC_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# A `_created` timestamp beside every counter doubles the output; Prometheus does not need it.
disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped upstream

HTTP_REQUESTS = Counter(
    "orchardist_http_requests",
    "HTTP requests answered, by method, route template and status",
    ["method", "route", "status"],
)
# Check-ins and command exchanges: what a fleet waits on. Buckets from 5 ms (an Idle with
# nothing queued) to 10 s (a large inventory report on a busy database).
MDM_REQUEST_SECONDS = Histogram(
    "orchardist_mdm_request_duration_seconds",
    "Time to answer a device on /mdm/checkin and /mdm/connect, body read included",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
PUSHES = Counter(
    "orchardist_apns_pushes",
    "Pushes sent to APNs, by final outcome after retries: accepted, invalid-token "
    "(410 or BadDeviceToken), retry-later (429, 5xx, transport), rejected (our configuration)",
    ["outcome"],
)
SCEP_ISSUANCES = Counter(
    "orchardist_scep_issuances",
    "SCEP enrollment and renewal requests by outcome: issued (a new certificate), pending "
    "(held for approval), refused (a CertRep FAILURE)",
    ["outcome"],
)

for _outcome in ("accepted", "invalid-token", "retry-later", "rejected"):
    PUSHES.labels(_outcome)  # present at zero, so rate() and alerts see the series at once
for _outcome in ("issued", "pending", "refused"):
    SCEP_ISSUANCES.labels(_outcome)


def multiprocess_dir() -> Path | None:
    value = os.environ.get(MULTIPROC_VARIABLE)
    return Path(value) if value else None


def registry_with(*extra: Collector) -> CollectorRegistry:
    """What one scrape reports: this process's metrics (or every worker's, in multiprocess
    mode) plus `extra` collectors computed for this scrape."""
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_dir() is not None:
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # untyped upstream
    else:
        registry.register(REGISTRY)  # a registry is a collector too
    for collector in extra:
        registry.register(collector)
    return registry


def prepare_multiprocess_dir(path: Path) -> None:
    """An empty folder for the workers' metric files: files of an earlier run would add
    its counts to this one's."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
