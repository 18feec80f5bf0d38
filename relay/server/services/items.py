"""Items from submission to delivery. The server checks what it can on ciphertext: who signed,
who holds a content key, sizes and hashes, and screening at submit, release and fetch.

The rule that makes review cryptographic: a participant's content key is sealed to the case's
mediators and the sender, never to the recipient, and the server refuses a manifest that says
otherwise. Only a mediator's signed decision carries a key sealed to the recipient.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from policies.screening import CaseFacts, Decision, Outcome
from relay import i18n, ids
from relay.envelope import documents
from relay.server.bodies import Upload
from relay.server.context import Context
from relay.server.errors import (
    AlreadyDecided,
    ApprovalRequired,
    BodyTooLarge,
    Conflict,
    ContentDamaged,
    ContentMismatch,
    EnvelopeVersionUnsupported,
    Forbidden,
    InvalidField,
    MalformedRequest,
    NotFound,
    ScreeningRefused,
    SignatureInvalid,
    UnknownRecipient,
)
from relay.server.models import (
    DecisionManifest,
    DecisionRequest,
    ItemManifest,
    Receipt,
    ReceiptRequest,
    Submission,
)
from relay.server.principal import Principal
from relay.server.services import limits, screening, uploads
from relay.server.services.cases import visible_to
from relay.wire import MAX_POSTER_BYTES, WITHHOLD_REASONS
from storage import accounts, cases, items
from storage import errors as storage_errors
from storage.blobs import StoredBlob
from storage.clock import parse
from storage.errors import BlobFormatMismatch
from storage.errors import Conflict as StorageConflict

M = TypeVar("M", bound=BaseModel)
STAFF = ("mediator", "coordinator")


def _doc(model: type[M], data: dict[str, Any], field: str) -> M:
    version = data.get("v") if isinstance(data, dict) else None
    if isinstance(version, int) and not isinstance(version, bool) and version != documents.VERSION:
        raise EnvelopeVersionUnsupported(field=field, version=version)  # e.g. a retired version 1 client
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidField(errors=[
            {"field": f"{field}." + ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
            for e in exc.errors(include_url=False, include_input=False)]) from None


def _verify(domain: documents.Domain, doc: dict[str, Any], signature: str, signer: dict[str, Any]) -> None:
    try:
        documents.verify(domain, doc, signature, documents.b64d(signer["sign_pk"]))
    except documents.EnvelopeError:
        raise SignatureInvalid() from None


def _names_sender(decision: DecisionManifest, sender: dict[str, Any] | None) -> bool:
    """The decision names the item's sender by id and by the fingerprint of their enrolled keys
    (the recipient learns who wrote the item from this, under the mediator's signature)."""
    if sender is None or decision.sender.id != sender["id"]:
        return False
    enrolled = documents.fingerprint(documents.b64d(sender["sign_pk"]), documents.b64d(sender["box_pk"]))
    return secrets.compare_digest(decision.sender.fingerprint, enrolled)


async def _screen_or_refuse(ctx: Context, who: Principal, *, moment: str, case_id: str, kind: str,
                            sender_id: str, recipient_id: str | None, item_id: str | None = None,
                            accept_refer: bool = False) -> Decision:
    """Screen now; refuse unless allowed (or, at submit, referred to the national unit)."""
    case = await cases.get_case(ctx.db, case_id)
    decision = screening.decide(case, moment=moment, kind=kind, sender_id=sender_id, recipient_id=recipient_id,
                                now=ctx.clock.now())
    if decision.allowed or (accept_refer and decision.outcome is Outcome.REFER):
        return decision
    await limits.security_event(ctx, action=f"screening.{decision.outcome.value}", actor=who.actor,
                                case_id=case_id, item_id=item_id, code=decision.code)
    # Staff see why; a participant sees a neutral sentence that names no one and no condition.
    if who.role not in STAFF:
        raise ScreeningRefused()
    needed = screening.approval_needed(case, decision, kind)
    if needed is not None:  # waiting for the national unit: name the condition and what would let it through
        raise ApprovalRequired(code=decision.code, rule=decision.rule, **needed)
    raise ScreeningRefused(code=decision.code, rule=decision.rule)


def _active_mediators(case: dict[str, Any]) -> set[str]:
    return {m["id"] for m in case["mediators"] if m["status"] == "active"}


async def _load(ctx: Context, who: Principal, item_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    item = await items.get(ctx.db, item_id) if ids.valid("item", item_id) else None
    case = await cases.get_case(ctx.db, item["case_id"]) if item else None
    # An item being purged ('expired') is served to no one, whatever its blobs' state.
    if item is None or case is None or item["state"] in items.HIDDEN_STATES or not visible_to(case, who):
        raise NotFound()
    return item, case


def _is_case_mediator(case: dict[str, Any], who: Principal) -> bool:
    return who.role == "mediator" and who.person_id in {m["id"] for m in case["mediators"]}


# -- submission -------------------------------------------------------------------------------


async def submit(ctx: Context, who: Principal, meta: Submission, upload: Upload) -> dict[str, Any]:
    assert who.person is not None
    manifest = _doc(ItemManifest, meta.manifest, "manifest")
    if manifest.sender != who.person_id:
        raise Forbidden("the manifest names another sender")
    case = await cases.get_case(ctx.db, manifest.case_id)
    if case is None or not visible_to(case, who):
        raise NotFound()
    _verify(documents.Domain.MANIFEST, meta.manifest, meta.signature, who.person)

    to_mediators = manifest.recipient == "mediators"
    recipient_id = None if to_mediators else manifest.recipient
    if recipient_id is not None and (recipient_id == who.person_id or recipient_id not in {
            p["id"] for p in case["participants"]}):
        # A mistyped id, or oneself: say so plainly (the case's participants are the caller's to see).
        raise UnknownRecipient(field="manifest.recipient")
    readers = _active_mediators(case) | {who.person_id}
    if who.role == "mediator" and recipient_id is not None:
        readers |= {recipient_id}
    if set(manifest.keys) != readers:
        raise InvalidField(errors=[{"field": "manifest.keys", "message":
                                    "content keys must be sealed to exactly the case's mediators and the sender"
                                    " (and, for a mediator's own message, the recipient)"}])
    # "Every request for communication where [an order or condition] is in place is referred to the
    # national unit": a referred letter waits in review, flagged, and cannot be released until approved.
    screened = await _screen_or_refuse(ctx, who, moment="submit", case_id=manifest.case_id, kind=manifest.kind,
                                       sender_id=who.person_id, recipient_id=recipient_id, accept_refer=True)

    release: dict[str, Any] = {}
    if who.role == "mediator":
        release = _own_release(meta, manifest, who)
        state = "released"
    elif meta.decision is not None:
        raise Forbidden("only a mediator signs a release")
    else:
        state = "released" if to_mediators else "pending_review"

    poster = _poster_bytes(meta, manifest)  # checked against the signed manifest before anything is stored
    quota = limits.quota_for(ctx, who)
    await limits.check_quota(ctx, who, size=manifest.size if state == "pending_review" else 0)
    blob = await _receive(ctx, who, upload, meta.upload_id, kind=manifest.kind, size=manifest.size,
                          hash=manifest.hash)
    kept = [blob.blob_id]
    try:
        poster_blob = None if poster is None else await ctx.blobs.write_stream(
            _once(poster), max_size=MAX_POSTER_BYTES, expect_size=len(poster), expect_hash=documents.blob_hash(poster))
    except Exception:
        ctx.blobs.delete(blob.blob_id)
        raise
    if poster_blob is not None:
        kept.append(poster_blob.blob_id)
    now = ctx.now_iso()
    row = {
        "id": manifest.item_id, "case_id": manifest.case_id, "kind": manifest.kind, "sender_id": who.person_id,
        "recipient_id": recipient_id, "state": state,
        "manifest": documents.canonical_json(meta.manifest).decode("utf-8"), "manifest_sig": meta.signature,
        "manifest_hash": documents.digest(meta.manifest), "content_type": manifest.content_type,
        "size": blob.size, "hash": blob.hash, "blob_id": blob.blob_id, "created_at": manifest.created_at,
        "submitted_at": now, "screening_code": None if screened.allowed else screened.code,
        "poster_blob_id": poster_blob.blob_id if poster_blob else None,
    }
    if release:
        row |= release | {"decided_at": now, "delivery_blob_id": blob.blob_id}
    try:
        await items.create(ctx.db, row, actor=who.actor, quota=quota, session=who.session_id)
    except Exception as exc:  # refused by the store: not acknowledged, so the blobs must not linger
        for blob_id in kept:
            ctx.blobs.delete(blob_id)
        if isinstance(exc, storage_errors.QuotaExceeded):  # a parallel submission took the room
            raise limits.refusal(ctx, exc) from None
        if isinstance(exc, StorageConflict) and not await _may_read_original(ctx, who, manifest.item_id):
            # The id is taken by an item the caller may not see: answer as every read does.
            raise NotFound() from None
        raise
    return sender_view(row)


async def _may_read_original(ctx: Context, who: Principal, item_id: str) -> bool:
    try:
        await _original_item(ctx, who, item_id)
    except NotFound:
        return False
    return True


def _poster_bytes(meta: Submission, manifest: ItemManifest) -> bytes | None:
    """The poster's ciphertext from the request, exactly as the manifest signed it, or None."""
    if manifest.poster is None:
        if meta.poster is not None:
            raise MalformedRequest("a poster was sent that the manifest does not name")
        return None
    if meta.poster is None:
        raise InvalidField(errors=[{"field": "poster", "message": "the manifest names a poster: send it"}])
    try:
        data = base64.b64decode(meta.poster, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedRequest("the poster is not base64") from None
    if len(data) != manifest.poster.size or not secrets.compare_digest(documents.blob_hash(data), manifest.poster.hash):
        raise ContentMismatch()
    if not data.startswith(documents.MAGIC):
        raise EnvelopeVersionUnsupported(field="poster")
    return data


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _receive(ctx: Context, who: Principal, upload: Upload, upload_id: str | None, *, kind: str, size: int,
                   hash: str) -> StoredBlob:
    """The signed content, from this request's content part or from a complete resumable upload,
    kept only if it is exactly the size and hash that were signed, in this envelope version."""
    limit = ctx.settings.max_bytes(kind)
    if size > limit:
        raise BodyTooLarge(limit=limit)
    try:
        if upload_id is not None:
            if upload.has_content:
                raise MalformedRequest("send the content either in this request or as an upload, not both")
            async with ctx.blobs.upload_lock(upload_id):
                await uploads.take(ctx, who, upload_id)
                blob = await ctx.blobs.promote(upload_id, expect_size=size, expect_hash=hash, prefix=documents.MAGIC)
                await uploads.forget(ctx, upload_id)
            return blob
        if not upload.has_content:
            raise MalformedRequest("the content part is missing")
        return await ctx.blobs.write_stream(upload.chunks(), max_size=limit, expect_size=size, expect_hash=hash,
                                            prefix=documents.MAGIC)
    except BlobFormatMismatch:
        raise EnvelopeVersionUnsupported(field="content") from None


def _own_release(meta: Submission, manifest: ItemManifest, who: Principal) -> dict[str, Any]:
    """A mediator's own message needs no review, but still carries their signed release."""
    if manifest.kind == "video" and manifest.content_type != "video/mp4":
        # Delivered as sent, so it must already be the desk's sanitized rendition.
        raise InvalidField(errors=[{"field": "manifest.content_type",
                                    "message": "a mediator's own video is sent as its sanitized MP4 rendition"}])
    if meta.decision is None or meta.decision_signature is None:
        raise InvalidField(errors=[{"field": "decision", "message": "a mediator's message carries its signed release"}])
    decision = _doc(DecisionManifest, meta.decision, "decision")
    delivery = decision.delivery
    if (decision.decision != "release" or decision.item_id != manifest.item_id
            or decision.case_id != manifest.case_id or decision.mediator != who.person_id
            or decision.recipient != manifest.recipient or decision.manifest_hash != documents.digest(meta.manifest)
            or delivery is None or delivery.hash != manifest.hash or delivery.size != manifest.size
            or delivery.keys != manifest.keys or not _names_sender(decision, who.person)):
        raise SignatureInvalid("the release does not match the message")
    assert who.person is not None
    _verify(documents.Domain.DECISION, meta.decision, meta.decision_signature, who.person)
    return {"decision": "release", "decision_doc": documents.canonical_json(meta.decision).decode("utf-8"),
            "decision_sig": meta.decision_signature, "decision_hash": documents.digest(meta.decision),
            "decided_by": who.person_id}


# -- the mediator's review --------------------------------------------------------------------

_DECIDED_STATE = {"release": "released", "return": "returned", "withhold": "withheld"}


async def decide(ctx: Context, who: Principal, item_id: str, meta: DecisionRequest, upload: Upload) -> dict[str, Any]:
    assert who.person is not None
    item, case = await _load(ctx, who, item_id)
    if not _is_case_mediator(case, who):
        raise NotFound()
    if item["recipient_id"] is None:
        raise Conflict("items addressed to the mediators need no decision")
    if item["decision"] is not None:
        raise _already(item["state"], item["decision"], item["decided_at"])
    if item["state"] != "pending_review":
        raise Conflict(f"only an item waiting for review can be decided; this one is {item['state']}")
    decision = _doc(DecisionManifest, meta.decision, "decision")
    if (decision.item_id != item["id"] or decision.case_id != item["case_id"]
            or decision.manifest_hash != item["manifest_hash"] or decision.mediator != who.person_id
            or not _names_sender(decision, await accounts.get_person(ctx.db, item["sender_id"]))):
        raise SignatureInvalid("the decision names another item, sender or mediator")
    _check_decision_shape(decision, item, case)
    _verify(documents.Domain.DECISION, meta.decision, meta.signature, who.person)
    if decision.decision == "release":
        await _screen_or_refuse(ctx, who, moment="release", case_id=item["case_id"], kind=item["kind"],
                                sender_id=item["sender_id"], recipient_id=item["recipient_id"], item_id=item["id"])

    delivery_blob = None
    if decision.delivery is not None:
        # A return's note is a letter; a release's rendition is of the item's own kind.
        kind = item["kind"] if decision.decision == "release" else "letter"
        delivery_blob = await _receive(ctx, who, upload, meta.upload_id, kind=kind, size=decision.delivery.size,
                                       hash=decision.delivery.hash)
    now = ctx.now_iso()
    changes = {
        "state": _DECIDED_STATE[decision.decision], "decision": decision.decision,
        "decision_doc": documents.canonical_json(meta.decision).decode("utf-8"), "decision_sig": meta.signature,
        "decision_hash": documents.digest(meta.decision), "decided_by": who.person_id, "decided_at": now,
        "reason_code": decision.reason, "delivery_blob_id": delivery_blob.blob_id if delivery_blob else None,
    }
    try:
        await items.decide(ctx.db, item_id=item["id"], expect_state="pending_review", changes=changes, now=now,
                           actor=who.actor, session=who.session_id)
    except Exception as exc:  # (not on cancellation: the shielded write may still commit)
        if delivery_blob:
            ctx.blobs.delete(delivery_blob.blob_id)
        if isinstance(exc, storage_errors.AlreadyDecided):  # another mediator (or a retry) was first
            raise _already(exc.state, exc.decision, exc.decided_at) from None
        raise
    return staff_view({**item, **changes}, ctx)


def _already(state: str, decision: str | None, decided_at: str | None) -> AlreadyDecided:
    """'This item was already released on <date>': what was decided, when, and where it is now."""
    return AlreadyDecided(f"this item was already {_DECIDED_STATE.get(decision or '', state)}"
                          + (f" on {decided_at}" if decided_at else ""),
                          decision=decision, decided_at=decided_at, state=state)


def _check_decision_shape(decision: DecisionManifest, item: dict[str, Any], case: dict[str, Any]) -> None:
    mediators = _active_mediators(case)

    def bad(message: str) -> InvalidField:
        return InvalidField(errors=[{"field": "decision", "message": message}])

    # Reason codes come from a fixed list: the audit chain keeps them seven years, never free text.
    if decision.decision == "withhold" and decision.reason not in WITHHOLD_REASONS:
        raise InvalidField(errors=[{"field": "decision.reason",
                                    "message": f"a withhold names one of: {', '.join(WITHHOLD_REASONS)}"}],
                           accepted=list(WITHHOLD_REASONS))
    if decision.decision != "withhold" and decision.reason is not None:
        raise InvalidField(errors=[{"field": "decision.reason", "message": "only a withhold carries a reason code"}])

    reader = item["sender_id"] if decision.decision == "return" else item["recipient_id"]
    if decision.recipient != reader:
        raise bad("a release or withhold names the item's recipient; a return its sender")
    if decision.decision == "withhold":
        if decision.delivery is not None or not decision.reason:
            raise bad("a withhold carries a reason code and no delivery")
        return
    if decision.decision == "release" and item["kind"] == "video" and decision.delivery is not None \
            and decision.delivery.content_type != "video/mp4":
        # Every delivered video is the desk's sanitized rendition, which is always an MP4.
        raise bad("a video is released only as its sanitized MP4 rendition")
    if decision.delivery is None:
        raise bad("a release carries the delivery rendition; a return carries the note")
    holders = set(decision.delivery.keys)
    if reader not in holders or not holders <= mediators | {reader}:
        raise bad("the delivery key is sealed to the reader and the case's mediators, no one else")


# -- delivery ---------------------------------------------------------------------------------


# Holds that lapse on their own when the facts change back (a condition expires, an approval is
# recorded, a case resumes). A withdrawal's hold does not: consent's return sends items to review.
SELF_CLEARING_HOLDS = ("condition-requires-approval", "case-paused")


async def _deliverable(ctx: Context, who: Principal, item_id: str) -> dict[str, Any]:
    """A released item for its recipient, if screening allows it now; else held and NotFound."""
    item, case = await _load(ctx, who, item_id)
    served = await _screened_for_recipient(ctx, who, item, case)
    if served is None:
        raise NotFound()
    return served


async def _screened_for_recipient(ctx: Context, who: Principal, item: dict[str, Any],
                                  case: dict[str, Any], facts: CaseFacts | None = None) -> dict[str, Any] | None:
    """Screening at fetch: the item as it may be served now, or None. A release that screening
    now blocks is held; a hold that has lapsed (condition expired, approval, case resumed) clears."""
    if item["recipient_id"] != who.person_id:
        return None
    was_released = item["state"] in ("released", "delivered")
    clearable = item["state"] == "held" and item["held_from"] == "released" and item["hold_code"] in SELF_CLEARING_HOLDS
    if not (was_released or clearable):
        return None
    decision = screening.decide(case, moment="fetch", kind=item["kind"], sender_id=item["sender_id"],
                                recipient_id=item["recipient_id"], now=ctx.clock.now(), facts=facts)
    if not decision.allowed:
        if was_released:
            await items.hold(ctx.db, item_id=item["id"], code=decision.code, now=ctx.now_iso(), actor=who.actor)
        return None
    if clearable:
        # Served only if the hold it read is the hold it clears: anything committed meanwhile (a
        # withdrawal of consent) wins, and the item is not served on this request.
        if not await items.unhold(ctx.db, item_id=item["id"], code=item["hold_code"], now=ctx.now_iso(),
                                  actor=who.actor):
            return None
        return await items.get(ctx.db, item["id"])
    return item


async def inbox(ctx: Context, who: Principal) -> list[dict[str, Any]]:
    """What the recipient may open now, each screened as of now (the items and their cases read
    in one snapshot: terminals poll this)."""
    listed = []
    released, by_id = await cases.released_with_cases(ctx.db, who.person_id)
    screened: dict[str, CaseFacts | None] = {}  # built once a case: an inbox holds several items of one
    for item in released:
        case = by_id[item["case_id"]]
        if case is None or not visible_to(case, who):
            continue
        if case["id"] not in screened:
            screened[case["id"]] = screening.facts_of(case)
        served = await _screened_for_recipient(ctx, who, item, case, screened[case["id"]])
        if served is not None:
            listed.append(recipient_view(served))
    return listed


async def delivery(ctx: Context, who: Principal, item_id: str) -> dict[str, Any]:
    item = await _deliverable(ctx, who, item_id)
    return {**recipient_view(item), "decision": json.loads(item["decision_doc"]),
            "decision_signature": item["decision_sig"]}


async def delivery_path(ctx: Context, who: Principal, item_id: str) -> Path:
    item = await _deliverable(ctx, who, item_id)
    _intact(item, "delivery")
    return ctx.blobs.path(item["delivery_blob_id"])


def _intact(item: dict[str, Any], part: str) -> None:
    """Refuse to serve a blob a scrub found damaged (its bytes no longer match what was signed)."""
    damaged = items.damaged_parts(item)
    shared = part == "delivery" and item.get("delivery_blob_id") == item.get("blob_id")  # a mediator's own message
    if part in damaged or (shared and "original" in damaged):
        raise ContentDamaged(part=part)


async def acknowledge(ctx: Context, who: Principal, item_id: str, body: ReceiptRequest) -> dict[str, Any]:
    assert who.person is not None
    item = await _deliverable(ctx, who, item_id)
    receipt = _doc(Receipt, body.receipt, "receipt")
    if (receipt.item_id != item["id"] or receipt.decision_hash != item["decision_hash"]
            or receipt.recipient != who.person_id):
        raise SignatureInvalid("the receipt names another item or release")
    _verify(documents.Domain.RECEIPT, body.receipt, body.signature, who.person)
    await items.record_receipt(ctx.db, item_id=item["id"], receipt_doc=documents.canonical_json(body.receipt).decode(),
                               receipt_sig=body.signature, now=ctx.now_iso(), actor=who.actor)
    return recipient_view(await items.get(ctx.db, item["id"]) or item)


# -- the sender's and the mediator's views ----------------------------------------------------


async def sent(ctx: Context, who: Principal) -> list[dict[str, Any]]:
    rows = await items.sent_by(ctx.db, who.person_id)
    if who.device_kind == "terminal":  # a kiosk shows only what belongs to cases at its institution
        here = {c["id"] for c in await cases.list_cases(ctx.db, member=who.person_id)
                if c["institution_id"] == who.device["institution_id"]}
        rows = [r for r in rows if r["case_id"] in here]
    return [sender_view(i) for i in rows]


async def _original_item(ctx: Context, who: Principal, item_id: str) -> dict[str, Any]:
    """The item, if the caller holds a content key of the original: its sender or a case mediator."""
    item, case = await _load(ctx, who, item_id)
    if item["sender_id"] != who.person_id and not _is_case_mediator(case, who):
        raise NotFound()
    return item


async def original(ctx: Context, who: Principal, item_id: str) -> dict[str, Any]:
    """The signed manifest, for the sender and the case's mediators."""
    item = await _original_item(ctx, who, item_id)
    view = staff_view(item, ctx) if who.role == "mediator" else sender_view(item)
    return {**view, "manifest": json.loads(item["manifest"]), "signature": item["manifest_sig"]}


async def original_path(ctx: Context, who: Principal, item_id: str) -> Path:
    item = await _original_item(ctx, who, item_id)
    _intact(item, "original")
    return ctx.blobs.path(item["blob_id"])


async def poster_path(ctx: Context, who: Principal, item_id: str) -> Path:
    """A video's sealed poster frame, for those who hold its key: the sender and the case's mediators."""
    item = await _original_item(ctx, who, item_id)
    if not item["poster_blob_id"]:
        raise NotFound()
    _intact(item, "poster")
    return ctx.blobs.path(item["poster_blob_id"])


async def note(ctx: Context, who: Principal, item_id: str) -> tuple[dict[str, Any], Path]:
    """The mediator's signed return and the sealed note, for the sender of a returned item.

    The note is a message from the mediator to the sender, so it is screened as one, now.
    """
    item, case = await _load(ctx, who, item_id)
    if item["sender_id"] != who.person_id or item["state"] != "returned":
        raise NotFound()
    decision = screening.decide(case, moment="fetch", kind="letter", sender_id=item["decided_by"],
                                recipient_id=item["sender_id"], now=ctx.clock.now())
    if not decision.allowed:
        raise NotFound()
    view = {**sender_view(item), "decision": json.loads(item["decision_doc"]),
            "decision_signature": item["decision_sig"]}
    _intact(item, "delivery")
    return view, ctx.blobs.path(item["delivery_blob_id"])


async def queue(ctx: Context, who: Principal) -> list[dict[str, Any]]:
    """The review queue, oldest first, each item screened as of now (one read per case, not per
    item), with what the desk shows: labels, never raw ids alone, and the flags a mediator acts on."""
    listed, loaded = [], {}
    now = ctx.clock.now()
    for item in await items.review_queue(ctx.db, who.person_id):
        if item["case_id"] not in loaded:
            case = await cases.get_case(ctx.db, item["case_id"])
            loaded[item["case_id"]] = (case, screening.facts_of(case))
        case, facts = loaded[item["case_id"]]
        decision = screening.decide(case, moment="release", kind=item["kind"], sender_id=item["sender_id"],
                                    recipient_id=item["recipient_id"], now=now, facts=facts)
        needed = screening.approval_needed(case, decision, item["kind"])
        listed.append({**desk_view(item, case, ctx), "awaiting_approval": decision.outcome is Outcome.REFER,
                       "screening": {"outcome": decision.outcome.value, "code": decision.code, "rule": decision.rule},
                       "approval": needed})
    return listed


async def mediator_inbox(ctx: Context, who: Principal) -> list[dict[str, Any]]:
    """Letters and videos participants addressed to the mediators, with the desk's labels and flags."""
    listed, facts = [], {}
    for item in await items.mediator_inbox(ctx.db, who.person_id):
        if item["case_id"] not in facts:
            facts[item["case_id"]] = await cases.get_case(ctx.db, item["case_id"])
        listed.append({**desk_view(item, facts[item["case_id"]], ctx), "awaiting_approval": False,
                       "approval": None})
    return listed


def desk_view(item: dict[str, Any], case: dict[str, Any] | None, ctx: Context) -> dict[str, Any]:
    """The staff view plus the case's label, the people's labels and the desk's flags."""
    people = {p["id"]: p for p in (*(case or {}).get("participants", ()), *(case or {}).get("mediators", ()))}

    def person(person_id: str | None) -> dict[str, Any]:
        if person_id is None:
            return {"id": None, "label": "mediators", "to_mediators": True}
        found = people.get(person_id)
        return {"id": person_id, "label": found["label"] if found else None,
                "relation": found.get("relation") if found else None}

    withdrawn = [{"id": pid, "label": people[pid]["label"]} for pid in (item["sender_id"], item["recipient_id"])
                 if pid in people and people[pid].get("consent") == "withdrawn"]
    hold_code = item.get("hold_code")
    held = item["state"] == "held"
    hold_key = f"hold.{hold_code}" if f"hold.{hold_code}" in i18n.MESSAGES else "hold.other"
    paused = case is not None and case["status"] == "paused"
    pause_reason = case.get("pause_reason") if paused and case else None
    damaged = items.damaged_parts(item)
    flags = {
        "held": held, "hold_code": hold_code if held else None, "hold_reason": i18n.both(hold_key) if held else None,
        "participant_withdrawn": bool(withdrawn), "withdrawn": withdrawn,
        "case_paused": paused, "pause_reason": pause_reason,
        "pause_reason_label": i18n.both(f"pause.{pause_reason}") if pause_reason else None,
        "damaged": bool(damaged), "damaged_parts": sorted(damaged),
    }
    return {**staff_view(item, ctx), "case_label": case["label"] if case else None, "sender": person(item["sender_id"]),
            "recipient": person(item["recipient_id"]), "flags": flags}


async def mark_read(ctx: Context, who: Principal, item_id: str) -> dict[str, Any]:
    item, case = await _load(ctx, who, item_id)
    if not _is_case_mediator(case, who) or item["recipient_id"] is not None:
        raise NotFound()
    await items.mark_mediator_read(ctx.db, item_id=item_id, now=ctx.now_iso(), actor=who.actor)
    return staff_view(await items.get(ctx.db, item_id) or item, ctx)


async def of_case(ctx: Context, who: Principal, case_id: str) -> list[dict[str, Any]]:
    case = await cases.get_case(ctx.db, case_id) if ids.valid("case", case_id) else None
    if case is None or not (who.role == "coordinator" or _is_case_mediator(case, who)):
        raise NotFound()
    return [staff_view(i, ctx) for i in await items.of_case(ctx.db, case_id)]


_COMMON = ("id", "case_id", "kind", "sender_id", "recipient_id", "state", "content_type", "created_at",
           "submitted_at", "decided_at", "first_opened_at")
_STAFF_EXTRA = ("screening_code", "damaged_at", "damaged_part")


def sender_view(item: dict[str, Any]) -> dict[str, Any]:
    """What a sender sees: the state in neutral words, never a reason or hold code."""
    state = item["state"]
    to_mediators = item.get("recipient_id") is None
    # A letter to the mediators is released on arrival: nobody "released" it, it simply arrived.
    words = "state.to-mediators" if to_mediators and state in ("released", "delivered") else f"state.{state}"
    return {**{k: item.get(k) for k in _COMMON}, "to_mediators": to_mediators,
            "status": i18n.both(words), "note_available": state == "returned"}


def staff_view(item: dict[str, Any], ctx: Context) -> dict[str, Any]:
    age = (ctx.clock.now() - parse(item["submitted_at"])).total_seconds()
    return {**{k: item.get(k) for k in _COMMON}, "to_mediators": item.get("recipient_id") is None,
            "size": item.get("size"), "decision": item.get("decision"), "decided_by": item.get("decided_by"),
            "reason_code": item.get("reason_code"), "hold_code": item.get("hold_code"),
            "held_from": item.get("held_from"), "age_seconds": int(age),
            "has_poster": bool(item.get("has_poster") or item.get("poster_blob_id")),
            "reason_label": i18n.both(f"withhold.{item['reason_code']}")
            if item.get("decision") == "withhold" and f"withhold.{item.get('reason_code')}" in i18n.MESSAGES else None,
            **{k: item.get(k) for k in _STAFF_EXTRA}}


def recipient_view(item: dict[str, Any]) -> dict[str, Any]:
    return {k: item.get(k) for k in ("id", "case_id", "kind", "sender_id", "state", "decided_at",
                                     "decided_by", "first_opened_at")}
