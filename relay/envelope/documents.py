"""Canonical JSON, the signed documents (their exact fields and builders), signatures, base64
and the format's hash. This is all the relay server needs of the envelope: it verifies and
hashes, and never decrypts.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Final

import nacl.bindings
import nacl.exceptions
import nacl.hashlib
from nacl.signing import SigningKey, VerifyKey


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


def _check_key(key: bytes) -> None:
    if not isinstance(key, bytes) or len(key) != KEY_SIZE:
        raise ValueError("a content key is 32 bytes")


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
