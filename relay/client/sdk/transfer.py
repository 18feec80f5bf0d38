"""Moving sealed content: sealing a file (a pipeline on two cores: encrypt on one, hash and
write on the other), uploading it (one multipart request, or tus in resumable chunks when
large), and streaming ciphertext back through the decryptor with its signed size and hash
checked."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import os
import queue
import tempfile
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO

import aiohttp

from relay import envelope
from relay.client.sdk.base import CHUNK, BaseClient, ProblemError, Progress, VerificationError
from relay.wire import RESUMABLE_ABOVE

# Linux has posix_fadvise; elsewhere (macOS) the final fsync simply does all the writing.
_CAN_EVICT = hasattr(os, "posix_fadvise")


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

    async def _seal_file(self, key: bytes, src: BinaryIO, into: Path | None = None,
                         progress: Progress | None = None) -> Sealed:
        """Encrypt ``src`` into a sealed file (a private temp file, or ``into``), hashing as it goes.

        Runs off the event loop, as a pipeline on two cores (see :func:`_seal_pipeline`): one
        thread reads and encrypts, another hashes and writes. ``progress(sealed bytes written,
        sealed size)`` is called on the event loop from the first batch on (the sealed size is 0
        when the source's size cannot be known). Memory: a few MiB.
        """
        if into is not None:
            fd, name = os.open(into, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600), str(into)
        else:
            fd, name = tempfile.mkstemp(prefix="relay-sealed-", suffix=".bin")
        report = None
        if progress is not None:
            loop, total = asyncio.get_running_loop(), _sealed_size(src)

            def report(done: int) -> None:  # called from the writing thread
                loop.call_soon_threadsafe(progress, done, total)

        # Only an outbox entry must survive a power cut; a temp file is used up at once. The
        # work runs in threads, which cancellation cannot stop: on cancellation they are told to
        # stop and waited for, so they never read the caller's file after this returns, and the
        # sealed file is removed only once they have closed it.
        stop = threading.Event()
        work = asyncio.ensure_future(asyncio.to_thread(_seal_pipeline, key, src, fd, durable=into is not None,
                                                       stop=stop, progress=report))
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

    async def _submit_sealed(self, path: str, meta: dict[str, Any], sealed: Sealed | None,
                             progress: Progress | None, resumable: bool | None = None) -> dict[str, Any]:
        """Submit signed ``meta`` with its sealed content: in the request itself, or, when the
        content is larger than ``RESUMABLE_ABOVE`` (or ``resumable`` says so), first as a tus
        upload in resumable chunks, named in the request by its upload id."""
        if sealed is not None and (resumable or (resumable is None and sealed.size > RESUMABLE_ABOVE)):
            meta = {**meta, "upload_id": await self.upload_resumable(sealed.path, sealed.size, progress)}
            return await self._upload(path, meta, None, None)
        return await self._upload(path, meta, sealed, progress)

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

        A pipeline on two cores: the event loop receives, a thread hashes, decrypts and writes
        (see :class:`_Opener`). Each 64 KiB chunk is authenticated before its plaintext is
        written; the whole-blob hash (which the signature covers) is checked at the end, and the
        caller must discard ``dst`` if this raises.
        """
        opener = _Opener(key, size, dst)
        try:
            received = 0
            async with self._download(path) as response:
                async for piece in response.content.iter_chunked(_RECEIVE):
                    received += len(piece)
                    if received > size:
                        raise VerificationError("more bytes than the signed size")
                    await opener.put(piece)
                    if progress:
                        progress(received, size)
            digest = await opener.finish()
        finally:
            await opener.close()
        if received != size or digest != expect_hash:
            raise VerificationError("the content does not match its signed hash")


_RECEIVE = 1 << 20  # up to this much crosses from the event loop to the opening thread at a time


def _own_thread(fn: Callable[[], None]) -> asyncio.Future[None]:
    """Run ``fn`` on a thread of its own, settled on the loop when it ends. Not the loop's default
    pool: an opening holds its thread for the whole download and needs a pool thread meanwhile
    (to wait on its full queue), so openings holding every pool thread would wait forever."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def settle(error: BaseException | None) -> None:
        if done.done():
            return
        if error is None:
            done.set_result(None)
        else:
            done.set_exception(error)

    def run() -> None:
        error: BaseException | None = None
        try:
            fn()
        except BaseException as exc:  # handed to whoever awaits the future
            error = exc
        try:
            loop.call_soon_threadsafe(settle, error)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            pass

    threading.Thread(target=run, name="relay-open", daemon=False).start()
    return done


class _Opener:
    """Hash, decrypt and write a blob of known ``size`` on a thread of its own, fed from the loop.

    The thread cuts what it is given at chunk boundaries (the signed size says where the final
    chunk starts), so the decryptor never has to guess where a chunk ends. Memory: a few MiB
    (the queue is bounded: a slow disk slows the download instead of filling memory).
    """

    def __init__(self, key: bytes, size: int, dst: BinaryIO) -> None:
        self._decryptor = envelope.StreamDecryptor(key)
        self._hasher = envelope.new_hasher()
        self._dst, self._size = dst, size
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=8)
        self._failed: BaseException | None = None
        self._closed = False
        self._thread = _own_thread(self._run)

    async def put(self, piece: bytes) -> None:
        if self._failed is not None:
            raise self._failed
        try:
            self._queue.put_nowait(piece)
        except queue.Full:  # the thread is behind: wait off the loop
            await asyncio.to_thread(self._queue.put, piece)

    async def finish(self) -> str:
        """Wait until everything given is opened; the blob's hash (raises what the thread met)."""
        await self._end()
        await asyncio.shield(self._thread)
        if self._failed is not None:
            raise self._failed
        try:
            self._decryptor.finish()
        except envelope.EnvelopeError:
            raise VerificationError("the content is incomplete") from None
        return self._hasher.hexdigest()

    async def close(self) -> None:
        """Stop the thread (on every path, so it never writes to ``dst`` after the call)."""
        await self._end()
        await asyncio.wait([self._thread])
        if not self._thread.cancelled():
            self._thread.exception()  # retrieved: any failure was reported by finish

    async def _end(self) -> None:
        if not self._closed:
            self._closed = True
            await asyncio.to_thread(self._queue.put, None)

    def _run(self) -> None:
        # Each chunk is cut out of the pieces received with one copy of its own size: no
        # MiB-sized temporaries, whose allocation and release in a thread cost fresh pages each
        # time (a thread's malloc arena hands freed memory back; touching it again is slow on
        # virtual machines). A chunk split across two pieces is joined from its two parts.
        part = b""  # the start of a chunk whose end is in the next piece
        offset = 0  # blob bytes consumed so far
        while (piece := self._queue.get()) is not None:
            if self._failed is not None:
                continue  # drain, so the loop never blocks on a full queue
            try:
                self._hasher.update(piece)
                with memoryview(piece) as view:
                    pos = 0
                    while pos < len(view):
                        end = self._chunk_end(offset)
                        wanted = end - offset - len(part)
                        if len(view) - pos < wanted:  # the chunk goes on in the next piece
                            part += view[pos:]
                            break
                        chunk = part + view[pos:pos + wanted] if part else bytes(view[pos:pos + wanted])
                        part, pos, offset = b"", pos + wanted, end
                        self._dst.write(self._decryptor.feed(chunk))
            except envelope.EnvelopeError:
                self._failed = VerificationError("the content did not decrypt")
            except BaseException as exc:  # an I/O error writing ``dst``
                self._failed = exc

    def _chunk_end(self, offset: int) -> int:
        """Where the piece of the blob that starts at ``offset`` ends: the header, a full chunk,
        or the final chunk (the signed size says where the blob ends)."""
        if offset == 0:
            return min(envelope.HEADER_SIZE, self._size)
        return min(offset + envelope.ENCRYPTED_CHUNK_SIZE, self._size)


def _write_durably(path: Path, data: bytes) -> None:
    """Write, fsync, rename: a crash leaves the old file or the new one, never half of one."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


# Ciphertext crosses from the encrypting thread to the writing one in batches of this size, one
# pwritev each: a hand-over or a system call per 64 KiB chunk took time from the encrypting
# thread, the slower of the two.
_WRITE_BATCH = 1 << 20
_QUEUED_BATCHES = 8  # buffers going round: bounds memory (about 8 MiB) when the disk is slower than the cipher
_WRITEBACK_STEP = 8 << 20  # a durable file's writeback is started every this many bytes


def _sealed_size(src: BinaryIO) -> int:
    """The sealed size of what is left to read in ``src``, or 0 if it cannot be known."""
    try:
        remaining = os.fstat(src.fileno()).st_size - src.tell()
    except (AttributeError, OSError, io.UnsupportedOperation):
        if not isinstance(src, io.BytesIO):
            return 0
        remaining = len(src.getbuffer()) - src.tell()
    return envelope.ciphertext_size(max(0, remaining))


def _write_all(fd: int, buffers: list[bytes], position: int) -> int:
    """Write ``buffers`` at ``position``, in one system call unless the disk fills; the count."""
    total = sum(len(buffer) for buffer in buffers)
    written = os.pwritev(fd, buffers, position)
    if written < total:  # a short write: finish piece by piece, which raises if the disk is full
        rest = memoryview(b"".join(buffers))[written:]
        while rest:
            step = os.pwrite(fd, rest, position + written)
            rest, written = rest[step:], written + step
    return total


class _Prefetch:
    """Reads ``src`` a MiB at a time into one reused buffer and serves the encryption's 64 KiB
    reads from it: one system call (and one GIL hand-over) a MiB instead of sixteen, and no
    MiB-sized allocation per read (in a thread, their memory is handed back and slow to touch
    again on virtual machines)."""

    def __init__(self, src: BinaryIO) -> None:
        self._src = src
        self._buffer = bytearray(_WRITE_BATCH)
        self._view = memoryview(self._buffer)
        self._pos = self._end = 0

    def read(self, size: int) -> bytes:
        if self._pos == self._end:
            self._pos, self._end = 0, self._fill()
        piece = bytes(self._view[self._pos:min(self._end, self._pos + size)])
        self._pos += len(piece)
        return piece  # may be short: the caller reads again until it has ``size`` or end of file

    def _fill(self) -> int:
        readinto = getattr(self._src, "readinto", None)
        if readinto is not None:
            got = readinto(self._view)
        else:
            data = self._src.read(len(self._buffer))
            got = None if data is None else len(data)
            if got:
                self._view[:got] = data
        if got is None:  # a non-blocking raw stream with nothing ready
            raise ValueError("non-blocking streams are not supported")
        return got


def _seal_pipeline(key: bytes, src: BinaryIO, fd: int, *, durable: bool, stop: threading.Event,
                   progress: Callable[[int], None] | None = None) -> tuple[int, str]:
    """Encrypt ``src`` into ``fd`` as a pipeline on two cores; return the sealed size and hash.

    This thread reads and encrypts (secretstream, the one step that cannot be split: each chunk's
    state follows from the last), copying the ciphertext into 1 MiB buffers; a second thread
    hashes each full buffer (BLAKE3) and writes it, then calls ``progress(bytes written)``.
    libsodium, blake3 and the system calls release the GIL, so the two run side by side and
    sealing runs near the cipher's speed (bench/sealing.py). The second thread makes one hash
    call and one write a buffer, not one per chunk, so it rarely takes the GIL from this one.
    The buffers go round between the two threads and each chunk's ciphertext is freed at once,
    so memory is reused warm: handing the chunks themselves over kept MiBs of them in flight,
    which the threads' malloc arenas gave back and faulted in again (ten times the page faults,
    each slow on a virtual machine whose host has taken the memory back). Closes ``fd`` on every
    path; ``stop`` set (the caller was cancelled) ends it at the next chunk.

    A durable file (an outbox entry must match its hash after a power cut) is fsynced, with its
    writeback started as it is written; a temp file is left in the page cache, since it is read
    again at once for the upload."""
    hasher = envelope.new_hasher()
    spare: queue.Queue[bytearray] = queue.Queue()
    for _ in range(_QUEUED_BATCHES):
        spare.put(bytearray(_WRITE_BATCH + envelope.ENCRYPTED_CHUNK_SIZE))
    full: queue.Queue[tuple[bytearray, int] | None] = queue.Queue()
    failed: list[BaseException] = []
    abort = threading.Event()
    written = 0

    def write() -> None:
        nonlocal written
        started = 0  # where the last writeback request began
        while (item := full.get()) is not None:
            buffer, length = item
            if not abort.is_set():  # else drain, so the encrypting thread never waits for a spare
                try:
                    with memoryview(buffer) as view:
                        hasher.update(view[:length])
                        written += _write_all(fd, [view[:length]], written)
                    if durable and _CAN_EVICT and written - started >= _WRITEBACK_STEP:
                        behind = max(0, started - _WRITEBACK_STEP)  # pages written since are dropped next time
                        os.posix_fadvise(fd, behind, written - behind, os.POSIX_FADV_DONTNEED)
                        started = written
                    if progress is not None:
                        progress(written)
                except BaseException as exc:  # an I/O error (a full disk): the sealing fails with it
                    failed.append(exc)
                    abort.set()
            spare.put(buffer)

    writer = threading.Thread(target=write, name="seal-write", daemon=True)
    writer.start()
    try:
        try:
            buffer, length = spare.get(), 0
            for chunk in envelope.encrypt_stream(key, _Prefetch(src)):
                if stop.is_set():
                    raise asyncio.CancelledError()
                if abort.is_set():
                    break
                buffer[length:length + len(chunk)] = chunk
                length += len(chunk)
                if length >= _WRITE_BATCH:
                    full.put((buffer, length))
                    buffer, length = spare.get(), 0
            if length:
                full.put((buffer, length))
        except BaseException:
            abort.set()
            raise
        finally:
            full.put(None)
            writer.join()
        if failed:
            raise failed[0]
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)
    return written, hasher.hexdigest()


async def _file_chunks(handle: IO[bytes], total: int, progress: Progress | None) -> AsyncIterator[bytes]:
    done = 0
    while chunk := handle.read(CHUNK):
        done += len(chunk)
        if progress:
            progress(done, total)
        yield chunk
