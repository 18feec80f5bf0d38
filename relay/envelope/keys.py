"""Identities (a person's key pairs), passphrase-sealed key bundles, and sealing a content key
to a reader. Opening a bundle or a sealed key decrypts: the relay server never imports this.
"""

from __future__ import annotations

import struct
import unicodedata
from dataclasses import dataclass
from typing import Final

import nacl.bindings
import nacl.exceptions
import nacl.pwhash.argon2id
import nacl.secret
import nacl.utils
from nacl.public import PrivateKey, PublicKey, SealedBox
from nacl.signing import SigningKey

from relay.envelope.documents import _SEALED_KEY_SIZE, KEY_SIZE, EnvelopeError, _check_key, b64d, b64e, fingerprint

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
        """Hex BLAKE3-256 of ``sign_pk || box_pk``, for people to compare out of band (and how a
        decision names the item's sender)."""
        return fingerprint(self.sign_pk, self.box_pk)


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


