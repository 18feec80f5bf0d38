"""Sign-in by challenge, sign-out, who am I, the signed key directory, key bundles."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from relay.server import schemas as s
from relay.server.api import operation
from relay.server.auth import guard, principal_of
from relay.server.context import CONTEXT
from relay.server.errors import LoginRefused, NotFound, RateLimited
from relay.server.models import ChallengeRequest, KioskCode, SessionRequest
from relay.server.services import accounts, cases, kiosk, sessions


@guard(session=False)
@operation(s.Challenge, status=201, body=ChallengeRequest, problems=(LoginRefused,))
async def challenge(request: web.Request, body: ChallengeRequest) -> Any:
    """A fresh single-use challenge for a person this device may serve."""
    who = principal_of(request)
    return await sessions.issue_challenge(request.app[CONTEXT], who.device, body.person_id)


@guard(session=False)
@operation(s.Session, status=201, body=SessionRequest, problems=(LoginRefused,))
async def open_session(request: web.Request, body: SessionRequest) -> Any:
    """Sign in: the challenge's login statement, signed with the person's key (docs/http-api.md)."""
    who = principal_of(request)
    return await sessions.open_session(request.app[CONTEXT], who.device, body.challenge_id, body.signature)


@guard()
@operation(status=204)
async def close_session(request: web.Request) -> web.StreamResponse:
    """Sign out: the session ends."""
    await sessions.end_session(request.app[CONTEXT], principal_of(request))
    return web.Response(status=204)


@guard()
@operation(s.Me)
async def me(request: web.Request) -> Any:
    """Who the session is: the person, the device and their cases."""
    who = principal_of(request)
    ctx = request.app[CONTEXT]
    assert who.person is not None
    return {"person": {k: who.person[k] for k in ("id", "role", "relation", "label", "institution_id")},
            "device": {k: who.device[k] for k in ("id", "kind", "institution_id", "label")},
            "cases": await cases.list_for(ctx, who)}


@guard()
@operation(s.DirectoryEntry, problems=(NotFound,))
async def directory(request: web.Request) -> Any:
    """A person's signed enrollment (public keys), for the coordinator and people sharing a case."""
    return await accounts.directory_entry(request.app[CONTEXT], principal_of(request),
                                          request.match_info["person_id"])


@guard(devices={"terminal"}, session=False)
@operation(s.KeyBundle, problems=(NotFound, RateLimited))
async def key_bundle(request: web.Request) -> Any:
    """A participant's passphrase-sealed key bundle, for a terminal of their institution (rate-limited)."""
    bundle = await accounts.key_bundle(request.app[CONTEXT], principal_of(request).device,
                                       request.match_info["person_id"])
    return {"person_id": request.match_info["person_id"], "key_bundle": bundle}


@guard(devices={"terminal"}, session=False)
@operation(s.KioskIdentity, body=KioskCode, problems=(NotFound, RateLimited))
async def kiosk_identify(request: web.Request, body: KioskCode) -> Any:
    """A participant's typed kiosk code, to the person id this terminal signs them in as."""
    return await kiosk.identify(request.app[CONTEXT], principal_of(request).device, body.code)
