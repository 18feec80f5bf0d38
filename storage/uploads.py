"""Resumable uploads: who started them, how long they are, how far they got, when they expire."""

from __future__ import annotations

from typing import Any

import aiosqlite

from .db import Database
from .errors import Conflict, NotFound
from .rows import insert, one


async def create(db: Database, row: dict[str, Any]) -> None:
    async def run(conn: aiosqlite.Connection) -> None:
        await insert(conn, "uploads", row)

    await db.write(run)


async def get(db: Database, upload_id: str) -> dict[str, Any] | None:
    row = await db.fetchone("SELECT * FROM uploads WHERE id = ?", (upload_id,))
    return dict(row) if row else None


async def advance(db: Database, *, upload_id: str, from_offset: int, to_offset: int, expires_at: str) -> None:
    """Record an acknowledged offset, if no other request moved it meanwhile."""

    async def run(conn: aiosqlite.Connection) -> None:
        cur = await conn.execute("UPDATE uploads SET offset = ?, expires_at = ? WHERE id = ? AND offset = ?",
                                 (to_offset, expires_at, upload_id, from_offset))
        if cur.rowcount != 1:
            raise Conflict("the upload moved on")

    await db.write(run)


async def remove(db: Database, upload_id: str) -> None:
    async def run(conn: aiosqlite.Connection) -> None:
        if (await one(conn, "SELECT id FROM uploads WHERE id = ?", (upload_id,))) is None:
            raise NotFound("upload")
        await conn.execute("DELETE FROM uploads WHERE id = ?", (upload_id,))

    await db.write(run)


async def expired(db: Database, now: str) -> list[str]:
    return [r[0] for r in await db.fetchall("SELECT id FROM uploads WHERE expires_at <= ?", (now,))]


async def open_count(db: Database, person_id: str) -> int:
    row = await db.fetchone("SELECT COUNT(*) FROM uploads WHERE person_id = ?", (person_id,))
    return int(row[0]) if row else 0


async def all_ids(db: Database) -> set[str]:
    return {r[0] for r in await db.fetchall("SELECT id FROM uploads")}
