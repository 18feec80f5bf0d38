"""What every service function needs, passed in (never a global), and the app's typed keys."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from policies.retention import Schedule
from relay.clock import Clock
from relay.server.settings import Settings
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

    def now_iso(self) -> str:
        return iso(self.clock.now())


CONTEXT = web.AppKey("context", Context)
SETTINGS = web.AppKey("settings", Settings)
CLOCK = web.AppKey("clock", Clock)  # type: ignore[type-abstract]
