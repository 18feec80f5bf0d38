"""The paths under load (bench/load.py, bench/writes.py): few trips to the database's threads per
request (each trip costs more than the selects it carries), the small reads every request makes
as one snapshot each, run on the event loop but never waiting there for a lock, nothing about who
is asking kept between requests (a revocation counts on the very next one), and writes that
arrive together sharing one commit."""

from __future__ import annotations

import asyncio
import io
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import aiohttp.helpers
import aiosqlite
import pytest

from relay.client.scenario import World
from relay.client.sdk import ProblemError
from storage.db import Database
from storage.errors import StorageError
from tests.conftest import Relay, add_institution, close, everyone

LETTER = b"A short letter."


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(tmp_path / "db" / "relay.sqlite3")
    yield database
    await database.close()


def count_institutions(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COUNT(*) FROM institutions").fetchone()[0])


def busy_on_the_loop(fn: Any) -> Any:
    """``fn``, except that on the event loop's thread SQLite answers busy (as it does during a
    WAL recovery): the snapshot must run it again on a reader thread."""
    loop_thread = threading.get_ident()

    def run(conn: sqlite3.Connection) -> Any:
        if threading.get_ident() == loop_thread:
            busy = sqlite3.OperationalError("database is locked")
            busy.sqlite_errorcode = sqlite3.SQLITE_BUSY  # type: ignore[attr-defined]
            raise busy
        return fn(conn)

    return run


@pytest.mark.parametrize("where", ["on the loop", "on a reader thread"])
async def test_a_snapshot_is_one_state_while_a_write_commits(db: Database, where: str) -> None:
    def twice(conn: sqlite3.Connection) -> tuple[int, int]:
        before = count_institutions(conn)
        other = sqlite3.connect(db.path, isolation_level=None)  # another writer commits meanwhile
        other.execute("INSERT INTO institutions (id, name, created_at) VALUES ('new', 'new', 'now')")
        other.close()
        return before, count_institutions(conn)

    assert await db.snapshot(twice if where == "on the loop" else busy_on_the_loop(twice)) == (0, 0)
    assert await db.snapshot(count_institutions) == 1  # and the next snapshot sees it


async def test_a_snapshot_runs_on_the_loop_and_waits_for_no_lock_there(db: Database) -> None:
    assert await db.snapshot(lambda conn: threading.get_ident()) == threading.get_ident()
    ticks = 0

    async def ticking() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(ticking())
    try:
        def slow(conn: sqlite3.Connection) -> int:
            threading.Event().wait(0.3)  # a reader thread waiting for a lock
            return threading.get_ident()

        assert await db.snapshot(busy_on_the_loop(slow)) != threading.get_ident()
        assert ticks >= 10  # the loop went on meanwhile
    finally:
        ticker.cancel()


async def test_a_snapshot_cannot_write(db: Database) -> None:
    with pytest.raises(sqlite3.OperationalError):
        await db.snapshot(lambda conn: conn.execute("INSERT INTO institutions (id, name, created_at)"
                                                    " VALUES ('r', 'r', 'now')"))
    assert await db.snapshot(count_institutions) == 0


async def test_a_cursor_left_half_read_does_not_freeze_later_snapshots(db: Database) -> None:
    """Found by review: a snapshot that failed with a cursor half-read, the cursor still held (by
    the exception's traceback), kept its read transaction open, so every later snapshot on the
    loop's connection saw the database as it was (a revocation committed since: not seen)."""
    for name in ("a", "b"):
        await db.write(add_institution(name))

    def fails_half_read(conn: sqlite3.Connection) -> None:
        cursor = conn.execute("SELECT id FROM institutions")
        cursor.fetchone()
        raise LookupError("half-read")

    def fails_half_read_by_cursor(conn: sqlite3.Connection) -> None:
        cursor = conn.cursor()
        cursor.execute("SELECT id FROM institutions")
        cursor.fetchone()
        raise LookupError("half-read")

    with pytest.raises(LookupError) as kept:  # the traceback keeps the cursor alive
        await db.snapshot(fails_half_read)
    await db.write(add_institution("c"))
    assert await db.snapshot(count_institutions) == 3
    with pytest.raises(LookupError) as kept_too:
        await db.snapshot(fails_half_read_by_cursor)
    await db.write(add_institution("d"))
    assert await db.snapshot(count_institutions) == 4
    assert kept.value is not None and kept_too.value is not None


async def test_a_writer_that_died_fails_its_writes_instead_of_leaving_them_waiting(db: Database) -> None:
    """Found by review: if anything escaped the writer's loop, every write then waited forever.
    The writes it held fail, and later ones are refused at once; close still releases all."""

    class Escapes(BaseException):  # not an Exception: past the batch's own error handling
        pass

    async def fatal(conn: aiosqlite.Connection) -> None:
        raise Escapes()

    async with asyncio.timeout(10):
        dying = asyncio.ensure_future(db.write(fatal))
        checkpoint = asyncio.ensure_future(db.checkpoint())  # queued behind the write that kills it
        with pytest.raises(StorageError, match="writer stopped"):
            await dying
        with pytest.raises(StorageError, match="writer stopped"):
            await checkpoint
        with pytest.raises(StorageError, match="writer stopped"):
            await db.write(add_institution("after"))
        with pytest.raises(StorageError, match="writer stopped"):
            await db.checkpoint()
    assert await db.snapshot(count_institutions) == 0  # reads still work


async def test_a_cancelled_snapshot_keeps_its_thread_connection_until_its_thread_is_done(db: Database) -> None:
    running, finish = threading.Event(), threading.Event()

    def slow(conn: sqlite3.Connection) -> int:
        running.set()
        assert finish.wait(10)
        return count_institutions(conn)

    first = asyncio.create_task(db.snapshot(busy_on_the_loop(slow)))
    assert await asyncio.to_thread(running.wait, 10)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    # The cancelled one's connection is still in use: every other one still serves, in parallel.
    others = [asyncio.create_task(db.snapshot(busy_on_the_loop(count_institutions))) for _ in range(2)]
    assert await asyncio.wait_for(asyncio.gather(*others), 10) == [0, 0]
    finish.set()
    await asyncio.sleep(0.1)
    assert await db.snapshot(busy_on_the_loop(count_institutions)) == 0


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every read or write of the database: an aiosqlite call (a trip to its thread) or a
    snapshot, counted on the way to the real ones."""
    seen: list[str] = []
    real_execute, real_snapshot = aiosqlite.Connection._execute, getattr(Database, "snapshot", None)

    async def execute(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append("aiosqlite")
        return await real_execute(self, fn, *args, **kwargs)

    async def snapshot(self: Database, fn: Any) -> Any:
        seen.append("snapshot")
        assert real_snapshot is not None
        return await real_snapshot(self, fn)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", execute)
    monkeypatch.setattr(Database, "snapshot", snapshot, raising=False)
    return seen


async def test_an_inbox_request_reads_the_database_twice(world: World, trips: list[str]) -> None:
    coordinator, victim, mediator, offender = await everyone(world)
    try:
        for _ in range(2):
            await mediator.send(case_id=world.case_id, recipient=world.offender.person_id,
                                src=io.BytesIO(LETTER))
        trips.clear()
        listed = await offender.call("GET", "/v1/inbox")
        assert len(listed) == 2
        # Who is asking (device, session, person, where a kiosk may serve them) in one snapshot;
        # the items and their case (what screening decides on) in the other. It was 25 trips to
        # aiosqlite's threads.
        assert trips == ["snapshot", "snapshot"]
    finally:
        await close(coordinator, victim, mediator, offender)


async def test_a_revocation_counts_on_the_very_next_request(relay: Relay, world: World) -> None:
    coordinator, victim, mediator, offender = await everyone(world)
    try:
        assert await victim.call("GET", "/v1/inbox") == []
        await coordinator.call("POST", f"/v1/devices/{victim._device_id()}/revoke", json_body={})
        with pytest.raises(ProblemError) as refused:
            await victim.call("GET", "/v1/inbox")
        assert refused.value.status == 401
        assert await offender.call("GET", "/v1/inbox") == []
        token = offender.session_token
        await offender.logout()
        offender.session_token = token  # the ended session's token, shown again
        with pytest.raises(ProblemError) as ended:
            await offender.call("GET", "/v1/inbox")
        assert ended.value.status == 401
    finally:
        await close(coordinator, victim, mediator, offender)


async def while_the_writer_is_busy(db: Database, *writes: Any) -> list[Any]:
    """Send ``writes`` while the single writer runs a slow task of its own, so that they wait
    for it together (the writer runs on a thread of its own)."""
    started = threading.Event()

    async def slow(conn: aiosqlite.Connection) -> None:
        started.set()
        time.sleep(0.3)  # the writer's own thread: it runs each task whole

    first = asyncio.create_task(db.write(slow))
    assert await asyncio.to_thread(started.wait, 10)
    done = await asyncio.gather(*(db.write(w) for w in writes), return_exceptions=True)
    await first
    return done


async def test_writes_that_arrive_together_share_a_commit(db: Database) -> None:
    await while_the_writer_is_busy(db, *(add_institution(f"i{n:02}") for n in range(50)))
    assert db.committed_writes == 51
    assert db.commits == 2, db.commits  # group commit: one fsync for the fifty, not one each
    assert await db.snapshot(count_institutions) == 50


async def test_a_letters_state_changes_take_few_trips_to_the_database(world: World, trips: list[str]) -> None:
    """Submitted, released, received: each whole SDK step (its reads and its one durable write on
    the single writer, whose trips follow one another) in few trips."""
    coordinator, victim, mediator, offender = await everyone(world)
    try:
        trips.clear()
        sent = await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=io.BytesIO(LETTER))
        submitted = len(trips)
        trips.clear()
        await mediator.release(sent["id"])
        released = len(trips)
        trips.clear()
        await offender.fetch(sent["id"], io.BytesIO())
        received = len(trips)
        # Before: 106, 118 and 103 (every request's credentials in four reads, every screening's
        # case in 20 trips, the quota and the audit chain's last entry through cursors).
        assert submitted <= 23 and released <= 26 and received <= 24, (submitted, released, received)
    finally:
        await close(coordinator, victim, mediator, offender)


async def test_uploads_are_told_apart_without_the_e_mail_header_parser(world: World,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """aiohttp's ``request.content_type`` runs the standard library's e-mail header parser, a fifth
    of a decision's time under load (bench/writes.py): the media type is read from the header."""
    calls: list[str] = []
    real = aiohttp.helpers.parse_content_type

    def counted(raw: str) -> Any:
        calls.append(raw)
        return real(raw)

    monkeypatch.setattr(aiohttp.helpers, "parse_content_type", counted)
    coordinator, victim, mediator, offender = await everyone(world)
    try:
        sent = await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=io.BytesIO(LETTER))
        await mediator.release(sent["id"])
        await victim.send(case_id=world.case_id, recipient=world.offender.person_id,
                          src=io.BytesIO(b"x" * 9_000_000), resumable=True)  # tus PATCHes
        assert [c for c in calls if c.startswith(("multipart/", "application/offset"))] == []
    finally:
        await close(coordinator, victim, mediator, offender)


async def test_a_failing_write_in_a_batch_is_undone_alone_without_a_trip_to_another_thread(
        db: Database, trips: list[str]) -> None:
    async def failing(conn: aiosqlite.Connection) -> None:
        await conn.execute("INSERT INTO institutions (id, name, created_at) VALUES ('b', 'b', 'now')")
        raise ValueError("the task's own failure")

    commits = db.commits
    trips.clear()
    done = await while_the_writer_is_busy(db, add_institution("a"), failing, add_institution("c"))
    assert done[0] is None and isinstance(done[1], ValueError) and done[2] is None
    assert db.commits == commits + 2  # the slow one's, and one transaction for the three
    assert await db.snapshot(lambda conn: [r[0] for r in conn.execute("SELECT id FROM institutions ORDER BY id")]
                             ) == ["a", "c"]
    # Each task runs whole on the writer's thread: no statement is a trip through aiosqlite
    # (was 12 trips, each two hand-overs of the GIL between threads).
    assert trips.count("aiosqlite") == 0, trips


async def test_a_write_task_that_awaits_anything_but_the_database_is_refused_and_undone(db: Database) -> None:
    """The writer runs each task to its end without an event loop: a task that would wait on
    something else (here a future of the caller's loop) is a programming error, refused, and
    what it wrote before is undone; the writer goes on."""
    elsewhere = asyncio.get_running_loop().create_future()

    async def waits(conn: aiosqlite.Connection) -> None:
        await conn.execute("INSERT INTO institutions (id, name, created_at) VALUES ('w', 'w', 'now')")
        await elsewhere

    with pytest.raises(StorageError, match="waited on something other than the database"):
        await db.write(waits)
    await db.write(add_institution("after"))
    assert await db.snapshot(lambda conn: [r[0] for r in conn.execute("SELECT id FROM institutions")]) == ["after"]


async def test_the_single_writer_goes_on_while_the_relays_event_loop_is_busy(db: Database) -> None:
    """Each statement of a write is a trip to the writer connection's thread; on the relay's own
    event loop each trip waited for a turn of a loop busy with requests (bench/writes.py)."""
    async def statements(conn: aiosqlite.Connection) -> None:
        for n in range(200):
            await conn.execute("INSERT INTO institutions (id, name, created_at) VALUES (?, ?, 'now')", (n, n))

    writing = asyncio.create_task(db.write(statements))
    await asyncio.sleep(0)  # handed to the writer
    time.sleep(1.5)  # this event loop busy, without a turn
    outside = sqlite3.connect(f"file:{db.path}?mode=ro", uri=True)
    try:
        assert outside.execute("SELECT COUNT(*) FROM institutions").fetchone()[0] == 200  # committed meanwhile
    finally:
        outside.close()
    await writing
