"""Housekeeping that runs inside the relay every so often (the purge, the scrub)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from relay.server import logs

log = logging.getLogger(__name__)


async def every(interval: float, stop: asyncio.Event, run: Callable[[], Awaitable[object]], what: str) -> None:
    """Run ``run`` every ``interval`` seconds until ``stop`` is set: at once while resting, and
    between its own steps (``run`` watches ``stop`` too). A failed run is logged by its type and
    tried again next time: housekeeping never takes the server down. Each run's lines carry a job id
    of their own (``retention-run-3fa9c2d1``), never a request's."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
        if stop.is_set():
            return
        with logs.job(what.replace(" ", "-")):
            try:
                await run()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # say so, and try again at the next interval
                log.error("%s failed (%s); it runs again in %.0f s", what, type(exc).__name__, interval)
