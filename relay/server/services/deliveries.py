"""Stop a delivery already under way when something stops deliveries.

Screening at fetch decides when a download starts; a video's can last minutes, and a withdrawal
of consent, a no-contact condition, a paused or closed case, a sign-out or a revocation takes
effect at once. So each delivery being streamed (``ctx.deliveries``) is checked again, as the
recipient's next request would be (their device and session, then screening at fetch), and one
no longer allowed is cut off mid-file (its connection aborted; the recipient's next request gets
the refusal in words):

- after every change the relay accepts (any request that is not a read, before its answer goes:
  once the change is acknowledged, no more bytes of a stopped delivery are sent);
- every ``delivery_recheck_seconds``, for what changes with time or outside a request (a
  condition coming into force, a session expiring, a purge, an operator's command).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from relay.server.context import CONTEXT, STOPPING, Context, stop_worker
from relay.server.errors import RelayError
from relay.server.principal import Principal
from relay.server.services import periodic, sessions
from relay.server.services.items import delivery_path
from relay.server.streaming import Streaming

log = logging.getLogger(__name__)

_READS = frozenset({"GET", "HEAD", "OPTIONS"})


async def still_allowed(ctx: Context, entry: Streaming) -> bool:
    """Whether the recipient's next request for this delivery would be served. Fails closed: a
    check that cannot be made (the database unreachable) counts as a refusal."""
    try:
        if not await sessions.still_signed_in(ctx, entry.who):
            return False
        await delivery_path(ctx, entry.who, entry.item_id)  # screening at fetch (holds what it blocks)
    except RelayError:  # a refusal, as the next request would get (NotFound, ContentDamaged)
        return False
    except Exception as exc:  # noqa: BLE001 - the check could not be made: stop, and say why
        log.warning("a delivery being streamed could not be checked again (%s): it is cut off",
                    type(exc).__name__)
        return False
    return True


async def recheck(ctx: Context) -> int:
    """Check every delivery being streamed; cut off those no longer allowed. How many were."""
    cut = 0
    for entry in ctx.deliveries:
        if not await still_allowed(ctx, entry) and ctx.deliveries.cut(entry):
            cut += 1
    if cut:
        log.info("cut off %d delivery stream(s) that screening or their session no longer allows", cut)
    return cut


@contextlib.asynccontextmanager
async def sending(ctx: Context, item_id: str, who: Principal, screened_after: int,
                  transport: asyncio.BaseTransport | None) -> AsyncIterator[bool]:
    """Known as streaming while a delivery's bytes go out; whether to send them at all.
    ``screened_after``: the changes counted before its screening began; if one was accepted
    since, its recheck may have looked before this delivery was known, so it is checked here,
    before its first byte (and cut off, its connection reset, if no longer allowed)."""
    with ctx.deliveries.streaming(item_id, who, transport) as entry:
        if entry is not None and ctx.deliveries.changes != screened_after and not await still_allowed(ctx, entry):
            ctx.deliveries.cut(entry)
            yield False
            return
        yield True


@web.middleware
async def follow_changes(request: web.Request, handler: Any) -> web.StreamResponse:
    """After a change the relay accepted, and before it is acknowledged: recheck what is streaming."""
    response: web.StreamResponse = await handler(request)
    if request.method not in _READS and response.status < 400:
        ctx = request.app.get(CONTEXT)
        if ctx is not None:
            ctx.deliveries.changes += 1  # counted even with nothing streaming: one may be screening
            if len(ctx.deliveries):
                await recheck(ctx)
    return response


async def background(app: web.Application) -> AsyncIterator[None]:
    """A ``cleanup_ctx`` entry (after the one that opens the store): the periodic recheck."""
    ctx = app[CONTEXT]

    async def run() -> None:
        if len(ctx.deliveries):
            await recheck(ctx)

    task = asyncio.create_task(periodic.every(ctx.settings.delivery_recheck_seconds, app[STOPPING], run,
                                              "delivery recheck"), name="delivery-recheck")
    try:
        yield
    finally:
        await stop_worker(app, task)
