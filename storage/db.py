"""The one way to open the metadata database.

SQLite in WAL mode, foreign keys on, ``synchronous=FULL`` so that an acknowledged write survives
``kill -9`` and power loss. Every write goes through a single connection fed by a queue
(datasette's pattern): each queued task runs inside a savepoint of one ``BEGIN IMMEDIATE``
transaction per turn, so small writes that arrive together share one commit. A caller only hears
back after the commit, so an acknowledged write is durable. A caller that was cancelled while
waiting is skipped; one cancelled while its task runs does not break the writer. The writer is
one plain thread that runs each task (storage's own functions: SQL only) whole, over
:class:`storage.writer_connection.WriterConnection`: no event loop and no aiosqlite thread of
its own, so a write costs the relay's loop one hand-over to that thread and one wake-up when
its commit is done (bench/writes.py: the chain of trips between the writer's loop, aiosqlite's
thread and the relay's loop, each a hand-over of the GIL, was the bound).

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
import contextvars
import errno
import importlib.resources
import logging
import queue
import re
import sqlite3
import threading
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from .errors import MigrationError, StorageError, StorageFull
from .writer_connection import WriterConnection, run_to_end

log = logging.getLogger(__name__)

T = TypeVar("T")
WriteFn = Callable[[aiosqlite.Connection], Awaitable[T]]
ReadFn = Callable[[aiosqlite.Connection], Awaitable[T]]
SnapshotFn = Callable[[sqlite3.Connection], T]

_MAX_BATCH = 64


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
        # Strong references, for the snapshot's length only (a few statements): cheaper on the
        # event loop than a WeakSet, and every one is closed when the snapshot ends anyway.
        self._cursors: list[sqlite3.Cursor] = []

    def cursor(self, *args: Any, **kwargs: Any) -> Any:
        cursor = super().cursor(*args, **kwargs)
        self._cursors.append(cursor)
        return cursor

    # sqlite3's own execute makes its cursor in C, past this cursor(): go through it instead.
    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        return self.cursor().execute(sql, parameters)  # type: ignore[no-any-return]

    def executemany(self, sql: str, parameters: Any, /) -> sqlite3.Cursor:
        return self.cursor().executemany(sql, parameters)  # type: ignore[no-any-return]

    def close_cursors(self) -> None:
        for cursor in self._cursors:
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


async def _configure(conn: aiosqlite.Connection) -> None:
    conn.row_factory = aiosqlite.Row
    await conn.execute("PRAGMA foreign_keys = ON")
    await conn.execute("PRAGMA busy_timeout = 5000")


def _open_writer(path: Path) -> sqlite3.Connection:
    # Made here, used only by the writer's thread from then on.
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA busy_timeout = 5000")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA secure_delete = ON")
    return conn


class _Task:
    """One queued write (or checkpoint), and the caller's future on the caller's loop."""

    __slots__ = ("fn", "future", "loop")

    def __init__(self, fn: WriteFn[Any] | None, future: asyncio.Future[Any], loop: asyncio.AbstractEventLoop):
        self.fn, self.future, self.loop = fn, future, loop  # fn None: a checkpoint


class Database:
    """Metadata store. Open with :meth:`open`; close with :meth:`close` (drains queued writes)."""

    def __init__(self, path: Path, writer: sqlite3.Connection, readers: list[aiosqlite.Connection]):
        self.path = path
        self._writer = WriterConnection(writer)
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
        self._checkpoint_wanted: asyncio.Future[bool] | None = None
        # Set by whoever deletes rows that must not linger in the WAL; cleared by a checkpoint.
        self.wal_holds_deleted_rows = False
        # Write transactions committed, and the writes they held (group commit: several a commit).
        self.commits = 0
        self.committed_writes = 0
        # The single writer is a plain thread running each task whole (no event loop, no
        # aiosqlite thread): the relay's loop only queues a task and hears back once per commit.
        self._queue: queue.SimpleQueue[_Task | None] = queue.SimpleQueue()
        # Queueing and the writer's death exclude each other, so no task is queued unseen.
        self._lock = threading.Lock()
        self._failed = False  # the writer died: every write is refused, none waits forever
        self._closed = False
        # In a copy of the opener's context, as a task would be: the writer's own log lines carry
        # the job id it was opened under (relay/server/logs.py), not none (a thread starts empty).
        self._writer_thread = threading.Thread(target=contextvars.copy_context().run, args=(self._write_loop,),
                                               name="db-writer", daemon=True)
        self._writer_thread.start()

    @classmethod
    async def open(cls, path: Path, *, readers: int = 3) -> Database:
        """Open (creating if needed) the database at ``path`` and apply pending migrations."""
        if not path.is_absolute():
            raise StorageError("the database path must be absolute")
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        writer = await asyncio.to_thread(_open_writer, path)
        reader_conns: list[aiosqlite.Connection] = []
        try:
            await asyncio.to_thread(lambda: run_to_end(_migrate(WriterConnection(writer))))  # type: ignore[arg-type]
            for _ in range(readers):
                conn = await aiosqlite.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
                reader_conns.append(conn)
                await _configure(conn)
        except BaseException:
            for conn in reader_conns:
                await conn.close()
            writer.close()
            raise
        return cls(path, writer, reader_conns)

    async def close(self) -> None:
        with self._lock:  # after the stop, nothing is queued (a write from another thread, say)
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)
        # The queued writes are done (or failed) once the thread has ended. Waited for by a
        # worker thread, not through a future of the loop that opened the database: close may
        # be awaited on another loop, that one perhaps closed by now (writes are accepted from
        # any loop too).
        await asyncio.to_thread(self._writer_thread.join)
        self._writer.raw.close()
        for _ in range(self._reader_count):
            conn = await self._readers.get()
            await conn.close()
            (await self._snapshot_readers.get()).close()
        self._snapshot_pool.shutdown()
        self._on_loop.close()

    # -- writes -------------------------------------------------------------------------------

    async def write(self, fn: WriteFn[T]) -> T:
        """Run ``fn(conn)`` inside the single writer's transaction; return after the commit.

        ``fn`` runs on the writer's thread, whole: it may await the connection and nothing else."""
        if self._closed:
            raise StorageError("database is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._enqueue(_Task(fn, future, loop))
        # Shielded: a caller cancelled while its task runs does not cancel the write, which may
        # still commit. Callers must not undo side effects on cancellation (only on a failure).
        return await _shielded(future)

    async def checkpoint(self) -> bool:
        """Copy the WAL into the database file and truncate it to nothing, between transactions.

        True if it completed; False if a reader still held an old snapshot (try again later).
        """
        if self._closed:
            raise StorageError("database is closed")
        # One queued at a time for every caller on a loop (each caller hears back on its own loop).
        loop = asyncio.get_running_loop()
        wanted = self._checkpoint_wanted
        if wanted is None or wanted.done() or wanted.get_loop() is not loop:
            wanted = self._checkpoint_wanted = loop.create_future()
            self._enqueue(_Task(None, wanted, loop))
        return await _shielded(wanted)

    def _enqueue(self, task: _Task) -> None:
        with self._lock:
            if not self._failed and not self._closed:
                self._queue.put(task)
                return
            refusal = StorageError("database is closed" if self._closed else "the database writer stopped")
        task.future.set_exception(refusal)

    # -- the writer's thread --------------------------------------------------------------------

    def _write_loop(self) -> None:
        in_flight: list[_Task] = []  # taken from the queue, not yet settled
        try:
            while True:
                first = self._queue.get()
                if first is None:
                    return
                if first.fn is None:  # a checkpoint runs outside any transaction, on its own
                    in_flight = [first]
                    self._run_checkpoint(first)
                    continue
                batch, deferred, stop = self._gather(first)
                in_flight = batch + ([deferred] if deferred is not None else [])
                self._run_batch(batch)
                if deferred is not None:
                    in_flight = [deferred]
                    self._run_checkpoint(deferred)
                if stop:
                    return
        except BaseException as exc:
            # Whatever escaped (it should not): the writes it held and every queued one fail
            # now, and later ones are refused, rather than wait forever for a commit.
            log.error("the database writer stopped: %s", type(exc).__name__)
            with self._lock:
                self._failed = True
            pending = list(in_flight)
            while True:
                try:
                    queued = self._queue.get_nowait()
                except queue.Empty:
                    break
                if queued is not None:
                    pending.append(queued)
            self._settle([(task, False, StorageError("the database writer stopped")) for task in pending])

    def _gather(self, first: _Task) -> tuple[list[_Task], _Task | None, bool]:
        """The writes queued behind ``first``, to share its commit; a checkpoint met on the way
        (it runs after them); whether close was asked for."""
        batch = [first]
        while len(batch) < _MAX_BATCH:
            try:
                nxt = self._queue.get_nowait()
            except queue.Empty:
                break
            if nxt is None:
                return batch, None, True
            if nxt.fn is None:
                return batch, nxt, False
            batch.append(nxt)
        return batch, None, False

    def _run_checkpoint(self, task: _Task) -> None:
        conn = self._writer.raw
        try:
            # Never wait on readers here: every write queues behind this. Busy now: try later.
            conn.execute("PRAGMA busy_timeout = 0")
            try:
                row = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            finally:
                conn.execute("PRAGMA busy_timeout = 5000")
        except Exception as exc:
            self._settle([(task, False, StorageError(f"checkpoint failed: {type(exc).__name__}"))])
            return
        self._settle([(task, True, row is not None and row[0] == 0)])

    def _run_batch(self, batch: list[_Task]) -> None:
        conn = self._writer.raw
        outcomes: list[tuple[_Task, bool, Any]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            # One savepoint a task, left open (COMMIT releases them all).
            for n, task in enumerate(batch):
                if task.future.cancelled():
                    continue
                conn.execute(f"SAVEPOINT task{n}")
                assert task.fn is not None
                try:
                    result = run_to_end(task.fn(self._writer))  # type: ignore[arg-type]
                except Exception as exc:  # the task's own failure: undo just that task
                    conn.execute(f"ROLLBACK TO task{n}")
                    outcomes.append((task, False, exc))
                else:
                    outcomes.append((task, True, result))
            conn.execute("COMMIT")
            self.commits += 1
            self.committed_writes += sum(1 for _, ok, _ in outcomes if ok)
        except Exception as exc:
            log.error("write transaction failed: %s", type(exc).__name__)
            try:
                conn.execute("ROLLBACK")
            except Exception:
                pass
            # A full disk is the one failure a caller can act on (retry later): say so.
            failure = StorageFull if _disk_full(exc) else StorageError
            self._settle([(task, False, failure("the write could not be committed")) for task in batch])
            return
        except BaseException:
            # It kills the writer (see _write_loop), but its transaction must not stay open until
            # close meanwhile, holding SQLite's write lock against every other process (the
            # operator's commands may run beside the relay).
            try:
                conn.execute("ROLLBACK")
            except Exception:
                pass
            raise
        self._settle(outcomes)

    @staticmethod
    def _settle(outcomes: list[tuple[_Task, bool, Any]]) -> None:
        """From the writer's thread: each caller's future, settled on its loop (one wake-up a
        loop for the whole batch)."""
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Task, bool, Any]]] = {}
        for outcome in outcomes:
            by_loop.setdefault(outcome[0].loop, []).append(outcome)
        for loop, theirs in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle_all, theirs)
            except RuntimeError:  # that loop is closed: nobody is waiting any more
                pass

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
        return await _shielded(job)

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


async def _shielded(future: asyncio.Future[T]) -> T:
    """``future``'s outcome, ``future`` going on if the caller is cancelled. Its failure, which
    nobody will hear of then, is retrieved when it comes: left alone, asyncio would log "Future
    exception was never retrieved" with the exception's repr, whose message can quote what a
    request carried (the relay's log keeps an exception's type and place only)."""
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        future.add_done_callback(_retrieve)
        raise


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def _settle_all(outcomes: list[tuple[_Task, bool, Any]]) -> None:
    for task, ok, value in outcomes:
        if task.future.done():
            continue
        if ok:
            task.future.set_result(value)
        else:
            task.future.set_exception(value)


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
