"""The content stream: secretstream XChaCha20-Poly1305 in fixed 64 KiB chunks behind a magic
and version. Decrypts: the relay server never imports this.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import BinaryIO

import nacl.bindings
import nacl.exceptions
import nacl.utils

from relay.envelope.documents import (
    _ABYTES,
    _TAG_FINAL,
    _TAG_MESSAGE,
    CHUNK_SIZE,
    ENCRYPTED_CHUNK_SIZE,
    HEADER_SIZE,
    KEY_SIZE,
    MAGIC,
    EnvelopeError,
    _check_key,
    _sodium,
    _StreamState,
)

# --------------------------------------------------------------------------------------------
# Content: streaming encryption with crypto_secretstream_xchacha20poly1305
# --------------------------------------------------------------------------------------------
#
# Blob = MAGIC (4) || stream header (24) || chunks. Chunks carry no length prefix: every chunk
# but the last holds exactly CHUNK_SIZE plaintext bytes and is tagged MESSAGE; the last holds
# 0..CHUNK_SIZE-1 bytes and is tagged FINAL. A plaintext whose size is a multiple of CHUNK_SIZE
# (including 0) therefore ends with an empty FINAL chunk. Because the final chunk is always
# shorter than a full one, a chunk's size alone says which kind it must be, and every
# plaintext size has exactly one blob size (ciphertext_size). No associated data is used.


def new_content_key() -> bytes:
    """A fresh random 32-byte content key (one per item or rendition, never reused)."""
    return nacl.utils.random(KEY_SIZE)


def ciphertext_size(plaintext_size: int) -> int:
    """The exact size of the blob :func:`encrypt_stream` makes from ``plaintext_size`` bytes."""
    if plaintext_size < 0:
        raise ValueError("plaintext_size must not be negative")
    full_chunks, rest = divmod(plaintext_size, CHUNK_SIZE)
    return HEADER_SIZE + full_chunks * ENCRYPTED_CHUNK_SIZE + rest + _ABYTES


def _read_up_to(src: BinaryIO, size: int) -> bytes:
    """Read ``size`` bytes, fewer only at end of file; loops over short reads (pipes, sockets)."""
    parts: list[bytes] = []
    wanted = size
    while wanted:
        piece = src.read(wanted)
        if piece is None:  # a non-blocking raw stream with nothing ready
            raise ValueError("non-blocking streams are not supported")
        if not piece:
            break
        parts.append(bytes(piece))
        wanted -= len(piece)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def encrypt_stream(key: bytes, src: BinaryIO) -> Iterator[bytes]:
    """Encrypt ``src`` to a blob, in constant memory.

    Yields ``MAGIC + header`` first, then one ciphertext chunk per CHUNK_SIZE of plaintext,
    reading ``src`` lazily as the iterator is consumed. The key is checked at call time.
    """
    _check_key(key)
    state = _StreamState()
    header = _sodium.crypto_secretstream_xchacha20poly1305_init_push(state, key)
    return _push_chunks(state, MAGIC + header, src)


def _encrypt_stream_with_header(key: bytes, header: bytes, src: BinaryIO) -> Iterator[bytes]:
    """:func:`encrypt_stream` with a chosen stream header. For test vectors only.

    libsodium's init_push draws the header at random and derives the state from it exactly
    as init_pull does, so initialising with init_pull gives the same state a push would have
    had. Reusing a header with the same key destroys confidentiality: never use this for data.
    """
    _check_key(key)
    state = _StreamState()
    _sodium.crypto_secretstream_xchacha20poly1305_init_pull(state, header, key)
    return _push_chunks(state, MAGIC + header, src)


def _push_chunks(state: _StreamState, prefix: bytes, src: BinaryIO) -> Iterator[bytes]:
    yield prefix
    while True:
        plaintext = _read_up_to(src, CHUNK_SIZE)
        if len(plaintext) == CHUNK_SIZE:
            yield _sodium.crypto_secretstream_xchacha20poly1305_push(state, plaintext, tag=_TAG_MESSAGE)
        else:  # a short read means end of file: this is the last chunk, maybe empty
            yield _sodium.crypto_secretstream_xchacha20poly1305_push(state, plaintext, tag=_TAG_FINAL)
            return


def encrypt_bytes(key: bytes, plaintext: bytes) -> bytes:
    """Encrypt a plaintext held in memory; same blob format as :func:`encrypt_stream`."""
    return b"".join(encrypt_stream(key, io.BytesIO(plaintext)))


class StreamDecryptor:
    """Incremental: feed arbitrary byte slices as they come off the network or disk; get plaintext back.

    :meth:`feed` returns only plaintext whose chunk has been authenticated. That plaintext is
    not yet known to be *complete*: only :meth:`finish` says the blob ended properly, so a
    caller writing plaintext somewhere must discard it if ``finish`` (or any ``feed``) raises.
    Any failure raises :class:`EnvelopeError` and leaves the object refusing further use.

    Cost: the last chunk has no length prefix, so whenever a shorter-than-full chunk is
    buffered, ``feed`` tries to open it as the final chunk (a failed try costs one Poly1305
    pass over the buffered bytes and leaves the stream state unchanged). Feeding slices of a
    few KiB or more keeps that cheap; :func:`decrypt_stream` feeds chunk-aligned slices and
    never makes a failed try.
    """

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes) or len(key) != KEY_SIZE:
            raise EnvelopeError()
        self._key: bytes | None = key
        self._state: _StreamState | None = None
        self._pending = b""  # bytes received but not yet consumed, always < one full chunk
        self._done = False  # the FINAL chunk has been opened
        self._failed = False

    def feed(self, data: bytes) -> bytes:
        """Consume ``data``; return the plaintext of every chunk it completed (may be b"")."""
        if self._failed:
            raise EnvelopeError()
        if not data:
            return b""
        try:
            return self._consume(self._pending + bytes(data))
        except (EnvelopeError, nacl.exceptions.CryptoError, ValueError, TypeError):
            self._fail()
            raise EnvelopeError() from None

    def finish(self) -> None:
        """Raise :class:`EnvelopeError` unless the FINAL chunk was the last thing received."""
        if self._failed or not self._done or self._pending:
            self._fail()
            raise EnvelopeError()

    def _fail(self) -> None:
        self._failed = True
        self._key = None
        self._state = None
        self._pending = b""

    def _consume(self, buffer: bytes) -> bytes:
        if self._done:  # anything after the FINAL chunk is an appended chunk or junk
            raise EnvelopeError()
        pos = 0
        if self._state is None:
            if buffer[: len(MAGIC)] != MAGIC[: len(buffer)]:
                raise EnvelopeError()  # wrong magic: refuse as soon as it can be seen
            if len(buffer) < HEADER_SIZE:
                self._pending = buffer
                return b""
            assert self._key is not None
            self._state = _StreamState()
            _sodium.crypto_secretstream_xchacha20poly1305_init_pull(
                self._state, buffer[len(MAGIC) : HEADER_SIZE], self._key
            )
            self._key = None  # the state holds the subkey from here on
            pos = HEADER_SIZE

        plaintexts: list[bytes] = []
        with memoryview(buffer) as view:  # slice without copying the whole buffer each time
            # A full-size chunk can only be a MESSAGE chunk (a FINAL chunk is always shorter).
            while len(buffer) - pos >= ENCRYPTED_CHUNK_SIZE:
                chunk = bytes(view[pos : pos + ENCRYPTED_CHUNK_SIZE])
                plaintext, tag = _sodium.crypto_secretstream_xchacha20poly1305_pull(self._state, chunk)
                if tag != _TAG_MESSAGE:
                    raise EnvelopeError()
                plaintexts.append(plaintext)
                pos += ENCRYPTED_CHUNK_SIZE
            rest = bytes(view[pos:])

        # A shorter remainder is either the whole FINAL chunk or the start of the next chunk.
        # Only the MAC can tell; libsodium checks it before touching the state, so a failed
        # try changes nothing and we wait for more bytes.
        if len(rest) >= _ABYTES:
            try:
                plaintext, tag = _sodium.crypto_secretstream_xchacha20poly1305_pull(self._state, rest)
            except nacl.exceptions.CryptoError:
                pass
            else:
                if tag != _TAG_FINAL:
                    raise EnvelopeError()  # a short chunk must be the final one
                plaintexts.append(plaintext)
                rest = b""
                self._done = True
                self._state = None
        self._pending = rest
        return b"".join(plaintexts)


def decrypt_stream(key: bytes, src: BinaryIO, dst: BinaryIO) -> int:
    """Decrypt the blob in ``src`` into ``dst`` in constant memory; return plaintext bytes written.

    Plaintext is written chunk by chunk as each is authenticated. On :class:`EnvelopeError`,
    ``dst`` holds an authenticated but possibly incomplete prefix that the caller must discard
    (write to a temporary file, and keep it only when this returns). I/O errors propagate.
    """
    decryptor = StreamDecryptor(key)
    written = 0
    # Chunk-aligned reads: each full read is exactly one chunk, and only the last read is
    # short, so the decryptor never has to guess where the final chunk ends.
    size = HEADER_SIZE
    while piece := _read_up_to(src, size):
        plaintext = decryptor.feed(piece)
        if plaintext:
            dst.write(plaintext)
            written += len(plaintext)
        size = ENCRYPTED_CHUNK_SIZE
    decryptor.finish()
    return written


def decrypt_bytes(key: bytes, blob: bytes) -> bytes:
    """Decrypt a blob held in memory; :class:`EnvelopeError` on any failure."""
    decryptor = StreamDecryptor(key)
    plaintext = decryptor.feed(blob)
    decryptor.finish()
    return plaintext


