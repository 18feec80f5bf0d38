"""Small helpers shared by the storage modules: who acted, and dict-shaped rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiosqlite


@dataclass(frozen=True)
class Actor:
    """Who caused a write, for the audit chain: ids only."""

    person: str | None
    device: str | None


SYSTEM = Actor(person=None, device=None)


async def insert(conn: aiosqlite.Connection, table: str, row: dict[str, Any]) -> None:
    # Table and column names come from our own code, never from a request.
    columns = ", ".join(row)
    marks = ", ".join("?" for _ in row)
    await conn.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", tuple(row.values()))


async def one(conn: aiosqlite.Connection, sql: str, params: tuple[Any, ...] = ()) -> dict[str, Any] | None:
    async with conn.execute(sql, params) as cur:
        row = await cur.fetchone()
    return dict(row) if row is not None else None


async def many(conn: aiosqlite.Connection, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    async with conn.execute(sql, params) as cur:
        return [dict(r) for r in await cur.fetchall()]
