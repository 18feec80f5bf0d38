"""The single writer's thread (storage/db.py) at its edges: closing, dying, other event loops.
Found by the review of the plain-thread writer; real SQLite files, no mocks."""

from __future__ import annotations

import asyncio
import gc
import logging
import sqlite3
import threading
import time
from pathlib import Path

import aiosqlite
import pytest

from storage.db import Database
from storage.errors import StorageError

from .conftest import add_institution


def institutions(path: Path) -> list[str]:
    outside = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return [r[0] for r in outside.execute("SELECT id FROM institutions ORDER BY id")]
    finally:
        outside.close()


def test_a_database_closes_from_an_event_loop_other_than_the_one_that_opened_it(tmp_path: Path) -> None:
    """Writes are accepted from any loop (each caller hears back on its own); close was not: it
    awaited a future of the opening loop, failed, and having marked the database closed, every
    later close returned at once with the writer's and the readers' connections still open."""
    path = tmp_path / "relay.sqlite3"
    opening = asyncio.new_event_loop()
    db = opening.run_until_complete(Database.open(path, readers=1))
    other = asyncio.new_event_loop()
    try:
        other.run_until_complete(db.write(add_institution("from-the-other-loop")))
        other.run_until_complete(asyncio.wait_for(db.close(), 10))
        with pytest.raises(sqlite3.ProgrammingError):  # the writer's connection is closed
            db._writer.raw.execute("SELECT 1")
        with pytest.raises(StorageError, match="closed"):
            other.run_until_complete(db.write(add_institution("after")))
    finally:
        other.close()
        opening.close()
    assert institutions(path) == ["from-the-other-loop"]


def test_a_database_closes_after_the_loop_that_opened_it_is_gone(tmp_path: Path) -> None:
    path = tmp_path / "relay.sqlite3"
    opening = asyncio.new_event_loop()
    db = opening.run_until_complete(Database.open(path, readers=1))
    opening.run_until_complete(db.write(add_institution("a")))
    opening.close()
    asyncio.run(asyncio.wait_for(db.close(), 10))
    with pytest.raises(sqlite3.ProgrammingError):
        db._writer.raw.execute("SELECT 1")
    assert institutions(path) == ["a"]


async def test_a_writer_that_died_does_not_keep_the_database_locked_against_other_processes(tmp_path: Path) -> None:
    """The writer dies on whatever escapes a batch (not an Exception). Its transaction was left
    open until close, holding SQLite's write lock: the operator's commands, which may run beside
    the relay (relay/server/admin.py), were refused with 'database is locked' meanwhile."""
    path = tmp_path / "relay.sqlite3"
    db = await Database.open(path, readers=1)

    class Escapes(BaseException):
        pass

    async def fatal(conn: aiosqlite.Connection) -> None:
        await conn.execute("INSERT INTO institutions (id, name, created_at) VALUES ('x', 'x', 'now')")
        raise Escapes()

    try:
        with pytest.raises(StorageError, match="writer stopped"):
            await asyncio.wait_for(db.write(fatal), 10)
        operator = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            operator.execute("BEGIN IMMEDIATE")  # another process's write transaction
            operator.execute("INSERT INTO institutions (id, name, created_at) VALUES ('op', 'op', 'now')")
            operator.execute("COMMIT")
        finally:
            operator.close()
    finally:
        await db.close()
    assert institutions(path) == ["op"]  # and nothing of the task that killed the writer


async def test_the_writers_own_log_lines_carry_its_job_id(tmp_path: Path) -> None:
    """relay/server/logs.py: background work logs under its job id, the database writer's lines
    too (the relay opens the database inside ``logs.job("db-writer")``). A plain thread starts
    with an empty context, so the writer's own lines ('write transaction failed', 'the database
    writer stopped') carried no id at all."""
    from relay.server import logs

    seen: list[tuple[str, str | None]] = []

    class Remember(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:  # runs in the thread that logs
            seen.append((record.getMessage(), logs.JOB_ID.get()))

    handler = Remember()
    logging.getLogger("storage.db").addHandler(handler)
    try:
        with logs.job("db-writer") as job_id:
            db = await Database.open(tmp_path / "relay.sqlite3", readers=1)

        class Escapes(BaseException):
            pass

        async def fatal(conn: aiosqlite.Connection) -> None:
            raise Escapes()

        try:
            with pytest.raises(StorageError, match="writer stopped"):
                await asyncio.wait_for(db.write(fatal), 10)
        finally:
            await db.close()
    finally:
        logging.getLogger("storage.db").removeHandler(handler)
    stopped = [job for message, job in seen if message.startswith("the database writer stopped")]
    assert stopped == [job_id], seen


def test_a_checkpoint_is_asked_for_from_any_event_loop(tmp_path: Path) -> None:
    """As writes are: a checkpoint waited on a future of the opening loop, so one asked for on
    another loop failed ('attached to a different loop') and left that future to the next."""
    path = tmp_path / "relay.sqlite3"
    opening = asyncio.new_event_loop()
    db = opening.run_until_complete(Database.open(path, readers=1))
    other = asyncio.new_event_loop()
    try:
        other.run_until_complete(db.write(add_institution("a")))
        assert other.run_until_complete(asyncio.wait_for(db.checkpoint(), 10)) is True
        opening.run_until_complete(db.write(add_institution("b")))
        assert opening.run_until_complete(asyncio.wait_for(db.checkpoint(), 10)) is True
        other.run_until_complete(db.close())
    finally:
        other.close()
        opening.close()
    assert institutions(path) == ["a", "b"]


async def test_nothing_is_queued_behind_the_writers_stop(tmp_path: Path) -> None:
    """write() checks that the database is open, then queues: a write from another thread could
    pass the check, close queue the writer's stop meanwhile, and the write land behind it, never
    run and never answered. Queueing now refuses under the same lock that close queues its stop
    under (here the queueing step itself, just after close)."""
    from storage.db import _Task

    db = await Database.open(tmp_path / "relay.sqlite3", readers=1)
    await db.close()
    loop = asyncio.get_running_loop()
    late: asyncio.Future[None] = loop.create_future()
    db._enqueue(_Task(add_institution("late"), late, loop))
    with pytest.raises(StorageError, match="closed"):
        await asyncio.wait_for(late, 5)


async def test_a_failed_write_whose_caller_was_cancelled_leaves_no_line_from_asyncio(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A caller cancelled while its write waits (the write is shielded: it still runs) is not
    told how it ended. Its failure was left unretrieved, and asyncio logged "Future exception was
    never retrieved" at ERROR with the exception's repr, its message included: the one thing the
    relay's log never prints (relay/server/logs.py). The writer logs a failed transaction itself."""
    db = await Database.open(tmp_path / "relay.sqlite3", readers=1)
    try:
        started = threading.Event()

        async def slow(conn: aiosqlite.Connection) -> None:
            started.set()
            time.sleep(0.3)  # the writer's own thread: the next write waits in the queue

        async def failing(conn: aiosqlite.Connection) -> None:
            raise ValueError("Jane Doe's letter")

        first = asyncio.create_task(db.write(slow))
        assert await asyncio.to_thread(started.wait, 10)
        caller = asyncio.create_task(db.write(failing))
        await asyncio.sleep(0.05)
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
        await first
        await db.write(add_institution("after"))  # the failing write has been settled before this one
        del caller
        caplog.set_level(logging.DEBUG, logger="asyncio")
        gc.collect()
        await asyncio.sleep(0)
        assert not [r for r in caplog.records if r.name == "asyncio"], caplog.text
        assert "Jane" not in caplog.text
    finally:
        await db.close()
