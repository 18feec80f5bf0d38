"""The blob store: ciphertext files in one directory, named by the server, written atomically.

Threat model: the store holds only ciphertext, but a path built from a request could still
escape the directory or overwrite another item's blob. So the server issues every name
(128 random bits, hex), :meth:`BlobStore.path` is the single choke point that turns a name
into a path (format check, ``realpath``, ``commonpath`` containment, as SecureDrop's store
does), and a blob appears under its final name only after its bytes are fsynced: a temp file
in the same directory, ``fsync``, ``rename``, ``fsync`` of the directory. A crash at any point
leaves either the whole blob or no blob (plus, at worst, a stray temp file that
:meth:`BlobStore.sweep_temp` removes at start).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import secrets
import time
from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from .errors import BlobFormatMismatch, BlobMismatch, BlobPathError, BlobTooLarge, StorageError
from .hashing import Writeback, new_hasher, write_all

T = TypeVar("T")

_BLOB_ID = re.compile(r"^[0-9a-f]{32}$")


async def _in_thread_to_the_end(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in a thread. If the caller is cancelled meanwhile, it still waits for the
    thread (which may be closing a descriptor, or publishing a file the caller's cleanup must
    then see) before the cancellation goes on."""
    running = asyncio.ensure_future(asyncio.to_thread(fn, *args))
    try:
        return await asyncio.shield(running)
    except asyncio.CancelledError:
        await asyncio.wait([running])
        if not running.cancelled():
            running.exception()  # retrieved: the cancellation is what the caller gets
        raise


async def _fsync(fd: int) -> None:
    """``os.fsync`` in a thread, waited for even on cancellation: the caller closes ``fd`` next,
    and a descriptor number closed under a running fsync could already name another file."""
    await _in_thread_to_the_end(os.fsync, fd)


async def _write_hashing(chunks: AsyncIterable[bytes], fd: int, start: int,
                         consume: Callable[[bytes], object], *, check: Callable[[int], None],
                         prefix: bytes = b"") -> int:
    """Write ``chunks`` to ``fd`` from ``start`` as they arrive (on the event loop, like a bare
    handler), feeding each to ``consume`` (the hashes: BLAKE3 keeps up with the network inline)
    while a :class:`~storage.hashing.Writeback` starts their writeback. ``check(total)`` runs
    before each chunk is written and may raise; the bytes written must begin with ``prefix``
    (:class:`BlobFormatMismatch` otherwise). Returns the byte count once no writeback request
    is in flight, on every path, so the caller may fsync or close ``fd``."""
    writeback = Writeback(fd, start)
    end, head = start, b""
    try:
        async for chunk in chunks:
            check(end - start + len(chunk))
            if len(head) < len(prefix):
                head += chunk[: len(prefix) - len(head)]
                if not prefix.startswith(head):
                    raise BlobFormatMismatch("not the expected format")
            write_all(fd, [chunk], end)
            consume(chunk)
            end += len(chunk)
            writeback.wrote(end)
        if head != prefix:
            raise BlobFormatMismatch("shorter than the format's header")
    except BaseException:
        await writeback.drain(quiet=True)
        raise
    await writeback.drain()
    return end - start


@dataclass(frozen=True)
class StoredBlob:
    blob_id: str
    size: int
    hash: str  # hex BLAKE3-256 of the stored bytes


class BlobStore:
    def __init__(self, root: Path) -> None:
        if not root.is_absolute():
            raise StorageError("the blob directory must be an absolute path")
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.root = Path(os.path.realpath(root))
        self._objects = self.root / "objects"
        self._tmp = self.root / "tmp"
        self._uploads = self.root / "uploads"
        self._running: dict[str, tuple[int, Any]] = {}  # upload id -> (offset hashed to, BLAKE3 state)
        self._locks: dict[str, asyncio.Lock] = {}
        for directory in (self._objects, self._tmp, self._uploads):
            directory.mkdir(exist_ok=True, mode=0o700)

    # -- resumable uploads: appended in place, promoted to a blob once whole ------------------

    def upload_path(self, upload_id: str) -> Path:
        """The one place an upload id becomes a path (the relay issues these ids too)."""
        if not isinstance(upload_id, str) or not re.fullmatch(r"upl_[0-9a-f]{16}", upload_id):
            raise BlobPathError("not an upload name")
        return self._uploads / f"{upload_id}.part"

    async def append(self, upload_id: str, chunks: AsyncIterable[bytes], *, offset: int, limit: int,
                     checksum: tuple[str, bytes] | None = None) -> int:
        """Write ``chunks`` at ``offset`` (the acknowledged end), fsync, return the new end.

        Refuses to go past ``limit`` bytes in all. With ``checksum`` (algorithm, digest) the
        chunk must match it. On any failure the file is cut back to ``offset``, so an
        acknowledged offset always means those bytes are on disk, and nothing past it is.
        """
        path = self.upload_path(upload_id)
        hasher = hashlib.new(checksum[0]) if checksum else None
        # The content hash runs as the bytes stream in; a copy is kept so a refused chunk can be
        # taken back out of it. After a restart the state is gone and promote() hashes the file.
        running = self._running.get(upload_id)
        content = running[1].copy() if running and running[0] == offset else None
        if offset > 0 and not path.exists():
            raise BlobMismatch("the upload's bytes are gone")

        def too_far(total: int) -> None:
            if offset + total > limit:
                raise BlobTooLarge("past the announced length")

        def consume(data: bytes) -> None:
            if hasher:
                hasher.update(data)
            if content is not None:
                content.update(data)

        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            os.ftruncate(fd, offset)
            end = offset + await _write_hashing(chunks, fd, offset, consume, check=too_far)
            if hasher and not secrets.compare_digest(hasher.digest(), checksum[1]):  # type: ignore[index]
                raise BlobMismatch("checksum differs")
            await _fsync(fd)
        except BaseException:
            os.ftruncate(fd, offset)
            raise
        finally:
            os.close(fd)
        if content is not None:
            self._running[upload_id] = (end, content)
        else:
            self._running.pop(upload_id, None)
        return end

    def cut_upload(self, upload_id: str, offset: int) -> None:
        """Cut an upload back to its acknowledged ``offset`` (bytes written, then not acknowledged)."""
        self._running.pop(upload_id, None)
        with contextlib.suppress(FileNotFoundError):
            os.truncate(self.upload_path(upload_id), offset)

    async def promote(self, upload_id: str, *, expect_size: int, expect_hash: str, prefix: bytes = b"") -> StoredBlob:
        """Turn a whole upload into a blob if its size and BLAKE3-256 match and it begins with
        ``prefix`` (:class:`BlobFormatMismatch` if not); else keep nothing."""
        path = self.upload_path(upload_id)
        running = self._running.pop(upload_id, None)
        if running is not None and running[0] == path.stat().st_size:
            size, found = running[0], running[1].hexdigest()  # hashed while it streamed in
        else:  # the running hash was lost (a restart) or set aside: read the file once more

            def digest() -> tuple[int, str]:
                hasher = new_hasher()
                total = 0
                with open(path, "rb") as src:
                    while chunk := src.read(1 << 20):  # blake3 releases the GIL
                        hasher.update(chunk)
                        total += len(chunk)
                return total, hasher.hexdigest()

            size, found = await asyncio.to_thread(digest)
        if prefix:
            with open(path, "rb") as src:
                if src.read(len(prefix)) != prefix:
                    raise BlobFormatMismatch("not the expected format")
        if size != expect_size or not secrets.compare_digest(found, expect_hash):
            raise BlobMismatch("the upload differs from the manifest")
        blob_id = self.new_id()
        await asyncio.to_thread(self._publish, path, self.path(blob_id))
        return StoredBlob(blob_id, size, found)

    def discard_upload(self, upload_id: str) -> None:
        self._running.pop(upload_id, None)
        self._locks.pop(upload_id, None)
        self.upload_path(upload_id).unlink(missing_ok=True)

    def upload_busy(self, upload_id: str) -> bool:
        """A request holds the upload's lock (in this process): it is writing to the file."""
        lock = self._locks.get(upload_id)
        return lock is not None and lock.locked()

    def upload_lock(self, upload_id: str) -> asyncio.Lock:
        """One request at a time per upload (in this process): a PATCH checks the offset, writes
        and records the new offset under it, so two overlapping PATCHes cannot interleave."""
        return self._locks.setdefault(upload_id, asyncio.Lock())

    def sweep_uploads(self, known: set[str]) -> int:
        """Remove upload files no upload row names (a crash between promotion and forgetting)."""
        removed = 0
        for path in self._uploads.glob("upl_*.part"):
            if path.stem not in known:
                path.unlink(missing_ok=True)
                removed += 1
        return removed

    def start_upload(self, upload_id: str) -> None:
        """A new upload: its content hash starts empty, to be fed as the bytes arrive."""
        self._running[upload_id] = (0, new_hasher())

    @staticmethod
    def new_id() -> str:
        return secrets.token_hex(16)

    def path(self, blob_id: str) -> Path:
        """The one place a blob name becomes a path. Refuses anything the store did not issue."""
        if not isinstance(blob_id, str) or not _BLOB_ID.fullmatch(blob_id):
            raise BlobPathError("not a blob name")
        candidate = os.path.realpath(self._objects / blob_id[:2] / blob_id)
        if os.path.commonpath([candidate, str(self._objects)]) != str(self._objects):
            raise BlobPathError("blob path escapes the store")
        return Path(candidate)

    async def write_stream(
        self,
        chunks: AsyncIterable[bytes],
        *,
        max_size: int,
        expect_size: int | None = None,
        expect_hash: str | None = None,
        prefix: bytes = b"",
    ) -> StoredBlob:
        """Stream ``chunks`` into a new blob; hash while writing; keep it only if it matches
        (and begins with ``prefix``: :class:`BlobFormatMismatch` if not).

        Memory use is one chunk. On any failure (too large, mismatch, I/O error, cancellation)
        the temp file is removed and no blob exists.
        """
        blob_id = self.new_id()
        final = self.path(blob_id)
        tmp = self._tmp / f"{blob_id}.part"
        hasher = new_hasher()

        def too_large(total: int) -> None:
            if total > max_size:
                raise BlobTooLarge(f"more than {max_size} bytes")
            if expect_size is not None and total > expect_size:
                raise BlobMismatch("longer than announced")

        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            try:
                size = await _write_hashing(chunks, fd, 0, hasher.update, check=too_large, prefix=prefix)
                digest = hasher.hexdigest()
                if expect_size is not None and size != expect_size:
                    raise BlobMismatch("size differs from the manifest")
                if expect_hash is not None and not secrets.compare_digest(digest, expect_hash):
                    raise BlobMismatch("hash differs from the manifest")
            except BaseException:
                os.close(fd)
                raise
            # fsync, close and publish in one trip to a thread: each trip is a hand-over of the
            # GIL that the event loop then waits to get back (bench/writes.py).
            await _in_thread_to_the_end(self._sync_and_publish, fd, tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            final.unlink(missing_ok=True)  # published, but its caller was cancelled: nobody knows it
            raise
        return StoredBlob(blob_id, size, digest)

    def _sync_and_publish(self, fd: int, tmp: Path, final: Path) -> None:
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        self._publish(tmp, final)

    def _publish(self, tmp: Path, final: Path) -> None:
        new_shard = not final.parent.exists()
        final.parent.mkdir(exist_ok=True, mode=0o700)
        os.rename(tmp, final)
        os.utime(final)  # a fresh blob's age starts now, whatever the upload's: the orphan sweep reads it
        # The rename is durable once its directory is fsynced; a new shard directory's own entry
        # must be made durable in its parent too.
        for directory in (final.parent, self._objects) if new_shard else (final.parent,):
            dir_fd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    def delete(self, blob_id: str) -> bool:
        """Remove a blob; True if it existed. Idempotent, so retention can retry safely."""
        try:
            self.path(blob_id).unlink()
        except FileNotFoundError:
            return False
        return True

    def delete_durably(self, blob_ids: list[str]) -> int:
        """Remove blobs for good (retention): unlink each, then fsync every directory touched, so
        a power cut after the caller commits cannot bring a purged blob back. Idempotent: a
        blob already gone is fine. Returns how many existed."""
        removed, touched = 0, set()
        for blob_id in blob_ids:
            path = self.path(blob_id)
            try:
                path.unlink()
            except FileNotFoundError:
                continue
            removed += 1
            touched.add(path.parent)
        for directory in touched:
            dir_fd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        return removed

    def sweep_unreferenced(self, referenced: set[str], *, older_than: float) -> int:
        """Remove blobs no row points at (a crash between a blob's rename and its row's commit,
        or a rendition superseded before its deletion ran), once older than ``older_than``
        seconds so that an upload in flight in another process is never touched."""
        removed = 0
        cutoff = time.time() - older_than
        for path in self._objects.glob("??/*"):
            if _BLOB_ID.fullmatch(path.name) and path.name not in referenced and path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)
                removed += 1
        return removed

    def sweep_temp(self) -> int:
        """Remove temp files of uploads that never finished (a crash, a kill). Run at start."""
        removed = 0
        for leftover in self._tmp.glob("*.part"):
            leftover.unlink(missing_ok=True)
            removed += 1
        return removed
