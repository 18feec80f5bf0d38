"""Health, readiness and the first coordinator's enrollment: the only routes that need no device."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from relay import i18n
from relay.server import metrics, openapi
from relay.server import schemas as s
from relay.server.api import TEXT, operation
from relay.server.auth import public
from relay.server.context import CONTEXT
from relay.server.errors import BootstrapRefused, Conflict, Forbidden, NotReady, SignatureInvalid
from relay.server.models import Bootstrap
from relay.server.services import accounts, readiness
from relay.server.serving import forget_code_file


@public
@operation(dict[str, Any])
async def openapi_document(request: web.Request) -> web.StreamResponse:
    """This document: the relay's HTTP API as OpenAPI 3.1, generated from its routes, guards and models."""
    return web.Response(body=openapi.document(), content_type="application/json")


@public
@operation(s.Health)
async def health(request: web.Request) -> Any:
    """The process answers (and its database connection does)."""
    ctx = request.app[CONTEXT]
    await ctx.db.fetchone("SELECT 1")
    return {"status": "ok"}


@public
@operation(s.Readiness, problems=(NotReady,))
async def ready(request: web.Request) -> Any:
    """The relay can take work: database writable, schema current, blobs writable, disk, purge worker."""
    lang = i18n.negotiate(request.headers.get("Accept-Language"))
    return await readiness.check(request.app[CONTEXT], request.app.get(readiness.PURGER), lang)


@public
@operation(s.BootstrapResult, status=201, body=Bootstrap, problems=(BootstrapRefused, SignatureInvalid, Conflict))
async def bootstrap(request: web.Request, body: Bootstrap) -> Any:
    """Enroll the first coordinator with the single-use code the relay showed at its first start."""
    ctx = request.app[CONTEXT]
    result = await accounts.bootstrap(ctx, body)
    forget_code_file(ctx.settings.data_dir)  # used: the file would only show a dead code
    return result


@public
@operation(TEXT, problems=(Forbidden,))
async def metrics_exposition(request: web.Request) -> web.StreamResponse:
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
