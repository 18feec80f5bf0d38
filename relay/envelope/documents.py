"""Canonical JSON, the signed documents (their exact fields, as pydantic models, and their
builders), signatures, base64 and the format's one hash, BLAKE3-256. This is all the relay server
needs of the envelope: it verifies and hashes, and never decrypts.

The document models below are the one declaration of each document's fields: the envelope checks
every document it signs or verifies against them, and the relay server validates request bodies
with them (``relay/server/models.py`` adds only the relay's own rules on ids and sizes).
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Final, Literal, Self

import blake3
import nacl.bindings
import nacl.exceptions
from nacl.signing import SigningKey, VerifyKey
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


class EnvelopeError(Exception):
    """The envelope could not be opened or verified (deliberately detail-free)."""

    def __init__(self) -> None:
        super().__init__("envelope could not be opened or verified")


# --------------------------------------------------------------------------------------------
# Constants
# --------------------------------------------------------------------------------------------

_sodium = nacl.bindings  # the raw libsodium calls (secretstream has no high-level API)

VERSION: Final = 2  # of the format: in the blob magic and in every document's "v"
MAGIC: Final = b"RLY" + bytes([VERSION])
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
MAX_SAFE_INT: Final = 2**53 - 1
_MAX_SAFE_INT: Final = MAX_SAFE_INT
_MAX_DEPTH: Final = 32  # our documents nest 3 deep; this bounds recursion on hostile input


class Domain(enum.Enum):
    """What a signature is for. The value is the prefix signed before the canonical JSON."""

    MANIFEST = b"mediation-relay/v2/manifest\x00"
    DECISION = b"mediation-relay/v2/decision\x00"
    RECEIPT = b"mediation-relay/v2/receipt\x00"
    LOGIN = b"mediation-relay/v2/login\x00"
    ENROLLMENT = b"mediation-relay/v2/enrollment\x00"


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


def new_hasher() -> blake3.blake3:
    """A fresh BLAKE3 hasher, the format's one hash (read 32 bytes of output: BLAKE3-256).

    The ``blake3`` package is the reference Rust implementation's bindings: SIMD on one thread
    (about 7,000 MiB/s here, against about 1,000 for BLAKE2b), and it releases the GIL on large
    inputs. Single-threaded on purpose: the bytes it hashes arrive a chunk at a time."""
    return blake3.blake3()


def blob_hash(data: bytes) -> str:
    """Lowercase hex BLAKE3-256 of ``data`` (the hash a manifest records for a blob)."""
    return blake3.blake3(bytes(data)).hexdigest()


def fingerprint(sign_pk: bytes, box_pk: bytes) -> str:
    """Hex BLAKE3-256 of ``sign_pk || box_pk``: how a person's keys are named, for people to
    compare out of band and in a decision (which names the sender by it)."""
    if not all(isinstance(key, bytes) and len(key) == KEY_SIZE for key in (sign_pk, box_pk)):
        raise ValueError("public keys are 32 bytes each")
    return blob_hash(sign_pk + box_pk)


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


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    members = dict(pairs)
    if len(members) != len(pairs):
        raise EnvelopeError()  # parsers disagree on which duplicate wins: refuse them all
    return members


def parse_json(text: str | bytes) -> Any:
    """Parse received JSON the way docs/envelope-v2.md section 6.1 requires: an object with a
    duplicate member name anywhere raises :class:`EnvelopeError` (as does text that is not
    JSON). Numbers and strings are left to :func:`canonical_json`, which refuses floats, unsafe
    integers and lone surrogates."""
    try:
        return json.loads(text, object_pairs_hook=_refuse_duplicates)
    except (ValueError, UnicodeDecodeError):
        raise EnvelopeError() from None


def canonical_json(obj: Mapping[str, object]) -> bytes:
    """The exact bytes that are hashed and signed for a document.

    ``json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`` in UTF-8,
    after :func:`_plain` has refused anything but dict/list/str/int/bool/None (see
    docs/envelope-v2.md for the rules another implementation must follow). Strings that are
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
    """Lowercase hex BLAKE3-256 of :func:`canonical_json` (how one document names another)."""
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

    Raises :class:`EnvelopeError` for any failure: a document that is not a valid v2
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
# Documents: the five kinds that are signed, their exact fields (one pydantic model each), and
# their builders
# --------------------------------------------------------------------------------------------

_HEX_HASH = re.compile(r"[0-9a-f]{64}")
_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?Z")  # ASCII digits: \d takes "٢" too
KINDS: Final = frozenset({"letter", "video"})
DECISIONS: Final = frozenset({"release", "return", "withhold"})


def _time(value: str) -> str:
    """An RFC 3339 UTC timestamp with a "Z", e.g. 2026-11-21T19:27:28Z, that is a real date."""
    if not _TIME.fullmatch(value):
        raise ValueError("a time is YYYY-MM-DDTHH:MM:SS, up to 6 fractional digits, then Z")
    datetime.fromisoformat(value)  # ValueError for a date that does not exist
    return value


def _hash(value: str) -> str:
    if not _HEX_HASH.fullmatch(value):
        raise ValueError("a hash is 64 lowercase hex digits")
    return value


def _base64_of(size: int | None) -> AfterValidator:
    """Strict base64 (see :func:`b64d`) of exactly ``size`` bytes, or of at least one byte."""

    def check(value: str) -> str:
        try:
            decoded = b64d(value)
        except EnvelopeError:
            raise ValueError("not strict standard base64") from None
        if (size is None and not decoded) or (size is not None and len(decoded) != size):
            raise ValueError(f"base64 of {size or 'at least 1'} bytes expected")
        return value

    return AfterValidator(check)


# The shapes of docs/envelope-v2.md section 8. Strict: no coercion of any kind (a "5" is not 5,
# a true is not 1), so what validates is exactly what canonical JSON then writes.
Text = Annotated[str, Field(min_length=1)]
Time = Annotated[str, AfterValidator(_time)]
Hash = Annotated[str, AfterValidator(_hash)]
Size = Annotated[int, Field(ge=0, le=MAX_SAFE_INT)]
PublicKey = Annotated[str, _base64_of(KEY_SIZE)]
SealedKey = Annotated[str, _base64_of(_SEALED_KEY_SIZE)]
Keys = Annotated[dict[Text, SealedKey], Field(min_length=1)]  # person id -> sealed content key


class _Shape(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class PosterRef(_Shape):
    """A video's still for the review queue: its own ciphertext blob, under the item's key."""

    content_type: Literal["image/jpeg"]
    size: Size
    hash: Hash


class Delivery(_Shape):
    """The delivered rendition (for a return, the sealed note to the sender): a fresh blob under
    a fresh content key, sealed to its readers."""

    content_type: Text
    size: Size
    hash: Hash
    keys: Keys


class SenderRef(_Shape):
    """Who wrote the item, as the mediator vouches for it: person id and key fingerprint."""

    id: Text
    fingerprint: Hash


class _Document(_Shape):
    v: Literal[2]


class ItemManifest(_Document):
    """The sender's manifest of an item (domain MANIFEST)."""

    type: Literal["item"]
    item_id: Text
    case_id: Text
    kind: Literal["letter", "video"]
    sender: Text
    recipient: Text  # a person id, or "mediators"
    created_at: Time
    content_type: Text
    size: Size  # of the ciphertext blob
    hash: Hash  # of the ciphertext blob
    keys: Keys
    poster: PosterRef | None = None  # optional: absent, never null

    @field_validator("poster", mode="before")
    @classmethod
    def _absent_not_null(cls, value: object) -> object:
        if value is None:  # an optional field is absent or has its shape: one spelling only
            raise ValueError("leave poster out rather than null")
        return value

    @model_validator(mode="after")
    def _rules(self) -> Self:
        if self.poster is not None and self.kind != "video":
            raise ValueError("only a video has a poster")
        return self


class DecisionManifest(_Document):
    """A mediator's decision on an item (domain DECISION). ``sender`` names who wrote the item,
    so the recipient, who never sees the item's manifest, learns it under the mediator's
    signature."""

    type: Literal["decision"]
    item_id: Text
    case_id: Text
    manifest_hash: Hash
    sender: SenderRef
    decision: Literal["release", "return", "withhold"]
    mediator: Text
    decided_at: Time
    recipient: Text
    delivery: Delivery | None
    reason: Text | None

    @model_validator(mode="after")
    def _rules(self) -> Self:
        # A release must say what is delivered; a withheld item delivers nothing. (A return may
        # carry a sealed note to the sender, or not.)
        if self.decision == "release" and self.delivery is None:
            raise ValueError("a release needs a delivery")
        if self.decision == "withhold" and self.delivery is not None:
            raise ValueError("a withheld item has no delivery")
        return self


class Receipt(_Document):
    """The recipient's receipt that a released item was opened (domain RECEIPT)."""

    type: Literal["receipt"]
    item_id: Text
    decision_hash: Hash
    recipient: Text
    opened_at: Time


class LoginStatement(_Document):
    """What a person signs to log in (domain LOGIN)."""

    type: Literal["login"]
    challenge: Annotated[str, _base64_of(None)]
    device_id: Text
    person_id: Text


class Enrollment(_Document):
    """The coordinator's record binding a person to their public keys (domain ENROLLMENT)."""

    type: Literal["enrollment"]
    person_id: Text
    role: Text
    side: Text | None
    sign_pk: PublicKey
    box_pk: PublicKey
    enrolled_by: Text
    enrolled_at: Time


MODELS: Final[Mapping[Domain, type[_Document]]] = {
    Domain.MANIFEST: ItemManifest,
    Domain.DECISION: DecisionManifest,
    Domain.RECEIPT: Receipt,
    Domain.LOGIN: LoginStatement,
    Domain.ENROLLMENT: Enrollment,
}


def _problem(domain: Domain, obj: object) -> str | None:
    """Why ``obj`` is not a valid v2 document for ``domain``, or None if it is."""
    try:
        plain = _plain(obj, 0)
    except EnvelopeError:
        return "not plain JSON values"
    if not isinstance(plain, dict):
        return "a document is a mapping"
    try:
        MODELS[domain].model_validate(plain)
    except ValidationError as exc:
        return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'document'}: {e['msg']}"
                         for e in exc.errors(include_url=False, include_input=False))
    return None


def check_document(domain: Domain, obj: Mapping[str, object]) -> None:
    """Raise :class:`EnvelopeError` unless ``obj`` is a well-formed v2 document for ``domain``.

    That is: ``v`` is 2, ``type`` matches the domain ("item", "decision", "receipt", "login",
    "enrollment"), the field set is exactly that type's, and each field has its shape (the
    domain's model in :data:`MODELS`). So a document of one kind can never verify as another
    even if the prefixes were ignored, and a version 1 document never verifies at all.
    """
    if not isinstance(domain, Domain) or _problem(domain, obj) is not None:
        raise EnvelopeError()


def _build(domain: Domain, **fields: object) -> dict[str, Any]:
    document: dict[str, object] = {"v": VERSION, "type": _DOCUMENT_TYPE[domain], **fields}
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
) -> dict[str, Any]:
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
    sender: Mapping[str, str],
    decision: str,
    mediator: str,
    decided_at: str,
    recipient: str,
    delivery: Mapping[str, object] | None,
    reason: str | None,
) -> dict[str, Any]:
    """A mediator's decision on an item. ``manifest_hash`` is :func:`digest` of the item
    manifest; ``sender`` is ``{"id", "fingerprint"}`` of the item's sender (see
    :func:`fingerprint`). ``delivery`` is None or ``{"content_type", "size", "hash", "keys"}``
    of the delivered rendition (for "return", of the sealed note to the sender); required for
    "release", forbidden for "withhold". ``reason`` is a code string or None."""
    return _build(
        Domain.DECISION,
        item_id=item_id,
        case_id=case_id,
        manifest_hash=manifest_hash,
        sender=dict(sender),
        decision=decision,
        mediator=mediator,
        decided_at=decided_at,
        recipient=recipient,
        delivery=None if delivery is None else dict(delivery),
        reason=reason,
    )


def receipt(*, item_id: str, decision_hash: str, recipient: str, opened_at: str) -> dict[str, Any]:
    """The recipient's receipt that a released item was opened; ``decision_hash`` is
    :func:`digest` of the decision."""
    return _build(
        Domain.RECEIPT,
        item_id=item_id,
        decision_hash=decision_hash,
        recipient=recipient,
        opened_at=opened_at,
    )


def login_statement(*, challenge: str, device_id: str, person_id: str) -> dict[str, Any]:
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
) -> dict[str, Any]:
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
