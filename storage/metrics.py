"""Counts for the relay's metrics (``GET /metrics``): aggregates only, never an identifier."""

from __future__ import annotations

from dataclasses import dataclass

from .db import Database


@dataclass(frozen=True)
class Counts:
    items_by_state: dict[str, int]
    review_queue: int
    oldest_waiting_since: str | None  # ISO time the oldest item waiting for review was acknowledged
    purged_by_rule: dict[str, int]


async def counts(db: Database) -> Counts:
    states = {row[0]: int(row[1]) for row in await db.fetchall("SELECT state, COUNT(*) FROM items GROUP BY state")}
    waiting = await db.fetchone("SELECT COUNT(*), MIN(submitted_at) FROM items"
                                " WHERE state IN ('pending_review', 'held') AND decided_at IS NULL")
    purged = {row[0]: int(row[1]) for row in await db.fetchall("SELECT rule, purged FROM retention_counts")}
    return Counts(states, int(waiting[0]) if waiting else 0, waiting[1] if waiting else None, purged)
