"""Small helpers shared by the storage modules: who acted, and dict-shaped rows."""

from __future__ import annotations

import sqlite3
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


# One trip to the connection's thread each (execute and fetch together), not three (execute,
# fetch, close the cursor): each trip costs more than the small selects these helpers carry.


async def one(conn: aiosqlite.Connection, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()
              ) -> dict[str, Any] | None:
    rows = await conn.execute_fetchall(sql, params)
    return next((dict(r) for r in rows), None)


async def many(conn: aiosqlite.Connection, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    return [dict(r) for r in await conn.execute_fetchall(sql, params)]


# The same over a plain connection, inside :meth:`storage.db.Database.snapshot`.


def one_now(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...] = ()) -> dict[str, Any] | None:
    row = conn.execute(sql, params).fetchone()
    return dict(row) if row is not None else None


def many_now(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(sql, params).fetchall()]
