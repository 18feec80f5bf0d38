"""Items: participants send and read, mediators review and write, terminals deliver."""

from __future__ import annotations

from functools import partial
from typing import Any

from aiohttp import web

from relay.server import schemas as s
from relay.server.api import BLOB, operation
from relay.server.auth import guard, principal_of, public
from relay.server.bodies import Upload
from relay.server.context import CONTEXT
from relay.server.errors import (
    AlreadyDecided,
    ApprovalRequired,
    Conflict,
    ContentDamaged,
    ContentMismatch,
    EnvelopeVersionUnsupported,
    Forbidden,
    NotFound,
    PreconditionFailed,
    QuotaExceeded,
    RangeNotSatisfiable,
    ScreeningRefused,
    SignatureInvalid,
    UnknownRecipient,
    UploadExpired,
)
from relay.server.handlers.common import DeliveryResponse, blob
from relay.server.metrics import METRICS
from relay.server.models import DecisionRequest, ReceiptRequest, Submission
from relay.server.services import deliveries, items, limits, uploads

PEOPLE_DEVICES = {"participant_device", "terminal", "mediator_desk"}
sender = guard(devices=PEOPLE_DEVICES, roles={"participant", "mediator"})
participant = guard(devices={"participant_device", "terminal"}, roles={"participant"})
mediator = guard(devices={"mediator_desk"}, roles={"mediator"})

# A blob answer: the item may be gone, its bytes found damaged, or the Range or precondition off.
CONTENT = (NotFound, ContentDamaged, PreconditionFailed, RangeNotSatisfiable)
# A blob answer may be partial (Range) or "not modified" (a conditional request that holds).
PARTIAL = (206, 304)
# Sending content: the signed document, the bytes against it, the resumable upload it names.
SENDING = (NotFound, Forbidden, SignatureInvalid, EnvelopeVersionUnsupported, ContentMismatch, Conflict,
           UploadExpired, ScreeningRefused, ApprovalRequired)


@sender
@operation(s.SentItem, status=201, upload=Submission, creates="item",
           problems=(*SENDING, UnknownRecipient, QuotaExceeded))
async def submit(request: web.Request, body: tuple[Submission, Upload]) -> Any:
    """Submit an item: its signed manifest (meta) and its ciphertext (content, or a finished upload)."""
    request.app[METRICS].upload_bytes.inc(request.content_length or 0)
    meta, content = body
    return await items.submit(request.app[CONTEXT], principal_of(request), meta, content)


@sender
@operation(list[s.SentItem])
async def sent(request: web.Request) -> Any:
    """What the caller sent, each with its state in neutral words."""
    return await items.sent(request.app[CONTEXT], principal_of(request))


@sender
@operation(s.StaffOriginal | s.SenderOriginal, problems=(NotFound,))
async def original(request: web.Request) -> Any:
    """An item's signed manifest, for its sender and the case's mediators."""
    return await items.original(request.app[CONTEXT], principal_of(request), request.match_info["item_id"])


@sender
@operation(BLOB, problems=CONTENT, statuses=PARTIAL)
async def original_content(request: web.Request) -> web.StreamResponse:
    """An item's ciphertext as sent, for its sender and the case's mediators."""
    return blob(await items.original_path(request.app[CONTEXT], principal_of(request), request.match_info["item_id"]))


@sender
@operation(BLOB, problems=CONTENT, statuses=PARTIAL)
async def poster(request: web.Request) -> web.StreamResponse:
    """A video's sealed poster frame, for its sender and the case's mediators."""
    return blob(await items.poster_path(request.app[CONTEXT], principal_of(request), request.match_info["item_id"]))


@participant
@operation(s.ReturnNote, problems=(NotFound, ContentDamaged))
async def note(request: web.Request) -> Any:
    """The mediator's signed return of the caller's item; the sealed note is at /note/content."""
    view, _ = await items.note(request.app[CONTEXT], principal_of(request), request.match_info["item_id"])
    return view


@participant
@operation(BLOB, problems=CONTENT, statuses=PARTIAL)
async def note_content(request: web.Request) -> web.StreamResponse:
    """The sealed note of a returned item, for its sender."""
    _, path = await items.note(request.app[CONTEXT], principal_of(request), request.match_info["item_id"])
    return blob(path)


@participant
@operation(list[s.ReceivedItem])
async def inbox(request: web.Request) -> Any:
    """What the caller may open now, each screened as of now."""
    return await items.inbox(request.app[CONTEXT], principal_of(request))


@participant
@operation(s.ReleasedItem, problems=(NotFound,))
async def delivery(request: web.Request) -> Any:
    """A released item with the mediator's signed release, for its recipient."""
    return await items.delivery(request.app[CONTEXT], principal_of(request), request.match_info["item_id"])


@participant
@operation(BLOB, problems=CONTENT, statuses=PARTIAL)
async def delivery_content(request: web.Request) -> web.StreamResponse:
    """The delivery rendition's ciphertext, for its recipient, if screening allows it now."""
    ctx, who, item_id = request.app[CONTEXT], principal_of(request), request.match_info["item_id"]
    screened_after = ctx.deliveries.changes  # read before screening: see deliveries.sending
    path = await items.delivery_path(ctx, who, item_id)
    return DeliveryResponse(path, partial(deliveries.sending, ctx, item_id, who, screened_after))


@participant
@operation(s.ReceivedItem, body=ReceiptRequest, problems=(NotFound, SignatureInvalid, EnvelopeVersionUnsupported))
async def receipt(request: web.Request, body: ReceiptRequest) -> Any:
    """The recipient's signed receipt: the item is delivered."""
    return await items.acknowledge(request.app[CONTEXT], principal_of(request), request.match_info["item_id"], body)


@mediator
@operation(list[s.QueueItem])
async def queue(request: web.Request) -> Any:
    """The review queue, oldest first, each item screened as of now."""
    return await items.queue(request.app[CONTEXT], principal_of(request))


@mediator
@operation(list[s.DeskItem])
async def mediator_inbox(request: web.Request) -> Any:
    """What participants addressed to the mediators."""
    return await items.mediator_inbox(request.app[CONTEXT], principal_of(request))


@mediator
@operation(s.StaffItem, upload=DecisionRequest, problems=(*SENDING, AlreadyDecided))
async def decide(request: web.Request, body: tuple[DecisionRequest, Upload]) -> Any:
    """A mediator's signed decision (release, return, withhold), with the rendition or note as content."""
    meta, content = body
    return await items.decide(request.app[CONTEXT], principal_of(request), request.match_info["item_id"], meta,
                              content)


@mediator
@operation(s.StaffItem, problems=(NotFound,))
async def mark_read(request: web.Request) -> Any:
    """Mark an item addressed to the mediators as read."""
    return await items.mark_read(request.app[CONTEXT], principal_of(request), request.match_info["item_id"])


@public
@operation(s.Limits)
async def limits_announced(request: web.Request) -> Any:
    """What the relay accepts (sizes, kinds, uploads) and its limits: quotas, reason codes."""
    ctx = request.app[CONTEXT]
    return {**uploads.limits(ctx), **limits.announce(ctx)}
