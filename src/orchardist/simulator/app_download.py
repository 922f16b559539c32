"""What iOS does with InstallApplication's ManifestURL for an in-house app: fetch the
manifest over HTTPS (trusting what the device trusts: the enrollment profile's CA), read
its one item (software-package URL, bundle-identifier, bundle-version, title, and the
chunk hashes `sha256-size`/`sha256s` or `md5-size`/`md5s`), download the .ipa streamed
to a temporary file while hashing it, check the hashes, open the zip and check that
`Payload/*.app/Info.plist` names the manifest's bundle id and version.

Every read is bounded (manifest, .ipa, Info.plist, embedded profile) and every failure is
a CommandRefusedError with the ErrorChain a device would send: the manifest unreachable
or unreadable is DeviceManagement 2604 (with the NSURL cause below it), an http:// URL is
ASDErrorDomain 850, a wrong bundle id 2606, anything else about the download 2208.
Loopback and IP-address hosts are allowed (iOS refuses them with 850): the simulator runs
beside a test server, not on a phone.
"""

from __future__ import annotations

import asyncio
import hashlib
import plistlib
import socket
import ssl
import tempfile
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import urlsplit

import httpx

from orchardist.simulator.ipa_contents import DownloadedApp, read_app
from orchardist.simulator.refusals import (
    APP_STORE,
    DEVICE_MANAGEMENT,
    URL_LOADING,
    CommandRefusedError,
    Link,
    install_failed,
    refused,
)

IN_MEMORY_BYTES = 4 << 20  # a download larger than this goes to a temporary file
CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class DownloadLimits:
    manifest_bytes: int = 1 << 20
    ipa_bytes: int = 8 << 30
    info_plist_bytes: int = 1 << 20
    manifest_timeout: float = 30.0
    download_timeout: float = 60.0  # between two reads, not for the whole file


@dataclass(frozen=True)
class Manifest:
    ipa_url: str
    bundle_id: str
    version: str
    title: str
    hash_name: str | None  # "sha256" or "md5" when the manifest lists chunk hashes
    chunk_size: int | None  # None: one chunk, the whole file
    chunk_hashes: tuple[str, ...]  # lower-case hex


async def download_app(
    http: httpx.AsyncClient, manifest_url: object, limits: DownloadLimits
) -> DownloadedApp:
    """The checked app behind `manifest_url`, or CommandRefusedError."""
    url = str(manifest_url)
    if urlsplit(url).scheme.lower() != "https":
        raise refused(APP_STORE, 850, f"The manifest URL isn't external: {_shown(url)} is "
                                      "not https.")  # fmt: skip
    manifest = await _fetch_manifest(http, url, limits)
    with tempfile.SpooledTemporaryFile(max_size=IN_MEMORY_BYTES) as file:
        await _download(http, manifest, file, limits)
        ipa_name = _shown(manifest.ipa_url)
        app = await asyncio.to_thread(read_app, file, ipa_name, limits.info_plist_bytes)
    if app.identifier != manifest.bundle_id:
        raise refused(
            DEVICE_MANAGEMENT, 2606,
            f"Could not validate app identifier: the manifest names {manifest.bundle_id!r}, "
            f"the app's Info.plist {app.identifier!r}.",
        )  # fmt: skip
    if app.short_version != manifest.version:
        raise install_failed(
            f"the manifest's bundle-version is {manifest.version!r}, the app's Info.plist "
            f"CFBundleShortVersionString {app.short_version!r}"
        )
    return app


async def _fetch_manifest(http: httpx.AsyncClient, url: str, limits: DownloadLimits) -> Manifest:
    try:
        async with http.stream("GET", url, timeout=limits.manifest_timeout) as response:
            if response.status_code != 200:
                raise _bad_manifest(url, f"the server answered {response.status_code}")
            body = await _bounded(response, limits.manifest_bytes)
    except httpx.TransportError as exc:
        raise _bad_manifest(url, f"it could not be fetched ({exc or type(exc).__name__})",
                            _url_error(exc)) from exc  # fmt: skip
    if body is None:
        raise _bad_manifest(url, f"it is larger than {limits.manifest_bytes:,} bytes")
    try:
        plist = plistlib.loads(body)
    except Exception as exc:  # plistlib raises many types (InvalidFileException, ExpatError…)
        raise _bad_manifest(url, f"it is not a property list ({exc})") from exc
    try:
        return _read_manifest(plist)
    except ValueError as exc:
        raise _bad_manifest(url, str(exc)) from exc
    except KeyError as exc:
        raise _bad_manifest(url, f"it has no {exc.args[0]!r}") from exc
    except (TypeError, IndexError, AttributeError) as exc:
        raise _bad_manifest(url, "it is not shaped like a manifest (items[0].assets, "
                                 f"items[0].metadata): {exc}") from exc  # fmt: skip


async def _bounded(response: httpx.Response, limit: int) -> bytes | None:
    """The body, or None once it passes `limit` bytes (the rest is not read)."""
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def _read_manifest(plist: Any) -> Manifest:
    item = plist["items"][0]
    packages = [a for a in item["assets"] if a.get("kind") == "software-package"]
    if not packages:
        raise ValueError("it names no software-package")
    package, metadata = packages[0], item["metadata"]
    ipa_url = _text(package, "url")
    if urlsplit(ipa_url).scheme.lower() != "https":
        raise ValueError(f"its software-package URL {_shown(ipa_url)} is not https")
    hash_name = next((n for n in ("sha256", "md5") if f"{n}s" in package), None)
    chunk_size: int | None = None
    hashes: tuple[str, ...] = ()
    if hash_name is not None:
        size = package.get(f"{hash_name}-size")
        if size is not None and (not isinstance(size, int) or size <= 0):
            raise ValueError(f"{hash_name}-size is {size!r}, not a positive integer")
        chunk_size, hashes = size, tuple(_hex(h) for h in package[f"{hash_name}s"])
        if not hashes:
            raise ValueError(f"{hash_name}s is empty")
    return Manifest(
        ipa_url=ipa_url,
        bundle_id=_text(metadata, "bundle-identifier"),
        version=_text(metadata, "bundle-version"),
        title=str(metadata.get("title", "")),
        hash_name=hash_name,
        chunk_size=chunk_size,
        chunk_hashes=hashes,
    )


def _text(mapping: Any, key: str) -> str:
    value = mapping.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key} is missing")
    return value


def _hex(value: object) -> str:
    """A chunk hash as lower-case hex; the manifest may hold hex text or raw bytes."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, str):
        return value.strip().lower()
    raise ValueError(f"a hash is {type(value).__name__}, not hex text")


async def _download(
    http: httpx.AsyncClient, manifest: Manifest, file: IO[bytes], limits: DownloadLimits
) -> None:
    url, hasher = manifest.ipa_url, _ChunkHasher(manifest.hash_name, manifest.chunk_size)
    try:
        async with http.stream("GET", url, timeout=limits.download_timeout) as response:
            if response.status_code != 200:
                raise install_failed(
                    f"downloading {_shown(url)} was answered {response.status_code}"
                )
            declared = int(response.headers.get("content-length", "0") or 0)
            if declared > limits.ipa_bytes:
                raise _too_large(declared, limits)
            size = 0
            async for chunk in response.aiter_bytes(CHUNK_BYTES):
                size += len(chunk)
                if size > limits.ipa_bytes:
                    raise _too_large(size, limits)
                # Hashing and writing (maybe to disk) off the event loop other devices share.
                await asyncio.to_thread(_take, hasher, file, chunk)
    except httpx.TransportError as exc:
        raise install_failed(f"downloading {_shown(url)} failed ({exc or type(exc).__name__})",
                              _url_error(exc)) from exc  # fmt: skip
    if manifest.hash_name is not None and hasher.digests() != list(manifest.chunk_hashes):
        raise install_failed(
            f"the downloaded app does not match the manifest's {manifest.hash_name}s: "
            f"{size:,} bytes hashed to {', '.join(hasher.digests())}, the manifest says "
            f"{', '.join(manifest.chunk_hashes)}"
        )


def _take(hasher: _ChunkHasher, file: IO[bytes], chunk: bytes) -> None:
    hasher.update(chunk)
    file.write(chunk)


class _ChunkHasher:
    """Apple's manifest hashes: the file cut in chunks of `size` bytes (one chunk, the
    whole file, when no size is given), one hex digest per chunk."""

    def __init__(self, name: str | None, size: int | None) -> None:
        self.name, self.size = name, size
        self.done: list[str] = []
        self.current = self._new()
        self.filled = 0

    def _new(self) -> Any:
        return hashlib.new(self.name or "sha256", usedforsecurity=False)

    def update(self, data: bytes) -> None:
        if self.name is None:
            return
        view = memoryview(data)
        while view:
            room = len(view) if self.size is None else self.size - self.filled
            self.current.update(view[:room])
            self.filled += len(view[:room])
            view = view[room:]
            if self.size is not None and self.filled == self.size:
                self.done.append(self.current.hexdigest())
                self.current, self.filled = self._new(), 0

    def digests(self) -> list[str]:
        tail = [self.current.hexdigest()] if self.filled or not self.done else []
        return [*self.done, *tail]


def _bad_manifest(url: str, why: str, *below: Link) -> CommandRefusedError:
    text = f"Could not validate manifest {_shown(url)}: {why}."
    return refused(DEVICE_MANAGEMENT, 2604, text, *below)


def _shown(url: str) -> str:
    """`url` without its query, which holds the signed link's token: not for the record."""
    return url.split("?", 1)[0]


def _too_large(size: int, limits: DownloadLimits) -> CommandRefusedError:
    return install_failed(f"the app is {size:,} bytes, more than the {limits.ipa_bytes:,} "
                           "this device downloads")  # fmt: skip


def _url_error(exc: httpx.TransportError) -> Link:
    """The NSURLErrorDomain link iOS puts below a failed fetch."""
    causes: list[BaseException] = []
    cause = exc.__cause__ or exc.__context__
    while cause is not None and len(causes) < 8:
        causes.append(cause)
        cause = cause.__cause__ or cause.__context__
    if any(isinstance(c, ssl.SSLCertVerificationError) for c in causes):
        return URL_LOADING, -1202, "The certificate for this server is invalid."
    if isinstance(exc, httpx.TimeoutException):
        return URL_LOADING, -1001, "The request timed out."
    if any(isinstance(c, socket.gaierror) for c in causes):
        return URL_LOADING, -1003, "A server with the specified hostname could not be found."
    if isinstance(exc, httpx.ConnectError):
        return URL_LOADING, -1004, "Could not connect to the server."
    return URL_LOADING, -1005, "The network connection was lost."
