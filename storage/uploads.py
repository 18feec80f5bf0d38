"""Resumable uploads: who started them, how long they are, how far they got, when they expire."""

from __future__ import annotations

from typing import Any

import aiosqlite

from .db import Database
from .errors import Conflict, NotFound
from .rows import insert, one
from .session_checks import still_signed_in


async def create_within(db: Database, row: dict[str, Any], *, max_open: int) -> bool:
    """Insert the upload unless its person already has ``max_open`` of them; False if refused.
    The count and the insert run in one write transaction, so concurrent creations serialize."""

    async def run(conn: aiosqlite.Connection) -> bool:
        found = await one(conn, "SELECT COUNT(*) AS n FROM uploads WHERE person_id = ?", (row["person_id"],))
        if found is not None and int(found["n"]) >= max_open:
            return False
        await insert(conn, "uploads", row)
        return True

    return bool(await db.write(run))


async def get(db: Database, upload_id: str) -> dict[str, Any] | None:
    row = await db.fetchone("SELECT * FROM uploads WHERE id = ?", (upload_id,))
    return dict(row) if row else None


async def advance(db: Database, *, upload_id: str, from_offset: int, to_offset: int, expires_at: str,
                  session: str | None = None) -> None:
    """Record an acknowledged offset, if no other request moved it meanwhile and (with
    ``session``) the sender is still signed in (else SignedOut)."""

    async def run(conn: aiosqlite.Connection) -> None:
        await still_signed_in(conn, session)
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


async def all_ids(db: Database) -> set[str]:
    return {r[0] for r in await db.fetchall("SELECT id FROM uploads")}
