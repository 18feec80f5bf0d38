"""Sign-in by challenge, sign-out, who am I, the signed key directory, key bundles."""

from __future__ import annotations

from aiohttp import web

from relay.server.auth import guard, principal_of
from relay.server.bodies import json_body
from relay.server.context import CONTEXT
from relay.server.handlers.common import ok
from relay.server.models import ChallengeRequest, KioskCode, SessionRequest
from relay.server.services import accounts, cases, kiosk, sessions


@guard(session=False)
async def challenge(request: web.Request) -> web.Response:
    body = await json_body(request, ChallengeRequest)
    who = principal_of(request)
    return ok(await sessions.issue_challenge(request.app[CONTEXT], who.device, body.person_id), status=201)


@guard(session=False)
async def open_session(request: web.Request) -> web.Response:
    body = await json_body(request, SessionRequest)
    who = principal_of(request)
    return ok(await sessions.open_session(request.app[CONTEXT], who.device, body.challenge_id, body.signature),
              status=201)


@guard()
async def close_session(request: web.Request) -> web.Response:
    await sessions.end_session(request.app[CONTEXT], principal_of(request))
    return web.Response(status=204)


@guard()
async def me(request: web.Request) -> web.Response:
    who = principal_of(request)
    ctx = request.app[CONTEXT]
    assert who.person is not None
    return ok({"person": {k: who.person[k] for k in ("id", "role", "relation", "label", "institution_id")},
               "device": {k: who.device[k] for k in ("id", "kind", "institution_id", "label")},
               "cases": await cases.list_for(ctx, who)})


@guard()
async def directory(request: web.Request) -> web.Response:
    return ok(await accounts.directory_entry(request.app[CONTEXT], principal_of(request),
                                             request.match_info["person_id"]))


@guard(devices={"terminal"}, session=False)
async def key_bundle(request: web.Request) -> web.Response:
    bundle = await accounts.key_bundle(request.app[CONTEXT], principal_of(request).device,
                                       request.match_info["person_id"])
    return ok({"person_id": request.match_info["person_id"], "key_bundle": bundle})


@guard(devices={"terminal"}, session=False)
async def kiosk_identify(request: web.Request) -> web.Response:
    """A participant's typed kiosk code, to the person id this terminal signs them in as."""
    body = await json_body(request, KioskCode)
    return ok(await kiosk.identify(request.app[CONTEXT], principal_of(request).device, body.code))
