"""The blob hash, and writing a file the relay will fsync: :func:`new_hasher`, :func:`write_all`,
:class:`Writeback`.

The relay hashes every upload as it streams in (the manifest signs the ciphertext's BLAKE3-256,
envelope version 2, DESIGN.md). BLAKE3 hashes a 64 KiB chunk at about 7,000 MiB/s on one core
here, a few percent of what receiving and writing the same bytes costs, so it runs inline, on the
bytes as they arrive: no thread, no reading back. (Version 1's BLAKE2b ran at about 1,000 MiB/s,
which is why a thread used to read the written file back and hash it on the second core; that
thread is gone with it.)

What still helps is the writeback: an upload is fsynced before its offset is acknowledged, and
an fsync that finds a whole GiB dirty waits for all of it. :class:`Writeback` asks the kernel,
from a thread, to start writing out what has been written so far, step by step, so the final
fsync has little left to do and a large upload does not fill the page cache with dirty pages
that would push the database's out.
"""

from __future__ import annotations

import asyncio
import os

import blake3

# How much is written between two writeback requests: large, so the thread hops are few.
STEP = 8 << 20

# Linux has posix_fadvise; elsewhere (macOS) the final fsync simply does all the writing.
_CAN_EVICT = hasattr(os, "posix_fadvise")


def new_hasher() -> blake3.blake3:
    """The hash a manifest records for a blob: BLAKE3 (read as BLAKE3-256, its default output).
    Kept here rather than imported from the envelope because storage never imports ``relay``;
    ``tests/test_storage.py`` checks it agrees with ``relay.envelope.documents.blob_hash``."""
    return blake3.blake3()


def write_all(fd: int, buffers: list[bytes], position: int) -> int:
    """Write ``buffers`` at ``position`` with as few system calls as the kernel allows (one, for
    a regular file, unless the disk fills); returns the byte count."""
    total = sum(len(buffer) for buffer in buffers)
    written = os.pwritev(fd, buffers, position)
    if written < total:  # a short write: finish piece by piece, which raises if the disk is full
        rest = memoryview(b"".join(buffers))[written:]
        while rest:
            step = os.pwrite(fd, rest, position + written)
            rest, written = rest[step:], written + step
    return total


def _write_out(fd: int, start: int, end: int) -> None:
    # POSIX_FADV_DONTNEED starts the writeback of dirty pages in the range and drops the clean
    # ones; pages still being written stay cached and are dropped by the next request, which
    # starts one step back.
    os.posix_fadvise(fd, start, end - start, os.POSIX_FADV_DONTNEED)


class Writeback:
    """Start the writeback of ``fd`` behind a writer on an event loop, one step at a time.

    The writer calls :meth:`wrote` after each write (cheap: at most one request is in flight,
    in a thread of the default executor), and must await :meth:`drain` before it fsyncs or
    closes ``fd``, on every path (a descriptor closed under a running request could already name
    another file).
    """

    def __init__(self, fd: int, start: int) -> None:
        self._fd, self._requested = fd, start
        self._pending: asyncio.Future[None] | None = None

    def wrote(self, end: int) -> None:
        if not _CAN_EVICT or end - self._requested < STEP:
            return
        if self._pending is not None:
            if not self._pending.done():
                return  # the next write asks again, for more
            self._pending.result()  # an I/O error of the last request fails the write now
        start, self._requested = max(0, self._requested - STEP), end
        self._pending = asyncio.ensure_future(asyncio.to_thread(_write_out, self._fd, start, end))

    async def drain(self, *, quiet: bool = False) -> None:
        """Wait for the request in flight, even if cancelled meanwhile; raise its failure unless
        ``quiet`` (on a path that already fails for another reason)."""
        pending, self._pending = self._pending, None
        if pending is None:
            return
        try:
            await asyncio.shield(pending)
        except asyncio.CancelledError:
            await asyncio.wait([pending])
            if not pending.cancelled():
                pending.exception()  # retrieved: the cancellation is what the caller gets
            raise
        except Exception:
            if not quiet:
                raise
