"""orchardist.apps.files: the local content-addressed store keeps whole files under their
SHA-256, and leaves nothing behind when an upload is cut off, too large, cancelled or meets
a full disk; the same bytes stored twice at once make one file."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from orchardist.apps import files
from orchardist.apps.files import (
    FileMissingError,
    FileStoreError,
    FileTooLargeError,
    LocalFileStore,
    StoredFile,
)

pytestmark = pytest.mark.anyio

CONTENT = os.urandom(3 * files.BLOCK + 12345)  # several blocks and a partial one
DIGEST = hashlib.sha256(CONTENT).hexdigest()


def pieces(data: bytes = CONTENT, size: int = 64 * 1024) -> Iterator[bytes]:
    for offset in range(0, len(data), size):
        yield data[offset : offset + size]


async def network(data: bytes = CONTENT, *, fail_at: int | None = None) -> AsyncIterator[bytes]:
    """Chunks as an ASGI request body arrives, yielding to the loop between them;
    `fail_at` raises as a client disconnect does after that many bytes."""
    sent = 0
    for piece in pieces(data):
        if fail_at is not None and sent >= fail_at:
            raise ConnectionResetError("the client went away")
        await asyncio.sleep(0)
        sent += len(piece)
        yield piece


def stored_files(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file())


async def test_put_stores_under_the_hash(tmp_path: Path) -> None:
    store = LocalFileStore(tmp_path / "files")
    stored = await store.put(network(), max_bytes=len(CONTENT))  # exactly at the limit
    assert stored == StoredFile(DIGEST, len(CONTENT))
    assert store.path(DIGEST) == tmp_path / "files" / DIGEST[:2] / DIGEST[2:4] / DIGEST
    assert stored_files(tmp_path) == [store.path(DIGEST)]
    assert store.exists(DIGEST)
    assert store.size(DIGEST) == len(CONTENT)
    with store.open(DIGEST) as handle:
        assert handle.read() == CONTENT


async def test_a_plain_iterator_is_stored_too(tmp_path: Path) -> None:
    store = LocalFileStore(tmp_path)
    assert await store.put(pieces(), 10**9) == StoredFile(DIGEST, len(CONTENT))
    assert store.put_sync([b"abc"], 3) == StoredFile(hashlib.sha256(b"abc").hexdigest(), 3)


async def test_an_empty_file_is_stored(tmp_path: Path) -> None:
    store = LocalFileStore(tmp_path)
    stored = await store.put(network(b""), 10)
    assert stored == StoredFile(hashlib.sha256(b"").hexdigest(), 0)
    assert store.size(stored.sha256) == 0


async def test_an_upload_cut_off_midway_leaves_nothing(tmp_path: Path) -> None:
    store = LocalFileStore(tmp_path)
    with pytest.raises(ConnectionResetError):
        await store.put(network(fail_at=2 * files.BLOCK + 1), 10**9)
    assert stored_files(tmp_path) == []


async def test_too_large_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    store = LocalFileStore(tmp_path)
    with pytest.raises(FileTooLargeError, match="larger than the limit of 1,048,576 bytes"):
        await store.put(network(), max_bytes=files.BLOCK)
    with pytest.raises(FileTooLargeError):
        store.put_sync(pieces(), max_bytes=len(CONTENT) - 1)
    assert stored_files(tmp_path) == []


async def test_a_cancelled_upload_leaves_nothing(tmp_path: Path) -> None:
    store = LocalFileStore(tmp_path)
    written = asyncio.Event()

    async def endless() -> AsyncIterator[bytes]:
        sent = 0
        while True:
            # A block is written before the next chunk is asked for: past two blocks sent,
            # the temporary file holds at least one.
            if sent > 2 * files.BLOCK:
                written.set()
            await asyncio.sleep(0)
            sent += 64 * 1024
            yield bytes(64 * 1024)

    task = asyncio.create_task(store.put(endless(), 10**12))
    await written.wait()
    assert any(part.stat().st_size >= files.BLOCK for part in stored_files(tmp_path))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert stored_files(tmp_path) == []


async def test_a_full_disk_is_said_in_words_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The disk fills after the first block: writes to files under the store then fail
    # with ENOSPC, as the kernel reports it; every other write in the process goes on.
    store = LocalFileStore(tmp_path / "files")
    real_write, written = os.write, [0]

    def filling(fd: int, data: bytes | memoryview) -> int:
        if os.readlink(f"/proc/self/fd/{fd}").startswith(str(store.root)):
            if written[0] >= files.BLOCK:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            written[0] += len(data)
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", filling)
    with pytest.raises(FileStoreError, match=r"the disk holding .*/files is full: No space left"):
        await store.put(network(), 10**9)
    monkeypatch.undo()
    assert stored_files(tmp_path) == []


async def test_the_same_file_uploaded_twice_at_once_is_one_file(tmp_path: Path) -> None:
    store = LocalFileStore(tmp_path)
    first, second = await asyncio.gather(store.put(network(), 10**9), store.put(network(), 10**9))
    assert first == second == StoredFile(DIGEST, len(CONTENT))
    assert stored_files(tmp_path) == [store.path(DIGEST)]
    assert store.path(DIGEST).read_bytes() == CONTENT


def test_the_same_file_from_two_threads_is_one_file(tmp_path: Path) -> None:
    store = LocalFileStore(tmp_path)
    results: list[StoredFile] = []
    threads = [
        threading.Thread(target=lambda: results.append(store.put_sync(pieces(), 10**9)))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [StoredFile(DIGEST, len(CONTENT))] * 4
    assert stored_files(tmp_path) == [store.path(DIGEST)]


async def test_ranges_are_served(tmp_path: Path) -> None:
    store = LocalFileStore(tmp_path)
    await store.put(network(), 10**9)

    async def read(start: int, end: int, chunk: int = files.READ_CHUNK) -> bytes:
        return b"".join([piece async for piece in store.iter_range(DIGEST, start, end, chunk)])

    assert await read(0, len(CONTENT)) == CONTENT
    assert await read(100, 200) == CONTENT[100:200]
    assert await read(5, 5) == b""
    assert await read(len(CONTENT) - 7, len(CONTENT), chunk=3) == CONTENT[-7:]
    pieces_seen = [len(p) async for p in store.iter_range(DIGEST, 0, 10, 4)]
    assert pieces_seen == [4, 4, 2]
    for start, end in [(-1, 5), (10, 5), (0, len(CONTENT) + 1)]:
        with pytest.raises(ValueError, match="outside the file"):
            await read(start, end)


async def test_missing_and_malformed_hashes(tmp_path: Path) -> None:
    store = LocalFileStore(tmp_path)
    absent = "0" * 64
    assert not store.exists(absent)
    assert not store.exists("../../etc/passwd")
    with pytest.raises(ValueError, match="not a SHA-256"):
        store.path("../../etc/passwd")
    with pytest.raises(FileMissingError):
        store.size(absent)
    with pytest.raises(FileMissingError):
        store.open(absent)
    with pytest.raises(FileMissingError):
        _ = [piece async for piece in store.iter_range(absent, 0, 1)]


async def test_delete(tmp_path: Path) -> None:
    store = LocalFileStore(tmp_path)
    stored = await store.put(network(b"bytes"), 10)
    assert await store.delete(stored.sha256)
    assert not store.exists(stored.sha256)
    assert not await store.delete(stored.sha256)


def test_leftovers_of_a_dead_process_are_swept(tmp_path: Path) -> None:
    store = LocalFileStore(tmp_path)
    store.incoming.mkdir(parents=True)
    old, fresh = store.incoming / "upload-old.part", store.incoming / "upload-new.part"
    old.write_bytes(b"x")
    fresh.write_bytes(b"y")
    day_ago = time.time() - 2 * 24 * 3600
    os.utime(old, (day_ago, day_ago))
    assert store.sweep_incoming() == 1
    assert stored_files(tmp_path) == [fresh]
