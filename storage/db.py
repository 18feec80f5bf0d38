"""The one way to open the metadata database.

SQLite in WAL mode, foreign keys on, ``synchronous=FULL`` so that an acknowledged write survives
``kill -9`` and power loss. Every write goes through a single connection fed by a queue
(datasette's pattern): each queued task runs inside a savepoint of one ``BEGIN IMMEDIATE``
transaction per tick, so small writes that arrive together share one commit. A caller only hears
back after the commit, so an acknowledged write is durable. A caller that was cancelled while
waiting is skipped; one cancelled while its task runs does not break the writer. The writer and
the tasks it runs (storage's own functions: SQL only) live on an event loop of their own, in a
thread of its own: each statement is a trip to the connection's thread, and on the relay's busy
loop each trip waited for a turn of it (bench/writes.py: the writer's chain was the bound).

Reads use separate read-only connections (``mode=ro``), so a slow read never blocks the writer.
Every ``await`` on an aiosqlite connection is a round trip between the event loop and that
connection's thread, which costs more than the small indexed select it carries (bench/load.py:
an inbox request made 25 of them, and each trip still cost 40% of a request's time). The small
reads by key every request makes (who is asking, the case screening decides on, an inbox) go
through :meth:`Database.snapshot`: a plain function over a ``sqlite3`` connection, run whole on
the event loop itself inside one transaction, never waiting for a lock (or on a reader thread
when SQLite says it would have to).

Deleting must delete: the writer runs with ``secure_delete`` (freed pages are zeroed, so a purged
manifest does not linger in the file) and :meth:`Database.checkpoint` truncates the WAL, whose
old page images would otherwise keep the bytes of deleted rows.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import importlib.resources
import logging
import re
import sqlite3
import threading
import weakref
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from .errors import MigrationError, StorageError, StorageFull

log = logging.getLogger(__name__)

T = TypeVar("T")
WriteFn = Callable[[aiosqlite.Connection], Awaitable[T]]
ReadFn = Callable[[aiosqlite.Connection], Awaitable[T]]
SnapshotFn = Callable[[sqlite3.Connection], T]

_MAX_BATCH = 64


async def _CHECKPOINT(conn: aiosqlite.Connection) -> None:  # noqa: N802 - a marker on the write queue
    raise AssertionError("never called")

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def _migrations() -> list[tuple[int, str, str]]:
    """Every shipped migration as (version, name, sql), in order."""
    found = []
    for entry in importlib.resources.files("storage.migrations").iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text("utf-8")))
    found.sort()
    versions = [v for v, _, _ in found]
    if versions != list(range(1, len(found) + 1)):
        raise MigrationError(f"migrations are not numbered 1..n: {versions}")
    return found


class _SnapshotConnection(sqlite3.Connection):
    """Remembers the cursors a snapshot opened, to close them all when it ends: a cursor left
    half-read and still referenced (by an exception's traceback, say) would otherwise keep its
    statement, and with it the read transaction, open, so every later snapshot on this
    connection would see the database as it was then (a revocation not seen)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._cursors: weakref.WeakSet[sqlite3.Cursor] = weakref.WeakSet()

    def cursor(self, *args: Any, **kwargs: Any) -> Any:
        cursor = super().cursor(*args, **kwargs)
        self._cursors.add(cursor)
        return cursor

    # sqlite3's own execute makes its cursor in C, past this cursor(): go through it instead.
    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        return self.cursor().execute(sql, parameters)  # type: ignore[no-any-return]

    def executemany(self, sql: str, parameters: Any, /) -> sqlite3.Cursor:
        return self.cursor().executemany(sql, parameters)  # type: ignore[no-any-return]

    def close_cursors(self) -> None:
        for cursor in list(self._cursors):
            cursor.close()
        self._cursors.clear()


def _snapshot_reader(path: Path, *, busy_timeout_ms: int) -> _SnapshotConnection:
    # Used by one thread at a time (the event loop's, or a pool thread the pool's queue handed it to).
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False,
                           factory=_SnapshotConnection)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute(f"PRAGMA busy_timeout = {busy_timeout_ms}")
    return conn


def _in_transaction(conn: _SnapshotConnection, fn: SnapshotFn[T]) -> T:
    conn.execute("BEGIN")
    try:
        return fn(conn)
    finally:
        conn.close_cursors()  # each statement reset, whoever still holds its cursor
        if conn.in_transaction:
            conn.execute("COMMIT")  # read-only: nothing to undo, and the snapshot must always end


def _busy(exc: sqlite3.Error) -> bool:
    return (getattr(exc, "sqlite_errorcode", 0) & 0xFF) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


async def _configure(conn: aiosqlite.Connection, *, writer: bool) -> None:
    conn.row_factory = aiosqlite.Row
    await conn.execute("PRAGMA foreign_keys = ON")
    await conn.execute("PRAGMA busy_timeout = 5000")
    if writer:
        await conn.execute("PRAGMA journal_mode = WAL")
        await conn.execute("PRAGMA synchronous = FULL")
        await conn.execute("PRAGMA secure_delete = ON")


class Database:
    """Metadata store. Open with :meth:`open`; close with :meth:`close` (drains queued writes)."""

    def __init__(self, path: Path, writer: aiosqlite.Connection, readers: list[aiosqlite.Connection]):
        self.path = path
        self._writer = writer
        self._readers: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        for conn in readers:
            self._readers.put_nowait(conn)
        self._reader_count = len(readers)
        # No busy timeout: the event loop must never wait for a lock (busy: a reader thread waits).
        self._on_loop = _snapshot_reader(path, busy_timeout_ms=0)
        self._snapshot_readers: asyncio.Queue[_SnapshotConnection] = asyncio.Queue()
        for _ in readers:
            self._snapshot_readers.put_nowait(_snapshot_reader(path, busy_timeout_ms=5000))
        self._snapshot_pool = concurrent.futures.ThreadPoolExecutor(len(readers), thread_name_prefix="db-snapshot")
        self._queue: asyncio.Queue[tuple[WriteFn[Any], asyncio.Future[Any]] | None] = asyncio.Queue()
        self._checkpoint_wanted: asyncio.Future[bool] | None = None
        # Set by whoever deletes rows that must not linger in the WAL; cleared by a checkpoint.
        self.wal_holds_deleted_rows = False
        # Write transactions committed, and the writes they held (group commit: several a commit).
        self.commits = 0
        self.committed_writes = 0
        # The writer's chain of trips to its connection's thread runs on an event loop of its own:
        # on the relay's, each trip waited for a turn of a loop busy with requests.
        self._loop = asyncio.get_running_loop()
        self._writer_loop = asyncio.new_event_loop()
        self._writer_thread = threading.Thread(target=self._writer_loop.run_forever, name="db-writer", daemon=True)
        self._writer_thread.start()
        self._failed = False  # the writer's loop died: every write is refused, none waits forever
        self._in_flight: list[tuple[WriteFn[Any], asyncio.Future[Any]]] = []
        self._task = asyncio.run_coroutine_threadsafe(self._write_loop(), self._writer_loop)
        self._task.add_done_callback(self._writer_stopped)
        self._closed = False

    @classmethod
    async def open(cls, path: Path, *, readers: int = 3) -> Database:
        """Open (creating if needed) the database at ``path`` and apply pending migrations."""
        if not path.is_absolute():
            raise StorageError("the database path must be absolute")
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        writer = await aiosqlite.connect(path, isolation_level=None)
        try:
            await _configure(writer, writer=True)
            await _migrate(writer)
            reader_conns = []
            for _ in range(readers):
                conn = await aiosqlite.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
                await _configure(conn, writer=False)
                reader_conns.append(conn)
        except BaseException:
            await writer.close()
            raise
        return cls(path, writer, reader_conns)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._enqueue(None)
        try:
            await asyncio.wrap_future(self._task)
        except BaseException:  # it died earlier (logged then): still release everything below
            pass
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._writer.close(), self._writer_loop))
        self._writer_loop.call_soon_threadsafe(self._writer_loop.stop)
        await asyncio.to_thread(self._writer_thread.join)
        self._writer_loop.close()
        for _ in range(self._reader_count):
            conn = await self._readers.get()
            await conn.close()
            (await self._snapshot_readers.get()).close()
        self._snapshot_pool.shutdown()
        self._on_loop.close()

    # -- writes -------------------------------------------------------------------------------

    async def write(self, fn: WriteFn[T]) -> T:
        """Run ``fn(conn)`` inside the single writer's transaction; return after the commit."""
        if self._closed or self._failed:
            raise StorageError("database is closed" if self._closed else "the database writer stopped")
        future: asyncio.Future[T] = self._loop.create_future()
        self._enqueue((fn, future))
        # Shielded: a caller cancelled while its task runs does not cancel the write, which may
        # still commit. Callers must not undo side effects on cancellation (only on a failure).
        return await asyncio.shield(future)

    async def checkpoint(self) -> bool:
        """Copy the WAL into the database file and truncate it to nothing, between transactions.

        True if it completed; False if a reader still held an old snapshot (try again later).
        """
        if self._closed:
            raise StorageError("database is closed")
        if self._failed:
            raise StorageError("the database writer stopped")
        if self._checkpoint_wanted is None or self._checkpoint_wanted.done():
            self._checkpoint_wanted = self._loop.create_future()
            self._enqueue((_CHECKPOINT, self._checkpoint_wanted))
        return await asyncio.shield(self._checkpoint_wanted)

    def _enqueue(self, task: tuple[WriteFn[Any], asyncio.Future[Any]] | None) -> None:
        self._writer_loop.call_soon_threadsafe(self._accept, task)

    def _accept(self, task: tuple[WriteFn[Any], asyncio.Future[Any]] | None) -> None:
        """On the writer's thread: queue ``task``, or refuse it if the writer has died."""
        if self._failed and task is not None:
            self._settle(task[1], False, StorageError("the database writer stopped"))
        else:
            self._queue.put_nowait(task)

    def _writer_stopped(self, task: concurrent.futures.Future[None]) -> None:
        """On the writer's thread, when its loop ends. It returns only when closed; if it died
        instead, the writes it held and every queued one fail now (and later ones are refused)
        rather than wait forever for a commit that cannot come."""
        if not task.cancelled() and task.exception() is None:
            return
        self._failed = True
        error = task.exception() if not task.cancelled() else None
        log.error("the database writer stopped: %s", type(error).__name__ if error else "cancelled")
        pending = [future for _, future in self._in_flight]
        if self._checkpoint_wanted is not None:  # queued, deferred behind the batch, or running
            pending.append(self._checkpoint_wanted)
        while not self._queue.empty():
            queued = self._queue.get_nowait()
            if queued is not None:
                pending.append(queued[1])
        for future in pending:
            self._settle(future, False, StorageError("the database writer stopped"))

    def _settle(self, future: asyncio.Future[Any], ok: bool, value: Any) -> None:
        """From the writer's thread: the caller's future, settled on the caller's loop."""
        def settle() -> None:
            if future.done():
                return
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)
        try:
            self._loop.call_soon_threadsafe(settle)
        except RuntimeError:  # the caller's loop is closed: nobody is waiting any more
            pass

    async def _run_checkpoint(self, future: asyncio.Future[Any]) -> None:
        try:
            # Never wait on readers here: every write queues behind this. Busy now: try later.
            await self._writer.execute("PRAGMA busy_timeout = 0")
            try:
                async with self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)") as cur:
                    row = await cur.fetchone()
            finally:
                await self._writer.execute("PRAGMA busy_timeout = 5000")
        except Exception as exc:
            self._settle(future, False, StorageError(f"checkpoint failed: {type(exc).__name__}"))
            return
        self._settle(future, True, row is not None and row[0] == 0)

    async def _write_loop(self) -> None:
        while True:
            first = await self._queue.get()
            if first is None:
                return
            if first[0] is _CHECKPOINT:  # runs outside any transaction, on its own
                await self._run_checkpoint(first[1])
                continue
            batch = [first]
            stop = False
            deferred = None
            while len(batch) < _MAX_BATCH and not self._queue.empty():
                nxt = self._queue.get_nowait()
                if nxt is None:
                    stop = True
                    break
                if nxt[0] is _CHECKPOINT:
                    deferred = nxt
                    break
                batch.append(nxt)
            await self._run_batch(batch)
            if deferred is not None:
                await self._run_checkpoint(deferred[1])
            if stop:
                return

    async def _run_batch(self, batch: list[tuple[WriteFn[Any], asyncio.Future[Any]]]) -> None:
        self._in_flight = batch
        outcomes: list[tuple[asyncio.Future[Any], bool, Any]] = []
        try:
            await self._writer.execute("BEGIN IMMEDIATE")
            # One savepoint a task, left open (COMMIT releases them all): a task costs one trip
            # to the writer's thread more than its own statements, not two.
            for n, (fn, future) in enumerate(batch):
                if future.cancelled():
                    continue
                await self._writer.execute(f"SAVEPOINT task{n}")
                try:
                    result = await fn(self._writer)
                except Exception as exc:  # the task's own failure: undo just that task
                    await self._writer.execute(f"ROLLBACK TO task{n}")
                    outcomes.append((future, False, exc))
                else:
                    outcomes.append((future, True, result))
            await self._writer.execute("COMMIT")
            self.commits += 1
            self.committed_writes += sum(1 for _, ok, _ in outcomes if ok)
        except Exception as exc:
            log.error("write transaction failed: %s", type(exc).__name__)
            try:
                await self._writer.execute("ROLLBACK")
            except Exception:
                pass
            # A full disk is the one failure a caller can act on (retry later): say so.
            failure = StorageFull if _disk_full(exc) else StorageError
            for _, future in batch:
                self._settle(future, False, failure("the write could not be committed"))
            return
        for future, ok, value in outcomes:
            self._settle(future, ok, value)

    # -- backup -------------------------------------------------------------------------------

    async def backup_to(self, target: Path) -> None:
        """Copy the whole database to a new file ``target`` with SQLite's online backup API.

        The copy is made from a read-only connection in one step, so it is one consistent
        snapshot (WAL mode: writers carry on meanwhile; a checkpoint waits until it ends)."""
        if self._closed:
            raise StorageError("database is closed")
        if target.exists():
            raise StorageError("the backup target already exists")
        conn = await self._readers.get()
        try:
            # The sqlite3 connection is used from aiosqlite's thread, not the one creating it.
            copy = sqlite3.connect(target, check_same_thread=False, isolation_level=None)
            try:
                await conn.backup(copy, pages=-1)
                # A self-contained file: no -wal beside it, readable by any SQLite.
                copy.execute("PRAGMA journal_mode = DELETE")
            finally:
                copy.close()
        finally:
            self._readers.put_nowait(conn)

    # -- reads --------------------------------------------------------------------------------

    async def read(self, fn: ReadFn[T]) -> T:
        """Run ``fn(conn)`` on a read-only connection (a consistent snapshot for its duration)."""
        conn = await self._readers.get()
        try:
            await conn.execute("BEGIN")
            return await fn(conn)
        finally:
            # Always end the snapshot, even after a cancellation mid-read, or this connection
            # would keep serving a frozen view of the database to every later caller.
            if conn.in_transaction:
                await asyncio.shield(conn.execute("COMMIT"))
            self._readers.put_nowait(conn)

    async def snapshot(self, fn: SnapshotFn[T]) -> T:
        """Run the plain function ``fn(conn)`` on a read-only ``sqlite3`` connection, whole, inside
        one transaction (a consistent snapshot). ``fn`` must only read, a few rows by key (it runs
        on the event loop, which waits for nothing else meanwhile), and must not keep the
        connection or its cursors.

        It never waits for a lock on the event loop: if SQLite answers busy (a recovery, a
        checkpoint resetting the WAL), ``fn`` runs again from the start on a reader thread."""
        if self._closed:
            raise StorageError("database is closed")
        try:
            return _in_transaction(self._on_loop, fn)
        except sqlite3.OperationalError as exc:
            if not _busy(exc):
                raise
        conn = await self._snapshot_readers.get()
        job = asyncio.get_running_loop().run_in_executor(self._snapshot_pool, _in_transaction, conn, fn)
        # Back in the pool only once the thread is done with it, even if the caller was cancelled.
        job.add_done_callback(lambda _: self._snapshot_readers.put_nowait(conn))
        return await asyncio.shield(job)

    async def fetchone(self, sql: str, params: Iterable[Any] | dict[str, Any] = ()) -> aiosqlite.Row | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def fetchall(self, sql: str, params: Iterable[Any] | dict[str, Any] = ()) -> list[aiosqlite.Row]:
        """One statement: atomic on its own, so no explicit transaction (one thread hop, not five)."""
        conn = await self._readers.get()
        try:
            return list(await conn.execute_fetchall(sql, params if isinstance(params, dict) else tuple(params)))
        finally:
            self._readers.put_nowait(conn)


def _disk_full(exc: BaseException) -> bool:
    if isinstance(exc, sqlite3.Error) and getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
        return True
    return isinstance(exc, OSError) and exc.errno == errno.ENOSPC


async def _migrate(conn: aiosqlite.Connection) -> None:
    """Apply shipped migrations not yet applied; refuse a database newer than this code."""
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL)"
    )
    async with conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations") as cur:
        row = await cur.fetchone()
    current = int(row[0]) if row else 0
    shipped = _migrations()
    if current > len(shipped):
        raise MigrationError(
            f"database schema version {current} is newer than this relay ({len(shipped)}); upgrade the relay"
        )
    for version, name, sql in shipped[current:]:
        try:
            await conn.execute("BEGIN IMMEDIATE")
            # executescript would commit implicitly; run statements one by one inside our transaction.
            for statement in _split_sql(sql):
                await conn.execute(statement)
            await conn.execute("INSERT INTO schema_migrations (version, name) VALUES (?, ?)", (version, name))
            await conn.execute("COMMIT")
        except Exception as exc:
            await conn.execute("ROLLBACK")
            raise MigrationError(f"migration {name} failed: {exc}") from exc
        log.info("applied migration %s", name)


def _split_sql(script: str) -> list[str]:
    """Split a migration into complete statements (``sqlite3.complete_statement`` knows triggers)."""
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        if not current and line.strip().startswith("--"):
            continue
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    if current.strip():
        raise MigrationError("migration ends inside a statement")
    return statements
