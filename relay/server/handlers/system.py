"""Health, readiness and the first coordinator's enrollment: the only routes that need no device."""

from __future__ import annotations

from aiohttp import web

from relay import i18n
from relay.server import metrics
from relay.server.auth import public
from relay.server.bodies import json_body
from relay.server.context import CONTEXT
from relay.server.errors import Forbidden
from relay.server.handlers.common import ok
from relay.server.models import Bootstrap
from relay.server.services import accounts, readiness
from relay.server.serving import forget_code_file


@public
async def health(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    await ctx.db.fetchone("SELECT 1")
    return ok({"status": "ok"})


@public
async def ready(request: web.Request) -> web.Response:
    lang = i18n.negotiate(request.headers.get("Accept-Language"))
    return ok(await readiness.check(request.app[CONTEXT], request.app.get(readiness.PURGER), lang))


@public
async def bootstrap(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    body = await json_body(request, Bootstrap)
    result = await accounts.bootstrap(ctx, body)
    forget_code_file(ctx.settings.data_dir)  # used: the file would only show a dead code
    return ok(result, status=201)


@public
async def metrics_exposition(request: web.Request) -> web.Response:
    """Prometheus metrics (no identifier of a person, case or item in any label)."""
    ctx = request.app[CONTEXT]
    token = ctx.settings.metrics_token
    if not metrics.may_read(request, token.get_secret_value() if token is not None else None):
        raise Forbidden()
    await metrics.refresh(request.app, ctx)
    body, content_type = metrics.exposition(request.app)
    response = web.Response(body=body)
    response.headers["Content-Type"] = content_type
    response.headers["Cache-Control"] = "no-store"
    return response
