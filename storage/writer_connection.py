"""The single writer's connection: aiosqlite's interface over a plain ``sqlite3`` connection,
for write tasks run whole on the writer's own thread.

Storage's functions are written once, against aiosqlite (``await conn.execute(...)``), and serve
both reads on reader connections and writes on the writer. On the writer, each of those awaits
used to be a trip between an event loop thread and aiosqlite's thread: two threads taking the
GIL from the relay's event loop for every statement (bench/writes.py: the relay's loop spent a
fifth of its time waiting for the GIL while the writer's chain of trips held it). Here every
awaitable is already settled when it is made: the statement runs at once, on the calling
thread, and :func:`run_to_end` drives a task's coroutine to its end without any event loop.
A task that awaits anything else (a sleep, a network call) is a programming error, refused.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Generator, Iterable
from typing import Any, Generic, TypeVar

from .errors import StorageError

T = TypeVar("T")


class Settled(Generic[T]):
    """An awaitable whose value is already known: awaiting it never suspends. Also an async
    context manager over that value, as aiosqlite's ``execute`` is (closing the cursor)."""

    __slots__ = ("value",)

    def __init__(self, value: T):
        self.value = value

    def __await__(self) -> Generator[Any, None, T]:
        return self.value
        yield  # never reached: it makes this a generator, one that returns at once

    async def __aenter__(self) -> T:
        return self.value

    async def __aexit__(self, *exc: object) -> None:
        close = getattr(self.value, "close", None)
        if close is not None:
            await close()


class WriterCursor:
    """aiosqlite's cursor interface over a ``sqlite3`` cursor."""

    __slots__ = ("_cursor",)

    def __init__(self, cursor: sqlite3.Cursor):
        self._cursor = cursor

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    def fetchone(self) -> Settled[Any]:
        return Settled(self._cursor.fetchone())

    def fetchall(self) -> Settled[list[Any]]:
        return Settled(self._cursor.fetchall())

    def close(self) -> Settled[None]:
        self._cursor.close()
        return Settled(None)

    def __aiter__(self) -> WriterCursor:
        return self

    async def __anext__(self) -> Any:
        row = self._cursor.fetchone()
        if row is None:
            raise StopAsyncIteration
        return row


class WriterConnection:
    """aiosqlite's connection interface (what storage uses of it) over ``sqlite3``, synchronous."""

    def __init__(self, conn: sqlite3.Connection):
        self.raw = conn

    @property
    def in_transaction(self) -> bool:
        return self.raw.in_transaction

    def execute(self, sql: str, parameters: Iterable[Any] | dict[str, Any] = ()) -> Settled[WriterCursor]:
        return Settled(WriterCursor(self.raw.execute(sql, parameters)))  # type: ignore[arg-type]

    def executemany(self, sql: str, parameters: Iterable[Any]) -> Settled[WriterCursor]:
        return Settled(WriterCursor(self.raw.executemany(sql, parameters)))

    def execute_fetchall(self, sql: str, parameters: Iterable[Any] | dict[str, Any] = ()) -> Settled[list[Any]]:
        cursor = self.raw.execute(sql, parameters)  # type: ignore[arg-type]
        try:
            return Settled(cursor.fetchall())
        finally:
            cursor.close()


def run_to_end(task: Awaitable[T]) -> T:
    """Run ``task`` (a write over a :class:`WriterConnection`) to its end, here and now."""
    steps = task.__await__()
    try:
        steps.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    close = getattr(steps, "close", None)
    if close is not None:
        close()
    raise StorageError("a write task waited on something other than the database")
