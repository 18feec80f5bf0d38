"""Readiness: may a load balancer or an operator send this relay work now?

``/healthz`` says the process answers; ``/readyz`` says it can do its job: the database commits,
its schema is this code's, the blob store takes new files, free space is above the reserve kept
for the database, and the purge worker (when configured) is alive. Each failed check is named in
words, in the caller's language.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from relay import i18n
from relay.server import disk
from relay.server.context import Context
from relay.server.errors import NotReady
from storage import readiness

PURGER = web.AppKey("purger", asyncio.Task)  # type: ignore[type-arg]  # set by the app when it runs one
CHECKS = ("database", "schema", "blobs", "disk", "purge")


async def check(ctx: Context, purger: asyncio.Task[Any] | None, lang: str) -> dict[str, Any]:
    """The checks, each true or false; raises NotReady naming the failed ones."""
    purge_on = ctx.settings.purge_interval_seconds > 0
    results = {
        "database": await readiness.database_writable(ctx.db, ctx.now_iso()),
        "schema": await readiness.schema_current(ctx.db),
        "blobs": await asyncio.to_thread(readiness.directory_writable, ctx.settings.blob_dir / "tmp"),
        "disk": not disk.below_reserve(ctx),
        "purge": (purger is not None and not purger.done()) if purge_on else True,
    }
    failed = [name for name in CHECKS if not results[name]]
    if failed:
        raise NotReady(checks=results, problems=[i18n.text(f"not-ready.{name}", lang) for name in failed])
    # No byte counts: the route is public, and how full the disk is helps only someone filling it.
    return {"status": "ready", "checks": results}
