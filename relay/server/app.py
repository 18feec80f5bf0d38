"""The application factory: ``create_app(settings) -> web.Application``.

Resources live in ``cleanup_ctx`` (set up, ``yield``, tear down): the database (migrations
applied, or the relay refuses to start), the blob store (temp files of interrupted uploads
swept) and the retention worker (a periodic purge). On first start with nobody enrolled, a
single-use enrollment code for the first coordinator is shown once to whoever started the
relay, never to the log (see ``relay.server.serving.bootstrap_printer``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import warnings
from collections.abc import AsyncIterator, Callable

from aiohttp import web
from aiohttp.multipart import BadContentDispositionHeader, BadContentDispositionParam

from policies.retention import Schedule
from relay.clock import Clock, SystemClock
from relay.server import logs, metrics, retention_config
from relay.server.context import CLOCK, CONTEXT, SETTINGS, STOPPING, Context, begin_stopping, stop_worker
from relay.server.problems import name_the_server, problem_middleware, security_headers
from relay.server.routes import add_routes
from relay.server.services import accounts, deliveries, retention, scrub, uploads
from relay.server.services.readiness import PURGER
from relay.server.serving import bootstrap_printer as relay_bootstrap_printer
from relay.server.serving import forget_code_file, handler_options, restrict_file_modes, serve, tighten_existing
from relay.server.settings import Settings
from storage import items
from storage import retention as retention_rows
from storage import uploads as upload_rows
from storage.blobs import BlobStore
from storage.db import Database

log = logging.getLogger(__name__)

BOOTSTRAP_PRINTER = web.AppKey("bootstrap_printer", Callable[[str], None])
SCHEDULE = web.AppKey("retention_schedule", Schedule)


async def _resources(app: web.Application) -> AsyncIterator[None]:
    # Start-up and stopping log under job ids of their own; the ids are set and reset within one
    # step of this generator, so they never leak into the server's context.
    with logs.job("startup"):
        db, purger = await _start(app)
    try:
        yield
    finally:
        with logs.job("stopping"):
            if purger is not None:
                await stop_worker(app, purger)
            await db.close()


async def _start(app: web.Application) -> tuple[Database, asyncio.Task[None] | None]:
    settings = app[SETTINGS]
    app[SCHEDULE] = retention_config.load(settings.retention_file)  # a bad file stops the start here
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if os.stat(settings.data_dir).st_mode & 0o077:
        # Refuse to run with a data directory others can read (SecureDrop's habit).
        raise RuntimeError(f"{settings.data_dir} is readable by other users; chmod 700 it")
    tighten_existing(settings.data_dir)
    with logs.job("db-writer"):  # the writer task started here keeps this id: it serves many requests
        db = await Database.open(settings.database_path)
    blobs = BlobStore(settings.blob_dir)
    swept = blobs.sweep_temp()
    orphans = blobs.sweep_unreferenced(await items.referenced_blobs(db), older_than=3600)
    if swept or orphans:
        log.info("removed %d unfinished upload(s) and %d unreferenced blob(s) left by an earlier stop",
                 swept, orphans)
    ctx = Context(settings=settings, db=db, blobs=blobs, clock=app[CLOCK], schedule=app[SCHEDULE])
    await retention_rows.record_schedule(db, schedule=retention_config.to_json(ctx.schedule), now=ctx.now_iso())
    app[CONTEXT] = ctx
    blobs.sweep_uploads(await upload_rows.all_ids(db))
    reclaimed = await uploads.reclaim_expired(ctx)  # abandoned while the relay was down, too
    if reclaimed:
        log.info("reclaimed %d expired upload(s)", reclaimed)
    code = await accounts.ensure_bootstrap_code(ctx)
    if code:
        app[BOOTSTRAP_PRINTER](code)
    else:
        forget_code_file(settings.data_dir)
    purger = (asyncio.create_task(retention.worker(ctx, app[STOPPING]), name="retention")
              if settings.purge_interval_seconds > 0 else None)
    if purger is not None:
        app[PURGER] = purger  # /readyz checks it is alive
    return db, purger


def create_app(settings: Settings, *, clock: Clock | None = None,
               bootstrap_printer: Callable[[str], None] | None = None) -> web.Application:
    # A client's malformed Content-Disposition leaves its part without a name, which the upload
    # refuses as malformed; aiohttp also warns, quoting the header: not worth a line, nor an error.
    warnings.filterwarnings("ignore", category=BadContentDispositionHeader)
    warnings.filterwarnings("ignore", category=BadContentDispositionParam)
    app = web.Application(middlewares=[logs.request_ids(trust_incoming=settings.trust_request_id), metrics.timing,
                                       security_headers, problem_middleware, deliveries.follow_changes],
                          client_max_size=settings.max_json_bytes, handler_args=handler_options(settings))
    app.on_response_prepare.append(name_the_server)
    app[SETTINGS] = settings
    app[CLOCK] = clock or SystemClock()
    metrics.install(app)
    app[BOOTSTRAP_PRINTER] = bootstrap_printer or relay_bootstrap_printer(settings)
    app[STOPPING] = asyncio.Event()
    app.on_shutdown.append(begin_stopping)
    app.cleanup_ctx.append(_resources)
    app.cleanup_ctx.append(scrub.background)  # after _resources: it needs the store
    app.cleanup_ctx.append(deliveries.background)  # a delivery under way stops when deliveries stop
    add_routes(app)
    return app


def run(settings: Settings, *, code_text: Callable[[str], str] | None = None) -> None:
    """``relay serve``: private files, then the relay until SIGINT or SIGTERM. ``code_text`` words
    the first-start code for a terminal (it never goes to the log)."""
    restrict_file_modes()
    printer = relay_bootstrap_printer(settings, text=code_text)
    asyncio.run(serve(create_app(settings, bootstrap_printer=printer), settings))
