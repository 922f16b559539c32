"""Content-addressed file storage for .ipa files and icons: the `FileStore` seam and the
local-folder implementation (object storage can implement the same Protocol later).

A file's name is the SHA-256 of its bytes, so storing the same bytes twice (even at the
same moment) leaves one file and both callers get the same `StoredFile`.

`LocalFileStore(root)` keeps `root/ab/cd/<sha256>`. `put` streams the chunks into a temporary
file in `root/incoming/` (the same filesystem, so the final rename is atomic) while hashing,
refuses past `max_bytes`, fsyncs the file, renames it into place and fsyncs the folder.
Whatever stops it on the way (the client cut the upload off, the size limit, a full disk,
cancellation) removes the temporary file: a reader never sees a partial file under a hash.
A full disk is a `FileStoreError` saying so.

Sync or async: the web layer is async, so `put` and `iter_range` are coroutines that do
their disk work in worker threads (`asyncio.to_thread`), in blocks of `BLOCK` bytes (a
thread hop per MiB, not per network chunk). Each block is hashed and written at once in two
threads: hashlib and os.write both release the GIL, so a block costs the slower of the two
(about 250 MB/s here with fsync, against 125 MB/s one after the other; `make bench`
scenario `apps`), and the event loop stays free meanwhile. `put_sync` does the same work in
the calling thread, for the CLI and tests. `exists`, `size` and `path` are one stat each and
stay synchronous.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import re
import tempfile
import threading
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

BLOCK = 1024 * 1024  # bytes written (and hashed) per thread hop
READ_CHUNK = 256 * 1024  # default piece size of iter_range
_SHA256 = re.compile(r"[0-9a-f]{64}")
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


class FileStoreError(RuntimeError):
    """Storing or reading failed; str(err) says why and what to do."""


class FileTooLargeError(FileStoreError):
    def __init__(self, max_bytes: int):
        super().__init__(f"the file is larger than the limit of {max_bytes:,} bytes")
        self.max_bytes = max_bytes


class FileMissingError(FileStoreError):
    """No file with that SHA-256 is stored."""


@dataclass(frozen=True)
class StoredFile:
    sha256: str  # 64 lowercase hex digits
    size: int  # bytes


class FileStore(Protocol):
    async def put(
        self, chunks: AsyncIterable[bytes] | Iterable[bytes], max_bytes: int
    ) -> StoredFile:
        """Store the bytes; FileTooLargeError past max_bytes, FileStoreError on a disk
        problem, the iterator's own exception when it fails. Nothing is left on failure."""
        ...

    def exists(self, sha256: str) -> bool: ...

    def size(self, sha256: str) -> int:
        """The stored file's size; FileMissingError when absent."""
        ...

    def open(self, sha256: str) -> BinaryIO:
        """The stored file, opened for binary reading (seekable); FileMissingError."""
        ...

    def iter_range(
        self, sha256: str, start: int, end: int, chunk_size: int = READ_CHUNK
    ) -> AsyncIterator[bytes]:
        """Bytes [start, end) — `end` exclusive, as a Python slice: HTTP's inclusive
        "bytes=a-b" is iter_range(h, a, b + 1). ValueError unless 0 <= start <= end <=
        size; FileMissingError when absent."""
        ...

    async def delete(self, sha256: str) -> bool:
        """Remove the file; False when it was not there."""
        ...


def is_sha256(text: str) -> bool:
    return _SHA256.fullmatch(text) is not None


class LocalFileStore:
    """A `FileStore` in a local folder; see the module docstring."""

    def __init__(self, root: Path):
        self.root = root
        self.incoming = root / "incoming"

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> LocalFileStore:
        return cls(data_dir / "files")

    def path(self, sha256: str) -> Path:
        """Where the file with this hash lives (whether or not it exists yet)."""
        if not is_sha256(sha256):
            raise ValueError(f"not a SHA-256 in hex: {sha256[:80]!r}")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def exists(self, sha256: str) -> bool:
        return is_sha256(sha256) and self.path(sha256).is_file()

    def size(self, sha256: str) -> int:
        try:
            return self.path(sha256).stat().st_size
        except FileNotFoundError as exc:
            raise FileMissingError(f"no stored file {sha256}") from exc

    def open(self, sha256: str) -> BinaryIO:
        try:
            return self.path(sha256).open("rb")
        except FileNotFoundError as exc:
            raise FileMissingError(f"no stored file {sha256}") from exc

    async def put(
        self, chunks: AsyncIterable[bytes] | Iterable[bytes], max_bytes: int
    ) -> StoredFile:
        if not isinstance(chunks, AsyncIterable):
            # A plain iterator (a file being read) would block the loop on each next().
            return await asyncio.to_thread(self.put_sync, chunks, max_bytes)
        upload = await asyncio.to_thread(_Upload, self, max_bytes)
        try:
            pending: list[bytes] = []
            held = 0
            async for chunk in chunks:
                upload.check_room(held + len(chunk))
                pending.append(chunk)
                held += len(chunk)
                if held >= BLOCK:
                    await upload.add_in_threads(b"".join(pending))
                    pending, held = [], 0
            if pending:
                await upload.add_in_threads(b"".join(pending))
            return await asyncio.to_thread(upload.commit)
        except BaseException:
            upload.discard()  # synchronous, so it runs even when the task is cancelled
            raise

    def put_sync(self, chunks: Iterable[bytes], max_bytes: int) -> StoredFile:
        upload = _Upload(self, max_bytes)
        try:
            for chunk in chunks:
                upload.check_room(len(chunk))
                upload.hash(chunk)
                upload.write(chunk)
            return upload.commit()
        except BaseException:
            upload.discard()
            raise

    async def iter_range(
        self, sha256: str, start: int, end: int, chunk_size: int = READ_CHUNK
    ) -> AsyncIterator[bytes]:
        handle = await asyncio.to_thread(self.open, sha256)
        try:
            size = os.fstat(handle.fileno()).st_size
            if not 0 <= start <= end <= size:
                raise ValueError(f"range {start}-{end} is outside the file's {size} bytes")
            handle.seek(start)
            left = end - start
            while left > 0:
                piece = await asyncio.to_thread(handle.read, min(chunk_size, left))
                if not piece:  # the file shrank under us: it cannot, it is immutable
                    raise FileStoreError(f"stored file {sha256} is shorter than expected")
                left -= len(piece)
                yield piece
        finally:
            handle.close()

    async def delete(self, sha256: str) -> bool:
        try:
            await asyncio.to_thread(self.path(sha256).unlink)
        except FileNotFoundError:
            return False
        return True

    def sweep_incoming(self, older_than_seconds: float = 24 * 3600) -> int:
        """Remove temporary files left by a process that died mid-upload (a running
        upload's file is younger); the number removed."""
        removed, cutoff = 0, time.time() - older_than_seconds
        for leftover in self.incoming.glob("*.part") if self.incoming.is_dir() else ():
            try:
                if leftover.stat().st_mtime < cutoff:
                    leftover.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        return removed


class _Upload:
    """One upload's temporary file and hash. `write` and `discard` hold a lock, so a
    discard after a cancelled `asyncio.to_thread(write)` waits for that write to end
    instead of closing the descriptor under it (a write that starts after the discard
    does nothing). Blocks are hashed and written in order: each is awaited before the
    next."""

    def __init__(self, store: LocalFileStore, max_bytes: int):
        self.store, self.max_bytes = store, max_bytes
        self.hasher = hashlib.sha256()
        self.size = 0
        self._lock = threading.Lock()
        with _disk_errors(store.root):
            store.incoming.mkdir(parents=True, exist_ok=True)
            self.fd, name = tempfile.mkstemp(dir=store.incoming, prefix="upload-", suffix=".part")
        self.temporary: Path | None = Path(name)

    def check_room(self, more: int) -> None:
        if self.size + more > self.max_bytes:
            raise FileTooLargeError(self.max_bytes)

    async def add_in_threads(self, block: bytes) -> None:
        """Hash and write one block at once in two worker threads: both release the GIL,
        so a block costs the slower of the two rather than their sum."""
        self.check_room(len(block))
        await asyncio.gather(
            asyncio.to_thread(self.hash, block), asyncio.to_thread(self.write, block)
        )

    def hash(self, block: bytes) -> None:
        self.hasher.update(block)

    def write(self, block: bytes) -> None:
        with self._lock, _disk_errors(self.store.root):
            if self.fd < 0:  # discarded while this write waited for a thread: drop it
                return
            view = memoryview(block)
            while view:
                view = view[os.write(self.fd, view) :]
            self.size += len(block)

    def commit(self) -> StoredFile:
        with self._lock, _disk_errors(self.store.root):
            os.fsync(self.fd)
            os.close(self.fd)
            self.fd = -1
            stored = StoredFile(self.hasher.hexdigest(), self.size)
            target = self.store.path(stored.sha256)
            target.parent.mkdir(parents=True, exist_ok=True)
            assert self.temporary is not None
            # The same bytes may already be there (or land there now from a concurrent
            # upload): replacing a file with identical content is harmless and atomic.
            os.replace(self.temporary, target)
            self.temporary = None
            _fsync_folder(target.parent)
        return stored

    def discard(self) -> None:
        with self._lock:
            if self.fd >= 0:
                os.close(self.fd)
                self.fd = -1
            if self.temporary is not None:
                self.temporary.unlink(missing_ok=True)
                self.temporary = None


def _fsync_folder(folder: Path) -> None:
    """Make a rename into `folder` durable (POSIX: the entry lives in the directory)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def _disk_errors(root: Path) -> Iterator[None]:
    """OSError → FileStoreError naming the folder; a full disk said in those words."""
    try:
        yield
    except OSError as exc:
        if exc.errno in _DISK_FULL:
            raise FileStoreError(
                f"the disk holding {root} is full: {exc.strerror}; free space there "
                "or move the data dir, then upload again"
            ) from exc
        raise FileStoreError(f"cannot store the file in {root}: {exc.strerror}") from exc
