"""Health and the first coordinator's enrollment: the only routes that need no device."""

from __future__ import annotations

from aiohttp import web

from relay.server.auth import public
from relay.server.bodies import json_body
from relay.server.context import CONTEXT
from relay.server.handlers.common import ok
from relay.server.models import Bootstrap
from relay.server.services import accounts


@public
async def health(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    await ctx.db.fetchone("SELECT 1")
    return ok({"status": "ok"})


@public
async def bootstrap(request: web.Request) -> web.Response:
    body = await json_body(request, Bootstrap)
    return ok(await accounts.bootstrap(request.app[CONTEXT], body), status=201)
