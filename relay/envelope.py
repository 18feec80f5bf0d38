"""Envelope format, version 1: every cryptographic operation of the relay, over PyNaCl.

The relay server never holds a private key or a content key. This module is what the
participant's endpoint, the mediator's desk and the terminal use to seal and open items, and
what the server uses to check signatures and hashes on ciphertext. ``docs/envelope-v1.md`` is
the byte-level specification; ``tests/vectors/envelope-v1.json`` holds test vectors.

Contract, in the manner of pyca/cryptography's Fernet:

* Opening, decrypting, verifying or parsing anything that came from outside fails with exactly
  one exception, :class:`EnvelopeError`, that carries no detail. A caller cannot tell a bad
  MAC from a truncated blob from a wrong key, and neither can an attacker watching it.
* Producing something (encrypting, sealing, signing, building a document) with arguments that
  are wrong in kind (a 31-byte key, a negative size, an unknown ``kind``) is a programming
  error and raises ``ValueError``/``TypeError`` with a message for the developer. The two
  exceptions are :func:`canonical_json` and :func:`sign`, which raise :class:`EnvelopeError`
  for a document that :func:`verify` would refuse, so both sides reject the same inputs.
* No I/O other than the file objects passed in, no clock reads (times are arguments), no
  logging. Nothing here prints or formats a key or a plaintext, and reprs hide secrets.
"""

from __future__ import annotations

import base64
import binascii
import enum
import io
import json
import re
import struct
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO, Final

import nacl.bindings
import nacl.exceptions
import nacl.hashlib
import nacl.pwhash.argon2id
import nacl.secret
import nacl.utils
from nacl.public import PrivateKey, PublicKey, SealedBox
from nacl.signing import SigningKey, VerifyKey

__all__ = [
    "CHUNK_SIZE",
    "DECISIONS",
    "ENCRYPTED_CHUNK_SIZE",
    "HEADER_SIZE",
    "KEY_SIZE",
    "KINDS",
    "MAGIC",
    "MEMLIMIT_MODERATE",
    "OPSLIMIT_MODERATE",
    "Domain",
    "EnvelopeError",
    "Identity",
    "PublicIdentity",
    "StreamDecryptor",
    "b64d",
    "b64e",
    "blob_hash",
    "canonical_json",
    "check_document",
    "ciphertext_size",
    "decision_manifest",
    "decrypt_bytes",
    "decrypt_stream",
    "digest",
    "encrypt_bytes",
    "encrypt_stream",
    "enrollment",
    "item_manifest",
    "login_statement",
    "new_content_key",
    "new_hasher",
    "open_identity",
    "open_key",
    "receipt",
    "seal_identity",
    "seal_key",
    "sign",
    "verify",
]


class EnvelopeError(Exception):
    """The envelope could not be opened or verified (deliberately detail-free)."""

    def __init__(self) -> None:
        super().__init__("envelope could not be opened or verified")


# --------------------------------------------------------------------------------------------
# Constants
# --------------------------------------------------------------------------------------------

_sodium = nacl.bindings  # the raw libsodium calls (secretstream has no high-level API)

MAGIC: Final = b"RLY\x01"  # "RLY" + format version 1
KEY_SIZE: Final = 32
CHUNK_SIZE: Final = 64 * 1024  # plaintext bytes per chunk; every chunk but the last is exactly this
_ABYTES: Final[int] = _sodium.crypto_secretstream_xchacha20poly1305_ABYTES  # 17: 1 tag + 16 MAC
_STREAM_HEADER: Final[int] = _sodium.crypto_secretstream_xchacha20poly1305_HEADERBYTES  # 24
HEADER_SIZE: Final = len(MAGIC) + _STREAM_HEADER  # 28 bytes before the first chunk
ENCRYPTED_CHUNK_SIZE: Final = CHUNK_SIZE + _ABYTES  # size of every chunk but the last
_TAG_MESSAGE: Final[int] = _sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
_TAG_FINAL: Final[int] = _sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL
_StreamState = nacl.bindings.crypto_secretstream_xchacha20poly1305_state

_SEALED_KEY_SIZE: Final = _sodium.crypto_box_SEALBYTES + KEY_SIZE  # 48 + 32
_SIGNATURE_SIZE: Final = 64

# JSON numbers above 2**53 - 1 do not survive a round trip through a JavaScript (IEEE double)
# parser, so canonical JSON refuses them: every implementation then agrees on the bytes.
_MAX_SAFE_INT: Final = 2**53 - 1
_MAX_DEPTH: Final = 32  # our documents nest 3 deep; this bounds recursion on hostile input


class Domain(enum.Enum):
    """What a signature is for. The value is the prefix signed before the canonical JSON."""

    MANIFEST = b"mediation-relay/v1/manifest\x00"
    DECISION = b"mediation-relay/v1/decision\x00"
    RECEIPT = b"mediation-relay/v1/receipt\x00"
    LOGIN = b"mediation-relay/v1/login\x00"
    ENROLLMENT = b"mediation-relay/v1/enrollment\x00"


# The "type" field each domain's documents must carry (see check_document).
_DOCUMENT_TYPE: Final[Mapping[Domain, str]] = {
    Domain.MANIFEST: "item",
    Domain.DECISION: "decision",
    Domain.RECEIPT: "receipt",
    Domain.LOGIN: "login",
    Domain.ENROLLMENT: "enrollment",
}


# --------------------------------------------------------------------------------------------
# Base64 and hashes
# --------------------------------------------------------------------------------------------


def b64e(data: bytes) -> str:
    """Standard base64 with padding (RFC 4648 section 4)."""
    return base64.b64encode(data).decode("ascii")


def b64d(text: str) -> bytes:
    """Decode standard padded base64, strictly; raise :class:`EnvelopeError` on bad input.

    Strict means: only the standard alphabet, correct padding, no whitespace, and the unused
    low bits of the last character are zero. Each byte string then has exactly one accepted
    encoding, so a signed or stored value cannot be re-spelled.
    """
    if not isinstance(text, str):
        raise EnvelopeError()
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise EnvelopeError() from None
    if b64e(data) != text:
        raise EnvelopeError()
    return data


def new_hasher() -> nacl.hashlib.blake2b:
    """A fresh BLAKE2b-256 hasher. libsodium's (through PyNaCl), like the rest of our
    cryptography: on this machine it is faster than the stdlib's (about 880 against 810 MiB/s),
    and it releases the GIL, so it can run on a core of its own. It takes ``bytes`` only."""
    return nacl.hashlib.blake2b(digest_size=32)


def blob_hash(data: bytes) -> str:
    """Lowercase hex BLAKE2b-256 of ``data`` (the hash a manifest records for a blob)."""
    hasher = new_hasher()
    hasher.update(bytes(data))
    return hasher.hexdigest()


# --------------------------------------------------------------------------------------------
# Identities and passphrase-sealed key bundles
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PublicIdentity:
    """A person's public keys: Ed25519 to verify their signatures, X25519 to seal keys to them.

    Raises :class:`EnvelopeError` when a key is not 32 bytes, because public keys usually
    arrive from outside (an enrollment request, a database row).
    """

    sign_pk: bytes
    box_pk: bytes

    def __post_init__(self) -> None:
        for key in (self.sign_pk, self.box_pk):
            if not isinstance(key, bytes) or len(key) != KEY_SIZE:
                raise EnvelopeError()

    def fingerprint(self) -> str:
        """Hex BLAKE2b-256 of ``sign_pk || box_pk``, for people to compare out of band."""
        return blob_hash(self.sign_pk + self.box_pk)


class Identity:
    """A person's private keys: an Ed25519 signing key and an X25519 box key.

    Keep one only for the length of a session and call :meth:`wipe` at sign-out. After a
    wipe, reading either key raises :class:`EnvelopeError`, so a stale session fails closed.
    """

    __slots__ = ("_box_key", "_public", "_signing_key")

    def __init__(self, signing_key: SigningKey, box_key: PrivateKey) -> None:
        if not isinstance(signing_key, SigningKey) or not isinstance(box_key, PrivateKey):
            raise TypeError("Identity takes a nacl SigningKey and a nacl PrivateKey")
        self._signing_key: SigningKey | None = signing_key
        self._box_key: PrivateKey | None = box_key
        self._public = PublicIdentity(sign_pk=bytes(signing_key.verify_key), box_pk=bytes(box_key.public_key))

    @classmethod
    def generate(cls) -> Identity:
        """New random keys from the operating system's CSPRNG."""
        return cls(SigningKey.generate(), PrivateKey.generate())

    @classmethod
    def from_seeds(cls, sign_seed: bytes, box_secret: bytes) -> Identity:
        """Rebuild an identity from its 32-byte Ed25519 seed and 32-byte X25519 secret."""
        if len(sign_seed) != KEY_SIZE or len(box_secret) != KEY_SIZE:
            raise ValueError("seeds must be 32 bytes each")
        return cls(SigningKey(bytes(sign_seed)), PrivateKey(bytes(box_secret)))

    @property
    def public(self) -> PublicIdentity:
        """The matching public keys (still available after :meth:`wipe`)."""
        return self._public

    @property
    def signing_key(self) -> SigningKey:
        if self._signing_key is None:
            raise EnvelopeError()
        return self._signing_key

    @property
    def box_key(self) -> PrivateKey:
        if self._box_key is None:
            raise EnvelopeError()
        return self._box_key

    def wipe(self) -> None:
        """Drop this object's references to the private keys (best effort).

        Python cannot zero memory: PyNaCl keeps key bytes in immutable ``bytes`` objects, and
        copies may live on until the garbage collector reuses the memory. This only makes
        sure that this object can no longer sign or open anything.
        """
        self._signing_key = None
        self._box_key = None

    def __repr__(self) -> str:
        state = "wiped" if self._signing_key is None else "unlocked"
        return f"Identity({self._public.fingerprint()[:16]}…, {state})"


# Bundle layout (all integers big-endian), 141 bytes in all:
#   magic "RLYK" (4) | version 1 (1) | opslimit (u64) | memlimit (u64) | salt (16)
#   | secretbox nonce (24) | secretbox ciphertext of sign_seed || box_secret (64 + 16 MAC)
_BUNDLE_MAGIC: Final = b"RLYK"
_BUNDLE_VERSION: Final = 1
_BUNDLE_HEAD: Final = struct.Struct(">4sBQQ16s")
_BUNDLE_SIZE: Final = (
    _BUNDLE_HEAD.size + nacl.secret.SecretBox.NONCE_SIZE + 2 * KEY_SIZE + nacl.secret.SecretBox.MACBYTES
)
OPSLIMIT_MODERATE: Final[int] = nacl.pwhash.argon2id.OPSLIMIT_MODERATE
MEMLIMIT_MODERATE: Final[int] = nacl.pwhash.argon2id.MEMLIMIT_MODERATE
# A bundle comes from the server, which we do not trust to pick sane Argon2 costs: limits above
# SENSITIVE (4 passes, 1 GiB) would let it make a terminal allocate or spin without bound.
_OPSLIMIT_CAP: Final[int] = nacl.pwhash.argon2id.OPSLIMIT_SENSITIVE
_MEMLIMIT_CAP: Final[int] = nacl.pwhash.argon2id.MEMLIMIT_SENSITIVE


def _passphrase_key(passphrase: str, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    # NFC first, so the same passphrase typed on two keyboards (a precomposed "é" or "e" plus a
    # combining accent) derives the same key.
    secret = unicodedata.normalize("NFC", passphrase).encode("utf-8")
    key: bytes = nacl.pwhash.argon2id.kdf(
        nacl.secret.SecretBox.KEY_SIZE, secret, salt, opslimit=opslimit, memlimit=memlimit
    )
    return key


def seal_identity(
    identity: Identity,
    passphrase: str,
    *,
    opslimit: int = OPSLIMIT_MODERATE,
    memlimit: int = MEMLIMIT_MODERATE,
) -> bytes:
    """Seal both private keys under a passphrase (Argon2id, then XSalsa20-Poly1305).

    The Argon2id limits are recorded in the bundle; :func:`open_identity` refuses bundles
    below its minimums, so production code keeps the MODERATE defaults. Tests pass
    ``OPSLIMIT_MIN``/``MEMLIMIT_MIN`` here and to ``open_identity``.
    """
    return _seal_identity_with(
        identity,
        passphrase,
        opslimit=opslimit,
        memlimit=memlimit,
        salt=nacl.utils.random(nacl.pwhash.argon2id.SALTBYTES),
        nonce=nacl.utils.random(nacl.secret.SecretBox.NONCE_SIZE),
    )


def _seal_identity_with(
    identity: Identity, passphrase: str, *, opslimit: int, memlimit: int, salt: bytes, nonce: bytes
) -> bytes:
    """:func:`seal_identity` with a chosen salt and nonce. For test vectors only."""
    if not passphrase:
        raise ValueError("the passphrase must not be empty")
    if not (0 < opslimit <= _OPSLIMIT_CAP and 0 < memlimit <= _MEMLIMIT_CAP):
        raise ValueError("Argon2id limits above SENSITIVE could never be opened")
    if memlimit % 1024:
        raise ValueError("memlimit must be a multiple of 1024 bytes")
    key = _passphrase_key(passphrase, salt, opslimit, memlimit)
    seeds = bytes(identity.signing_key) + bytes(identity.box_key)
    sealed = nacl.secret.SecretBox(key).encrypt(seeds, nonce)
    head = _BUNDLE_HEAD.pack(_BUNDLE_MAGIC, _BUNDLE_VERSION, opslimit, memlimit, salt)
    return head + bytes(sealed)  # EncryptedMessage is nonce || ciphertext


def open_identity(
    bundle: bytes,
    passphrase: str,
    *,
    min_opslimit: int = OPSLIMIT_MODERATE,
    min_memlimit: int = MEMLIMIT_MODERATE,
) -> Identity:
    """Open a bundle made by :func:`seal_identity`; :class:`EnvelopeError` on any failure.

    Checked before the (expensive) key derivation: exact length, magic, version, that the
    recorded limits lie between the minimums given here and SENSITIVE, and that memlimit is
    a whole number of KiB. Callers should then compare ``identity.public`` with the person's
    enrolled keys.
    """
    if not isinstance(bundle, bytes) or len(bundle) != _BUNDLE_SIZE:
        raise EnvelopeError()
    magic, version, opslimit, memlimit, salt = _BUNDLE_HEAD.unpack_from(bundle)
    if magic != _BUNDLE_MAGIC or version != _BUNDLE_VERSION:
        raise EnvelopeError()
    if not (min_opslimit <= opslimit <= _OPSLIMIT_CAP and min_memlimit <= memlimit <= _MEMLIMIT_CAP):
        raise EnvelopeError()
    if memlimit % 1024:
        # libsodium uses memlimit // 1024 (KiB), so the low bits would not reach the key and
        # could be changed without detection. Every other header bit is checked exactly above
        # or feeds the key derivation, which makes the whole header tamper-evident.
        raise EnvelopeError()
    try:
        key = _passphrase_key(passphrase, salt, opslimit, memlimit)
        seeds = nacl.secret.SecretBox(key).decrypt(bundle[_BUNDLE_HEAD.size :])
    except (nacl.exceptions.CryptoError, ValueError, TypeError):
        # CryptoError: wrong passphrase or tampering; ValueError/TypeError: limits libsodium
        # refuses (below its own minimums) or a passphrase that is not a str.
        raise EnvelopeError() from None
    return Identity.from_seeds(seeds[:KEY_SIZE], seeds[KEY_SIZE:])


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


def _check_key(key: bytes) -> None:
    if not isinstance(key, bytes) or len(key) != KEY_SIZE:
        raise ValueError("a content key is 32 bytes")


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


# --------------------------------------------------------------------------------------------
# Key wrapping
# --------------------------------------------------------------------------------------------


def seal_key(content_key: bytes, box_pk: bytes) -> str:
    """Seal a content key to a reader's X25519 public key (``crypto_box_seal``); base64."""
    _check_key(content_key)
    if not isinstance(box_pk, bytes) or len(box_pk) != KEY_SIZE:
        raise ValueError("box_pk is 32 bytes")
    return b64e(SealedBox(PublicKey(box_pk)).encrypt(content_key))


def open_key(sealed_b64: str, identity: Identity) -> bytes:
    """Open a key sealed by :func:`seal_key`; :class:`EnvelopeError` on any failure."""
    sealed = b64d(sealed_b64)
    if len(sealed) != _SEALED_KEY_SIZE:
        raise EnvelopeError()
    try:
        content_key = SealedBox(identity.box_key).decrypt(sealed)
    except (nacl.exceptions.CryptoError, ValueError, TypeError):
        raise EnvelopeError() from None
    if len(content_key) != KEY_SIZE:
        raise EnvelopeError()
    return content_key


# --------------------------------------------------------------------------------------------
# Canonical JSON and signatures
# --------------------------------------------------------------------------------------------


def _plain(value: object, depth: int) -> object:
    """A copy of ``value`` in plain builtins, or :class:`EnvelopeError` if it is not allowed.

    Allowed: dict (str keys), list, str, int in +-(2**53 - 1), bool, None. Floats are refused
    because their text form differs between implementations; str and int subclasses (enums)
    are reduced to their plain value, which is what json.dumps would write for them anyway.
    """
    if depth > _MAX_DEPTH:
        raise EnvelopeError()
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT:
            raise EnvelopeError()
        return int(value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, Mapping):
        if not all(isinstance(k, str) for k in value):
            raise EnvelopeError()
        plain = {str.__str__(k): _plain(v, depth + 1) for k, v in value.items()}
        if len(plain) != len(value):  # two distinct key objects with the same text
            raise EnvelopeError()
        return plain
    if isinstance(value, list):
        return [_plain(v, depth + 1) for v in value]
    raise EnvelopeError()  # float, tuple, bytes, set, anything else


def canonical_json(obj: Mapping[str, object]) -> bytes:
    """The exact bytes that are hashed and signed for a document.

    ``json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`` in UTF-8,
    after :func:`_plain` has refused anything but dict/list/str/int/bool/None (see
    docs/envelope-v1.md for the rules another implementation must follow). Strings that are
    not valid Unicode (lone surrogates) are refused too. Raises :class:`EnvelopeError`.
    """
    if not isinstance(obj, Mapping):
        raise EnvelopeError()
    text = json.dumps(
        _plain(obj, 0), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise EnvelopeError() from None


def digest(obj: Mapping[str, object]) -> str:
    """Lowercase hex BLAKE2b-256 of :func:`canonical_json` (how one document names another)."""
    return blob_hash(canonical_json(obj))


def sign(domain: Domain, obj: Mapping[str, object], signing_key: SigningKey) -> str:
    """Base64 of the detached Ed25519 signature over ``domain.value + canonical_json(obj)``.

    Refuses (with :class:`EnvelopeError`) a document :func:`check_document` refuses for this
    domain, so nothing is signed that :func:`verify` would not accept.
    """
    if not isinstance(domain, Domain) or not isinstance(signing_key, SigningKey):
        raise TypeError("sign takes a Domain and a nacl SigningKey")
    check_document(domain, obj)
    message = domain.value + canonical_json(obj)
    return b64e(signing_key.sign(message).signature)


def verify(domain: Domain, obj: Mapping[str, object], signature_b64: str, sign_pk: bytes) -> None:
    """Return if ``signature_b64`` is ``sign_pk``'s signature of ``obj`` for ``domain``.

    Raises :class:`EnvelopeError` for any failure: a document that is not a valid v1
    document of this domain's type, bad base64, wrong lengths, a bad key or a bad signature.
    """
    if not isinstance(domain, Domain):
        raise EnvelopeError()
    check_document(domain, obj)
    message = domain.value + canonical_json(obj)
    signature = b64d(signature_b64)
    if len(signature) != _SIGNATURE_SIZE:
        raise EnvelopeError()
    if not isinstance(sign_pk, bytes) or len(sign_pk) != KEY_SIZE:
        raise EnvelopeError()
    try:
        VerifyKey(sign_pk).verify(message, signature)
    except (nacl.exceptions.CryptoError, ValueError, TypeError):
        raise EnvelopeError() from None


# --------------------------------------------------------------------------------------------
# Documents: the five kinds that are signed, their exact fields, and their builders
# --------------------------------------------------------------------------------------------

_HEX_HASH = re.compile(r"[0-9a-f]{64}")
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z")
KINDS: Final = frozenset({"letter", "video"})
DECISIONS: Final = frozenset({"release", "return", "withhold"})


def _is_text(value: object) -> bool:
    return isinstance(value, str) and value != ""


def _is_time(value: object) -> bool:
    """An RFC 3339 UTC timestamp with a "Z", e.g. 2026-11-21T19:27:28Z, that is a real date."""
    if not isinstance(value, str) or not _TIME.fullmatch(value):
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _is_hash(value: object) -> bool:
    return isinstance(value, str) and _HEX_HASH.fullmatch(value) is not None


def _is_size(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _MAX_SAFE_INT


def _is_b64_of(size: int) -> Callable[[object], bool]:
    def check(value: object) -> bool:
        try:
            return isinstance(value, str) and len(b64d(value)) == size
        except EnvelopeError:
            return False

    return check


def _is_b64(value: object) -> bool:
    try:
        return isinstance(value, str) and len(b64d(value)) > 0
    except EnvelopeError:
        return False


def _is_keys(value: object) -> bool:
    """person id -> sealed content key, at least one reader."""
    sealed = _is_b64_of(_SEALED_KEY_SIZE)
    return (
        isinstance(value, Mapping)
        and len(value) > 0
        and all(_is_text(k) and sealed(v) for k, v in value.items())
    )


_DELIVERY_FIELDS: Final[Mapping[str, Callable[[object], bool]]] = {
    "content_type": _is_text,
    "size": _is_size,
    "hash": _is_hash,
    "keys": _is_keys,
}


def _is_delivery(value: object) -> bool:
    return value is None or (
        isinstance(value, Mapping)
        and set(value) == set(_DELIVERY_FIELDS)
        and all(check(value[name]) for name, check in _DELIVERY_FIELDS.items())
    )


_POSTER_FIELDS: Final[Mapping[str, Callable[[object], bool]]] = {
    "content_type": lambda value: value == "image/jpeg",
    "size": _is_size,
    "hash": _is_hash,
}


def _is_poster(value: object) -> bool:
    return (
        isinstance(value, Mapping)
        and set(value) == set(_POSTER_FIELDS)
        and all(check(value[name]) for name, check in _POSTER_FIELDS.items())
    )


def _one_of(options: frozenset[str]) -> Callable[[object], bool]:
    # isinstance first: ``[] in options`` would raise TypeError (unhashable), not return False
    return lambda value: isinstance(value, str) and value in options


def _optional(check: Callable[[object], bool]) -> Callable[[object], bool]:
    return lambda value: value is None or check(value)


# Every field of every v1 document, besides "v" and "type". A document must have exactly
# these fields: no more (nothing unsigned-in-spirit can ride along), no fewer, except those
# named in _OPTIONAL, which may be absent (never null).
_FIELDS: Final[Mapping[Domain, Mapping[str, Callable[[object], bool]]]] = {
    Domain.MANIFEST: {
        "item_id": _is_text,
        "case_id": _is_text,
        "kind": _one_of(KINDS),
        "sender": _is_text,
        "recipient": _is_text,  # a person id, or "mediators"
        "created_at": _is_time,
        "content_type": _is_text,
        "size": _is_size,  # of the ciphertext blob
        "hash": _is_hash,  # of the ciphertext blob
        "keys": _is_keys,
        "poster": _is_poster,  # optional: a video's still for the review queue, sealed under the same key
    },
    Domain.DECISION: {
        "item_id": _is_text,
        "case_id": _is_text,
        "manifest_hash": _is_hash,
        "decision": _one_of(DECISIONS),
        "mediator": _is_text,
        "decided_at": _is_time,
        "recipient": _is_text,
        "delivery": _is_delivery,
        "reason": _optional(_is_text),
    },
    Domain.RECEIPT: {
        "item_id": _is_text,
        "decision_hash": _is_hash,
        "recipient": _is_text,
        "opened_at": _is_time,
    },
    Domain.LOGIN: {
        "challenge": _is_b64,
        "device_id": _is_text,
        "person_id": _is_text,
    },
    Domain.ENROLLMENT: {
        "person_id": _is_text,
        "role": _is_text,
        "side": _optional(_is_text),
        "sign_pk": _is_b64_of(KEY_SIZE),
        "box_pk": _is_b64_of(KEY_SIZE),
        "enrolled_by": _is_text,
        "enrolled_at": _is_time,
    },
}


_OPTIONAL: Final[Mapping[Domain, frozenset[str]]] = {Domain.MANIFEST: frozenset({"poster"})}


def _problem(domain: Domain, obj: object) -> str | None:
    """Why ``obj`` is not a valid v1 document for ``domain``, or None if it is."""
    if not isinstance(obj, Mapping):
        return "a document is a mapping"
    version = obj.get("v")
    if isinstance(version, bool) or version != 1:
        return "v must be 1"
    if obj.get("type") != _DOCUMENT_TYPE[domain]:
        return f"type must be {_DOCUMENT_TYPE[domain]!r} for {domain.name}"
    optional = _OPTIONAL.get(domain, frozenset())
    fields = {name: check for name, check in _FIELDS[domain].items() if name in obj or name not in optional}
    extra_or_missing = set(obj) ^ (set(fields) | {"v", "type"})
    if extra_or_missing:
        return f"unexpected or missing fields: {sorted(map(str, extra_or_missing))}"
    for name, check in fields.items():
        if not check(obj[name]):
            return f"invalid {name}"
    if domain is Domain.MANIFEST and "poster" in obj and obj["kind"] != "video":
        return "only a video has a poster"
    if domain is Domain.DECISION:
        # A release must say what is delivered; a withheld item delivers nothing. (A return
        # may carry a sealed note to the sender, or not.)
        if obj["decision"] == "release" and obj["delivery"] is None:
            return "a release needs a delivery"
        if obj["decision"] == "withhold" and obj["delivery"] is not None:
            return "a withheld item has no delivery"
    return None


def check_document(domain: Domain, obj: Mapping[str, object]) -> None:
    """Raise :class:`EnvelopeError` unless ``obj`` is a well-formed v1 document for ``domain``.

    Checks ``v`` is 1, ``type`` matches the domain ("item", "decision", "receipt", "login",
    "enrollment"), the field set is exactly that type's, and each field has its v1 shape. So
    a document of one kind can never verify as another even if the prefixes were ignored.
    """
    if not isinstance(domain, Domain) or _problem(domain, obj) is not None:
        raise EnvelopeError()


def _build(domain: Domain, **fields: object) -> dict[str, object]:
    document: dict[str, object] = {"v": 1, "type": _DOCUMENT_TYPE[domain], **fields}
    problem = _problem(domain, document)
    if problem is not None:
        raise ValueError(problem)  # builders are fed by our own code: say what is wrong
    plain = _plain(document, 0)  # plain dicts and strs all the way down
    assert isinstance(plain, dict)
    return plain


def item_manifest(
    *,
    item_id: str,
    case_id: str,
    kind: str,
    sender: str,
    recipient: str,
    created_at: str,
    content_type: str,
    size: int,
    hash: str,  # noqa: A002 - the field's name in the format
    keys: Mapping[str, str],
    poster: Mapping[str, object] | None = None,
) -> dict[str, object]:
    """The sender's manifest of an item. ``size`` and ``hash`` are the ciphertext blob's;
    ``keys`` maps each reader's person id to the content key sealed to them. A video may carry
    ``poster`` (``content_type`` image/jpeg, ``size``, ``hash`` of its ciphertext): a still for
    the review queue, encrypted under the same content key as its own stream."""
    extra = {"poster": dict(poster)} if poster is not None else {}
    return _build(
        Domain.MANIFEST,
        item_id=item_id,
        case_id=case_id,
        kind=kind,
        sender=sender,
        recipient=recipient,
        created_at=created_at,
        content_type=content_type,
        size=size,
        hash=hash,
        keys=dict(keys),
        **extra,
    )


def decision_manifest(
    *,
    item_id: str,
    case_id: str,
    manifest_hash: str,
    decision: str,
    mediator: str,
    decided_at: str,
    recipient: str,
    delivery: Mapping[str, object] | None,
    reason: str | None,
) -> dict[str, object]:
    """A mediator's decision on an item. ``manifest_hash`` is :func:`digest` of the item
    manifest. ``delivery`` is None or ``{"content_type", "size", "hash", "keys"}`` of the
    delivered rendition (for "return", of the sealed note to the sender); required for
    "release", forbidden for "withhold". ``reason`` is a code string or None."""
    return _build(
        Domain.DECISION,
        item_id=item_id,
        case_id=case_id,
        manifest_hash=manifest_hash,
        decision=decision,
        mediator=mediator,
        decided_at=decided_at,
        recipient=recipient,
        delivery=None if delivery is None else dict(delivery),
        reason=reason,
    )


def receipt(*, item_id: str, decision_hash: str, recipient: str, opened_at: str) -> dict[str, object]:
    """The recipient's receipt that a released item was opened; ``decision_hash`` is
    :func:`digest` of the decision."""
    return _build(
        Domain.RECEIPT,
        item_id=item_id,
        decision_hash=decision_hash,
        recipient=recipient,
        opened_at=opened_at,
    )


def login_statement(*, challenge: str, device_id: str, person_id: str) -> dict[str, object]:
    """What a person signs to log in: the server's base64 challenge, bound to device and person."""
    return _build(Domain.LOGIN, challenge=challenge, device_id=device_id, person_id=person_id)


def enrollment(
    *,
    person_id: str,
    role: str,
    side: str | None,
    sign_pk: bytes | str,
    box_pk: bytes | str,
    enrolled_by: str,
    enrolled_at: str,
) -> dict[str, object]:
    """The coordinator's record binding a person to their public keys.

    ``sign_pk``/``box_pk`` may be given as 32 raw bytes or already as base64; the document
    always holds base64.
    """
    return _build(
        Domain.ENROLLMENT,
        person_id=person_id,
        role=role,
        side=side,
        sign_pk=b64e(sign_pk) if isinstance(sign_pk, bytes) else sign_pk,
        box_pk=b64e(box_pk) if isinstance(box_pk, bytes) else box_pk,
        enrolled_by=enrolled_by,
        enrolled_at=enrolled_at,
    )
