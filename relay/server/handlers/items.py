"""Items: participants send and read, mediators review and write, terminals deliver."""

from __future__ import annotations

from aiohttp import web

from relay.server.auth import guard, principal_of, public
from relay.server.bodies import json_body, upload
from relay.server.context import CONTEXT
from relay.server.handlers.common import blob, ok
from relay.server.metrics import METRICS
from relay.server.models import DecisionRequest, ReceiptRequest, Submission
from relay.server.services import items, limits, uploads

PEOPLE_DEVICES = {"participant_device", "terminal", "mediator_desk"}
sender = guard(devices=PEOPLE_DEVICES, roles={"participant", "mediator"})
participant = guard(devices={"participant_device", "terminal"}, roles={"participant"})
mediator = guard(devices={"mediator_desk"}, roles={"mediator"})


@sender
async def submit(request: web.Request) -> web.Response:
    request.app[METRICS].upload_bytes.inc(request.content_length or 0)
    meta, body = await upload(request, Submission)
    return ok(await items.submit(request.app[CONTEXT], principal_of(request), meta, body), 201)


@sender
async def sent(request: web.Request) -> web.Response:
    return ok(await items.sent(request.app[CONTEXT], principal_of(request)))


@sender
async def original(request: web.Request) -> web.Response:
    return ok(await items.original(request.app[CONTEXT], principal_of(request), request.match_info["item_id"]))


@sender
async def original_content(request: web.Request) -> web.FileResponse:
    return blob(await items.original_path(request.app[CONTEXT], principal_of(request), request.match_info["item_id"]))


@sender
async def poster(request: web.Request) -> web.FileResponse:
    return blob(await items.poster_path(request.app[CONTEXT], principal_of(request), request.match_info["item_id"]))


@participant
async def note(request: web.Request) -> web.Response:
    view, _ = await items.note(request.app[CONTEXT], principal_of(request), request.match_info["item_id"])
    return ok(view)


@participant
async def note_content(request: web.Request) -> web.FileResponse:
    _, path = await items.note(request.app[CONTEXT], principal_of(request), request.match_info["item_id"])
    return blob(path)


@participant
async def inbox(request: web.Request) -> web.Response:
    return ok(await items.inbox(request.app[CONTEXT], principal_of(request)))


@participant
async def delivery(request: web.Request) -> web.Response:
    return ok(await items.delivery(request.app[CONTEXT], principal_of(request), request.match_info["item_id"]))


@participant
async def delivery_content(request: web.Request) -> web.FileResponse:
    return blob(await items.delivery_path(request.app[CONTEXT], principal_of(request), request.match_info["item_id"]))


@participant
async def receipt(request: web.Request) -> web.Response:
    body = await json_body(request, ReceiptRequest)
    return ok(await items.acknowledge(request.app[CONTEXT], principal_of(request), request.match_info["item_id"], body))


@mediator
async def queue(request: web.Request) -> web.Response:
    return ok(await items.queue(request.app[CONTEXT], principal_of(request)))


@mediator
async def mediator_inbox(request: web.Request) -> web.Response:
    return ok(await items.mediator_inbox(request.app[CONTEXT], principal_of(request)))


@mediator
async def decide(request: web.Request) -> web.Response:
    meta, body = await upload(request, DecisionRequest)
    return ok(await items.decide(request.app[CONTEXT], principal_of(request), request.match_info["item_id"], meta, body))


@mediator
async def mark_read(request: web.Request) -> web.Response:
    return ok(await items.mark_read(request.app[CONTEXT], principal_of(request), request.match_info["item_id"]))


@public
async def limits_announced(request: web.Request) -> web.Response:
    """What the relay accepts (sizes, kinds, uploads) and its limits: quotas, reason codes."""
    ctx = request.app[CONTEXT]
    return ok({**uploads.limits(ctx), **limits.announce(ctx)})
