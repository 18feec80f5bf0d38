"""Moving sealed content: sealing a file (encrypt, write and hash on two cores), uploading it
(one multipart request, or tus in resumable chunks), and streaming ciphertext back through the
decryptor with its signed size and hash checked."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import os
import tempfile
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO

import aiohttp

from relay import envelope
from relay.client.sdk.base import CHUNK, BaseClient, ProblemError, Progress, VerificationError
from storage.hashing import HashBehind, write_all


@dataclass(frozen=True)
class Sealed:
    path: Path
    size: int
    hash: str



class Transfer(BaseClient):
    full_disk_wait = 1.0  # seconds before the first retry after a 507 (doubling each time)

    async def upload_resumable(self, path: Path, size: int, progress: Progress | None = None, *,
                               upload_id: str | None = None, chunk_size: int = 8 * 1024 * 1024,
                               attempts: int = 6) -> str:
        """Send a sealed file with tus 1.0, resuming from the relay's acknowledged offset after a
        lost connection (and, given the ``upload_id`` of an earlier run, after a restart).

        Each PATCH carries at most ``chunk_size`` bytes with its SHA-256 in ``Upload-Checksum``;
        memory use is one chunk. Returns the upload id to name in the submission.
        """
        tus = {"Tus-Resumable": "1.0.0"}
        failures = 0
        while True:
            try:
                if upload_id is None:
                    upload_id = await self.create_upload(size)
                head = await self._raw("HEAD", f"/v1/uploads/{upload_id}", headers=tus)
                offset = int(head.headers["Upload-Offset"])
                with open(path, "rb") as src:
                    while offset < size:
                        src.seek(offset)
                        data = src.read(min(chunk_size, size - offset))
                        digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
                        answer = await self._raw("PATCH", f"/v1/uploads/{upload_id}", data=io.BytesIO(data), headers={
                            **tus, "Upload-Offset": str(offset), "Upload-Checksum": f"sha256 {digest}",
                            "Content-Type": "application/offset+octet-stream"})
                        offset = int(answer.headers["Upload-Offset"])
                        if progress:
                            progress(offset, size)
                return upload_id
            except (aiohttp.ClientConnectionError, asyncio.TimeoutError):
                failures += 1
                if failures >= attempts:
                    raise
                await asyncio.sleep(min(0.2 * 2**failures, 10))  # then ask where the relay got to
            except ProblemError as exc:
                # 507: the relay's disk is nearly full; nothing past the acknowledged offset was
                # kept. Wait longer, then resume from where the relay got to.
                if exc.status != 507:
                    raise
                failures += 1
                if failures >= attempts:
                    raise
                await asyncio.sleep(min(self.full_disk_wait * 2**failures, 300))

    async def create_upload(self, size: int) -> str:
        """tus creation: a new resumable upload of ``size`` bytes; its id."""
        created = await self._raw("POST", "/v1/uploads", headers={"Tus-Resumable": "1.0.0", "Upload-Length": str(size)})
        return created.headers["Location"].rsplit("/", 1)[-1]

    async def _seal_file(self, key: bytes, src: BinaryIO, into: Path | None = None) -> Sealed:
        """Encrypt ``src`` into a sealed file (a private temp file, or ``into``), hashing as it goes.

        Runs off the event loop, on two cores: this thread encrypts and writes (libsodium drops
        the GIL) while another reads the written bytes back and hashes them (libsodium drops it
        too), so sealing runs near the speed of the slower of the two. Memory: a few MiB.
        """
        if into is not None:
            fd, name = os.open(into, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600), str(into)
        else:
            fd, name = tempfile.mkstemp(prefix="relay-sealed-", suffix=".bin")
        # Only an outbox entry must survive a power cut; a temp file is used up at once. The
        # work runs in a thread, which cancellation cannot stop: on cancellation it is told to
        # stop and waited for, so it never reads the caller's file after this returns, and its
        # file is removed only once it has closed it.
        stop = threading.Event()
        work = asyncio.ensure_future(asyncio.to_thread(_seal_pipeline, key, src, fd, durable=into is not None,
                                                       stop=stop))
        try:
            size, digest = await asyncio.shield(work)
        except BaseException:
            stop.set()
            await asyncio.wait([work])
            if not work.cancelled():
                work.exception()  # retrieved: what the caller gets is what interrupted it
            os.unlink(name)
            raise
        return Sealed(Path(name), size, digest)

    async def _upload(self, path: str, meta: dict[str, Any], sealed: Sealed | None,
                      progress: Progress | None) -> dict[str, Any]:
        with aiohttp.MultipartWriter("form-data") as form:
            part = form.append_json(meta)
            part.set_content_disposition("form-data", name="meta")
            handle: IO[bytes] | None = None
            if sealed is not None:
                handle = open(sealed.path, "rb")  # noqa: SIM115 - closed below, after the upload
                part = form.append(_file_chunks(handle, sealed.size, progress),
                                   {"Content-Type": "application/octet-stream"})
                part.set_content_disposition("form-data", name="content", filename="sealed.bin")
            try:
                return await self.call("POST", path, data=form)  # type: ignore[no-any-return]
            finally:
                if handle is not None:
                    handle.close()

    async def _fetch_plaintext(self, path: str, key: bytes, size: int, expect_hash: str, dst: BinaryIO,
                               progress: Progress | None) -> None:
        """Stream ciphertext through the decryptor into ``dst``; verify size and hash at the end.

        Each 64 KiB chunk is authenticated before its plaintext is written; the whole-blob hash
        (which the signature covers) is checked at the end, and the caller must discard ``dst``
        if this raises.
        """
        decryptor = envelope.StreamDecryptor(key)
        hasher = envelope.new_hasher()
        received = 0
        async with self._download(path) as response:
            async for chunk in response.content.iter_chunked(CHUNK):
                received += len(chunk)
                if received > size:
                    raise VerificationError("more bytes than the signed size")
                hasher.update(chunk)
                try:
                    dst.write(decryptor.feed(chunk))
                except envelope.EnvelopeError:
                    raise VerificationError("the content did not decrypt") from None
                if progress:
                    progress(received, size)
        try:
            decryptor.finish()
        except envelope.EnvelopeError:
            raise VerificationError("the content is incomplete") from None
        if received != size or hasher.hexdigest() != expect_hash:
            raise VerificationError("the content does not match its signed hash")


def _write_durably(path: Path, data: bytes) -> None:
    """Write, fsync, rename: a crash leaves the old file or the new one, never half of one."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


# Ciphertext goes to the sealed file in batches of this size, one pwritev each: a system call
# per 64 KiB chunk took time from the encrypting thread, the slower of the two.
_WRITE_BATCH = 256 * 1024


def _seal_pipeline(key: bytes, src: BinaryIO, fd: int, *, durable: bool, stop: threading.Event) -> tuple[int, str]:
    """Encrypt ``src`` into ``fd`` (open for reading and writing) on this thread while a
    :class:`~storage.hashing.HashBehind` thread hashes what is written; return size and hash.
    Closes ``fd`` on every path. ``stop`` set (the caller was cancelled) ends it at the next chunk.

    A durable file (an outbox entry must match its hash after a power cut) is fsynced, and its
    bytes are written out as soon as they are hashed; a temp file is left in the page cache,
    since it is read again at once for the upload."""
    try:
        hasher = envelope.new_hasher()
        behind = HashBehind(fd, 0, hasher.update, evict=durable)
        size, batch, pending = 0, [], 0
        try:
            for chunk in envelope.encrypt_stream(key, src):
                if stop.is_set():
                    raise asyncio.CancelledError()
                batch.append(chunk)
                pending += len(chunk)
                if pending >= _WRITE_BATCH:
                    size += write_all(fd, batch, size)
                    batch, pending = [], 0
                    behind.wrote(size)
            if batch:
                size += write_all(fd, batch, size)
            behind.close(size)
            behind.join()
            if durable:
                os.fsync(fd)
        except BaseException:
            behind.abandon()
            raise
    finally:
        os.close(fd)
    return size, hasher.hexdigest()


async def _file_chunks(handle: IO[bytes], total: int, progress: Progress | None) -> AsyncIterator[bytes]:
    done = 0
    while chunk := handle.read(CHUNK):
        done += len(chunk)
        if progress:
            progress(done, total)
        yield chunk
