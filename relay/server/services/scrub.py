"""The scrub: recheck every stored blob against the size and hash that were signed for it.

A disk can flip a bit, and a restore can bring back a truncated file; the relay would then serve
bytes that no longer match their manifest (the recipient's client notices, but only then). The
relay knows every blob's size and hash (the sender's manifest for the original and its poster
frame, the mediator's signed decision for the delivery rendition or return note), so it checks
them itself: ``relay scrub`` by hand, and a slow background pass inside the relay that works at
most ``scrub_duty`` of the time so requests keep their latency.

A blob that does not match marks its item damaged (``items.damaged_at``, ``damaged_part``) with
an ``item.damaged`` audit entry naming the part: fetching that blob then answers the
``content-damaged`` problem instead of wrong bytes, and the mediator's queue and inbox flag the
item so the mediator can ask the sender for it again. Nothing is deleted: the evidence stays.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from relay.envelope import documents
from relay.server.context import CONTEXT, STOPPING, Context, stop_worker
from relay.server.services import periodic
from storage import items
from storage.errors import BlobPathError

log = logging.getLogger(__name__)

PAGE = 100
_READ = 1024 * 1024


@dataclass
class Report:
    items: int = 0
    blobs: int = 0
    bytes: int = 0
    damaged: list[tuple[str, str]] = field(default_factory=list)  # (item id, part)
    newly_marked: int = 0


def expected_blobs(item: dict[str, Any]) -> list[tuple[str, str, int, str]]:
    """(part, blob id, size, hash) of each blob the item keeps, as its signed documents name them."""
    found = [("original", item["blob_id"], int(item["size"]), item["hash"])]
    if item.get("poster_blob_id"):
        poster = json.loads(item["manifest"]).get("poster") or {}
        found.append(("poster", item["poster_blob_id"], int(poster.get("size", -1)), str(poster.get("hash", ""))))
    if item.get("delivery_blob_id") and item["delivery_blob_id"] != item["blob_id"] and item.get("decision_doc"):
        delivery = json.loads(item["decision_doc"]).get("delivery") or {}
        found.append(("delivery", item["delivery_blob_id"], int(delivery.get("size", -1)),
                      str(delivery.get("hash", ""))))
    return found


def blob_matches(path: Path, size: int, expect_hash: str) -> bool:
    """True if the file is exactly ``size`` bytes hashing to ``expect_hash`` (read in chunks)."""
    try:
        if os.stat(path).st_size != size:
            return False
        hasher = documents.new_hasher()
        with open(path, "rb") as handle:
            while chunk := handle.read(_READ):
                hasher.update(chunk)
    except OSError:  # missing or unreadable: damaged all the same
        return False
    return bool(hasher.hexdigest() == expect_hash)


async def scrub(ctx: Context, *, duty: float = 1.0, stop: asyncio.Event | None = None) -> Report:
    """One pass over every stored item. ``duty`` < 1 rests between blobs so that the pass works
    at most that share of the time. When ``stop`` is set the pass ends after the blob it is on."""
    report = Report()
    rest = 1 / duty - 1
    after = ""
    while page := await items.scrub_page(ctx.db, after_id=after, limit=PAGE):
        after = page[-1]["id"]
        for item in page:
            if stop is not None and stop.is_set():
                return report
            report.items += 1
            for part, blob_id, size, expect_hash in expected_blobs(item):
                began = time.perf_counter()
                try:
                    path = ctx.blobs.path(blob_id)
                except BlobPathError:
                    intact = False
                else:
                    intact = await asyncio.to_thread(blob_matches, path, size, expect_hash)
                report.blobs += 1
                report.bytes += max(size, 0)
                if not intact:
                    report.damaged.append((item["id"], part))
                    if await items.mark_damaged(ctx.db, item_id=item["id"], part=part, now=ctx.now_iso()):
                        report.newly_marked += 1
                        log.warning("scrub: item %s: its %s blob does not match its signed size and hash",
                                    item["id"], part)
                if rest:
                    await asyncio.sleep((time.perf_counter() - began) * rest)
    return report


async def worker(ctx: Context, stop: asyncio.Event | None = None) -> None:
    """The slow background pass inside the relay; a failed pass is logged and retried next time.
    It ends when ``stop`` is set, between two items (or at once while resting)."""
    stop = stop or asyncio.Event()
    watched = stop

    async def one_pass() -> None:
        report = await scrub(ctx, duty=ctx.settings.scrub_duty, stop=watched)
        if report.damaged:
            log.warning("scrub: %d damaged blob(s) in %d item(s) checked", len(report.damaged), report.items)

    await periodic.every(ctx.settings.scrub_interval_seconds, stop, one_pass, "scrub")


async def background(app: web.Application) -> AsyncIterator[None]:
    """A ``cleanup_ctx`` entry (after the one that opens the store): the scrub worker's lifetime."""
    ctx = app[CONTEXT]
    task = (asyncio.create_task(worker(ctx, app[STOPPING]), name="scrub")
            if ctx.settings.scrub_interval_seconds > 0 else None)
    try:
        yield
    finally:
        if task is not None:
            await stop_worker(app, task)
