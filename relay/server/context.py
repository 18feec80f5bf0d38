"""What every service function needs, passed in (never a global), and the app's typed keys."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from aiohttp import web

from policies.retention import Schedule
from relay.clock import Clock
from relay.server.settings import Settings
from relay.server.streaming import Deliveries
from storage.blobs import BlobStore
from storage.clock import iso
from storage.db import Database


@dataclass(frozen=True)
class Context:
    settings: Settings
    db: Database
    blobs: BlobStore
    clock: Clock
    schedule: Schedule = Schedule()  # the retention schedule the relay started with
    deliveries: Deliveries = field(default_factory=Deliveries)  # being streamed now (services.deliveries)

    def now_iso(self) -> str:
        return iso(self.clock.now())


CONTEXT = web.AppKey("context", Context)
SETTINGS = web.AppKey("settings", Settings)
CLOCK = web.AppKey("clock", Clock)  # type: ignore[type-abstract]
# Set when the relay begins to stop: background workers finish the step they are in, then end.
STOPPING = web.AppKey("stopping", asyncio.Event)


async def begin_stopping(app: web.Application) -> None:
    """``on_shutdown``: the relay is stopping (before requests in flight are waited for)."""
    app[STOPPING].set()


async def stop_worker(app: web.Application, task: asyncio.Task[None]) -> None:
    """End a background worker between two of its steps: it sees ``STOPPING`` and returns. One
    still busy after the shutdown grace is cancelled (each of its steps is crash-safe anyway)."""
    app[STOPPING].set()
    done, _ = await asyncio.wait([task], timeout=app[SETTINGS].shutdown_grace_seconds)
    if not done:
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
