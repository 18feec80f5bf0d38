"""Hashing a file while it is being written, on a second core: :class:`HashBehind`.

The relay hashes every upload as it streams in, and the client hashes every sealed file as it
is sealed (the manifest signs the ciphertext's BLAKE2b-256, DESIGN.md). BLAKE2b is the costly
part of both, and libsodium's releases the GIL while it works, so it belongs on its own thread.

Why the thread reads the bytes back from the file instead of being handed each chunk: between
two pieces of work a thread needs the GIL, which the writing side (an event loop, or the
encryption loop) holds most of the time, and every wait for it leaves the hashing core idle.
Reading back from the page cache in steps of 4 MiB costs a copy but few waits, and the thread
never holds on to a chunk. Measured on this machine (bench/upload.py, bench/sealing.py):
handing over the chunks ran uploads at 0.40 of a bare handler and sealing at 0.57 of raw
secretstream; reading back, 0.54 and 0.69; steps of 1 or 16 MiB did worse than 4.

With ``evict``, bytes already hashed are handed to the kernel to write out now
(``POSIX_FADV_DONTNEED`` starts their writeback, then drops them from the page cache), so the
fsync that makes the file durable has little left to do (uploads: 0.54 to about 0.67), and a
1 GiB upload does not push the database's pages out of memory. Only for files that are fsynced
and not read again soon.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

import nacl.hashlib

from .errors import StorageError

# How far the thread reads back at a time: large, so it rarely waits for the GIL.
STEP = 4 << 20

def blake2b_256() -> nacl.hashlib.blake2b:
    """The hash a manifest records for a blob: BLAKE2b-256, libsodium's (faster than the stdlib's
    on this machine, and it releases the GIL). It takes ``bytes`` only."""
    return nacl.hashlib.blake2b(digest_size=32)


# Linux has posix_fadvise; elsewhere (macOS) the final fsync simply does all the writing.
_CAN_EVICT = hasattr(os, "posix_fadvise")


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


class HashBehind:
    """A thread that feeds ``consume`` with what the writer has put in ``fd`` from ``start``.

    The writer calls :meth:`wrote` after each write (cheap: it wakes the thread once a step is
    ready), then either :meth:`close` and :meth:`join` (sync callers), or :meth:`close` and
    waits for ``on_done`` (an event loop), or :meth:`abandon` on any failure. ``fd`` must be
    open for reading; the thread reads it with ``pread``, so the writer's offset is untouched.
    ``on_done(failure)`` is called from the thread when it ends, unless it was abandoned.
    """

    def __init__(self, fd: int, start: int, consume: Callable[[bytes], object], *, evict: bool = False,
                 on_done: Callable[[BaseException | None], None] | None = None) -> None:
        self._fd, self._pos, self._consume, self._evict, self._on_done = fd, start, consume, evict, on_done
        self._written = start  # how far the writer has written
        self._waiting = False  # the thread sleeps until a step is ready
        self._closing = False  # no more bytes will come
        self._abandoned = False  # stop now: the write failed
        self._failure: BaseException | None = None
        self._state = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="blob-hash", daemon=True)
        self._thread.start()

    def wrote(self, end: int) -> None:
        """The writer has written up to ``end``. Raises the thread's failure (an I/O error
        reading back) as soon as it is known, so a doomed write stops early."""
        if self._failure is not None:
            raise self._failure
        self._written = end
        # Unlocked reads of the thread's state: at worst the wake-up comes one write later.
        if self._waiting and end - self._pos >= STEP:
            with self._state:
                self._state.notify()

    def close(self, end: int) -> None:
        """Everything up to ``end`` is written; the thread hashes the rest, then ends."""
        with self._state:
            self._written, self._closing = end, True
            self._state.notify()

    def join(self) -> None:
        """Wait until the thread has hashed everything up to the end; raise its failure."""
        self._thread.join()
        if self._failure is not None:
            raise self._failure

    def abandon(self) -> None:
        """Stop the thread and wait for it (at most one step), so the caller's clean-up of the
        file never races a read. Blocking on purpose: it must hold even while being cancelled."""
        with self._state:
            self._abandoned = self._closing = True
            self._state.notify()
        self._thread.join()

    def _run(self) -> None:
        try:
            while True:
                with self._state:
                    while self._written - self._pos < STEP and not self._closing:
                        self._waiting = True
                        self._state.wait()
                        self._waiting = False
                    if self._abandoned:
                        return
                    ready = min(STEP, self._written - self._pos)
                if ready == 0:
                    break
                data = os.pread(self._fd, ready, self._pos)  # bytes: what libsodium's hash takes
                if len(data) != ready:
                    raise StorageError("the file changed while it was hashed")
                self._consume(data)
                del data  # a stalled writer must not keep a step's bytes alive
                if self._evict and _CAN_EVICT:
                    os.posix_fadvise(self._fd, self._pos, ready, os.POSIX_FADV_DONTNEED)
                self._pos += ready
        except BaseException as exc:  # an I/O error: the writer's caller fails with it
            self._failure = exc
        if self._on_done is not None:
            self._on_done(self._failure)
