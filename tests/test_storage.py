"""The storage layer on its own: the single writer, migrations, and the blob store."""

from __future__ import annotations

import asyncio
import hashlib
import os
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite
import blake3
import pytest

from relay.envelope.documents import blob_hash
from storage.blobs import BlobStore
from storage.db import Database
from storage.errors import (
    BlobFormatMismatch,
    BlobMismatch,
    BlobPathError,
    BlobTooLarge,
    MigrationError,
    StorageError,
)
from storage.hashing import STEP, new_hasher


def b3(data: bytes) -> str:
    """BLAKE3-256, computed by the reference package directly (not through our code)."""
    return blake3.blake3(data).hexdigest()


def insert_institution(name: str):  # type: ignore[no-untyped-def]
    async def run(conn: aiosqlite.Connection) -> str:
        await conn.execute("INSERT INTO institutions (id, name, created_at) VALUES (?, ?, 'now')", (name, name))
        return name

    return run


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(tmp_path / "db" / "relay.sqlite3")
    yield database
    await database.close()


async def test_database_runs_in_wal_mode_with_foreign_keys(db: Database) -> None:
    assert (await db.fetchone("PRAGMA journal_mode"))[0] == "wal"  # type: ignore[index]
    assert (await db.fetchone("PRAGMA foreign_keys"))[0] == 1  # type: ignore[index]


async def test_a_failing_write_rolls_back_alone_and_the_writer_keeps_going(db: Database) -> None:
    async def bad(conn: aiosqlite.Connection) -> None:
        await conn.execute("INSERT INTO institutions (id, name, created_at) VALUES ('x', 'half', 'now')")
        raise ValueError("boom")

    results = await asyncio.gather(db.write(insert_institution("a")), db.write(bad),
                                   db.write(insert_institution("b")), return_exceptions=True)
    assert results[0] == "a" and isinstance(results[1], ValueError) and results[2] == "b"
    names = [r["name"] for r in await db.fetchall("SELECT name FROM institutions ORDER BY name")]
    assert names == ["a", "b"]


async def test_a_cancelled_caller_does_not_break_the_writer(db: Database) -> None:
    async def slow(conn: aiosqlite.Connection) -> None:
        time.sleep(0.05)  # the writer's own thread: it runs each task whole
        await conn.execute("INSERT INTO institutions (id, name, created_at) VALUES ('s', 'slow', 'now')")

    task = asyncio.create_task(db.write(slow))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await db.write(insert_institution("after")) == "after"


async def test_many_small_writes_are_all_committed(db: Database) -> None:
    await asyncio.gather(*(db.write(insert_institution(f"i{n:03}")) for n in range(200)))
    assert (await db.fetchone("SELECT COUNT(*) FROM institutions"))[0] == 200  # type: ignore[index]


async def test_reads_cannot_write(db: Database) -> None:
    with pytest.raises(sqlite3.OperationalError):
        await db.fetchall("INSERT INTO institutions (id, name, created_at) VALUES ('r', 'r', 'now')")


async def test_refuses_a_schema_newer_than_the_code(tmp_path: Path) -> None:
    path = tmp_path / "relay.sqlite3"
    database = await Database.open(path)
    await database.write(lambda c: c.execute("INSERT INTO schema_migrations VALUES (99, '0099_future.sql')"))
    await database.close()
    with pytest.raises(MigrationError):
        await Database.open(path)


async def test_relative_paths_are_refused(tmp_path: Path) -> None:
    with pytest.raises(StorageError):
        await Database.open(Path("relative.sqlite3"))
    with pytest.raises(StorageError):
        BlobStore(Path("relative-blobs"))


# -- blobs -------------------------------------------------------------------------------------


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


@pytest.mark.parametrize("name", ["../etc/passwd", "/etc/passwd", "..", "", "ABCDEF0123456789ABCDEF0123456789",
                                  "0" * 31, "0" * 33, "../" + "0" * 29, "0" * 16 + "/" + "0" * 15])
def test_blob_names_the_store_did_not_issue_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(BlobPathError):
        BlobStore(tmp_path / "blobs").path(name)


async def test_a_blob_is_stored_whole_with_its_hash(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    data = [b"a" * 70000, b"b" * 10]
    blob = await store.write_stream(chunks(*data), max_size=1 << 20)
    assert blob.size == 70010
    assert blob.hash == b3(b"".join(data))
    assert store.path(blob.blob_id).read_bytes() == b"".join(data)
    assert store.path(blob.blob_id).stat().st_mode & 0o077 == 0
    assert list((tmp_path / "blobs" / "tmp").iterdir()) == []


@pytest.mark.parametrize("kwargs,error", [
    ({"max_size": 5}, BlobTooLarge),
    ({"max_size": 100, "expect_size": 7}, BlobMismatch),
    ({"max_size": 100, "expect_size": 10, "expect_hash": "0" * 64}, BlobMismatch),
])
async def test_a_rejected_blob_leaves_nothing_behind(tmp_path: Path, kwargs: dict, error: type) -> None:  # type: ignore[type-arg]
    store = BlobStore(tmp_path / "blobs")
    with pytest.raises(error):
        await store.write_stream(chunks(b"12345", b"67890"), **kwargs)
    leftovers = [p for p in (tmp_path / "blobs").rglob("*") if p.is_file()]
    assert leftovers == []


async def test_an_interrupted_upload_leaves_only_a_temp_file_that_start_up_sweeps(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")

    async def dies() -> AsyncIterator[bytes]:
        yield b"partial"
        raise ConnectionResetError

    with pytest.raises(ConnectionResetError):
        await store.write_stream(dies(), max_size=100)
    assert [p for p in (tmp_path / "blobs" / "objects").rglob("*") if p.is_file()] == []
    (tmp_path / "blobs" / "tmp" / "crashed.part").write_bytes(b"x")  # as a kill -9 would leave it
    assert BlobStore(tmp_path / "blobs").sweep_temp() == 1


async def test_delete_is_idempotent(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    blob = await store.write_stream(chunks(b"x"), max_size=10)
    assert store.delete(blob.blob_id) is True
    assert store.delete(blob.blob_id) is False


def _pieces(total: int, size: int) -> list[bytes]:
    data = hashlib.shake_256(str(total).encode()).digest(total)
    return [data[i:i + size] for i in range(0, total, size)]


def test_the_store_hashes_with_the_envelopes_hash() -> None:
    """storage cannot import relay, so it names BLAKE3 itself: both must give the same hash."""
    data = _pieces(100_003, 100_003)[0]
    hasher = new_hasher()
    hasher.update(data)
    assert hasher.hexdigest() == blob_hash(data) == b3(data)


# Writeback is requested in steps of STEP while the hash runs inline: lengths on either side of
# a step, in chunks that do not divide it, must all hash and store right.
@pytest.mark.parametrize("total", [0, 1, STEP - 1, STEP, STEP + 1, 3 * STEP + 12345])
async def test_blobs_hash_right_on_every_side_of_a_writeback_step(tmp_path: Path, total: int) -> None:
    store = BlobStore(tmp_path / "blobs")
    pieces = _pieces(total, 70001)
    blob = await store.write_stream(chunks(*pieces), max_size=1 << 30)
    assert (blob.size, blob.hash) == (total, b3(b"".join(pieces)))
    assert store.path(blob.blob_id).read_bytes() == b"".join(pieces)


@pytest.mark.parametrize("parts", [(b"RLY\x01rest",), (b"R", b"LY\x01", b"rest"), (b"RL",), ()])
async def test_a_blob_without_the_expected_header_is_refused_and_leaves_nothing(tmp_path: Path,
                                                                                parts: tuple[bytes, ...]) -> None:
    store = BlobStore(tmp_path / "blobs")
    with pytest.raises(BlobFormatMismatch):
        await store.write_stream(chunks(*parts), max_size=100, prefix=b"RLY\x02")
    assert [p for p in (tmp_path / "blobs").rglob("*") if p.is_file()] == []
    blob = await store.write_stream(chunks(b"R", b"LY\x02", b"rest"), max_size=100, prefix=b"RLY\x02")
    assert store.path(blob.blob_id).read_bytes() == b"RLY\x02rest"


async def test_an_upload_without_the_expected_header_is_not_promoted(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    store.start_upload("upl_0123456789abcdef")
    end = await store.append("upl_0123456789abcdef", chunks(b"RLY\x01", b"old"), offset=0, limit=100)
    with pytest.raises(BlobFormatMismatch):
        await store.promote("upl_0123456789abcdef", expect_size=end, expect_hash=b3(b"RLY\x01old"),
                            prefix=b"RLY\x02")
    assert list((tmp_path / "blobs" / "objects").rglob("*")) == []


async def test_a_resumed_upload_hashes_the_whole_of_its_parts(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    store.start_upload("upl_0123456789abcdef")
    first, second = _pieces(STEP + 7, 65536), _pieces(2 * STEP + 3, 100003)
    end = await store.append("upl_0123456789abcdef", chunks(*first), offset=0, limit=1 << 30)
    end = await store.append("upl_0123456789abcdef", chunks(*second), offset=end, limit=1 << 30)
    whole = b"".join(first + second)
    blob = await store.promote("upl_0123456789abcdef", expect_size=len(whole), expect_hash=b3(whole))
    assert store.path(blob.blob_id).read_bytes() == whole


async def test_a_cancelled_upload_closes_its_file_and_keeps_only_what_was_acknowledged(tmp_path: Path) -> None:
    open_before = len(os.listdir("/proc/self/fd"))
    store = BlobStore(tmp_path / "blobs")
    store.start_upload("upl_0123456789abcdef")
    acknowledged = await store.append("upl_0123456789abcdef", chunks(b"k" * 1000), offset=0, limit=1 << 30)
    arrived = asyncio.Event()

    async def stalls() -> AsyncIterator[bytes]:
        for piece in _pieces(STEP * 2, 65536):
            yield piece
        arrived.set()
        await asyncio.sleep(3600)  # a client that stops sending
        yield b""

    task = asyncio.create_task(store.append("upl_0123456789abcdef", stalls(), offset=acknowledged, limit=1 << 30))
    await arrived.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(os.listdir("/proc/self/fd")) == open_before  # no descriptor left to a writeback request
    assert store.upload_path("upl_0123456789abcdef").read_bytes() == b"k" * 1000


def test_the_audit_chain_links_with_the_same_hash() -> None:
    from storage.audit import FIELDS, GENESIS, entry_hash

    entry = {"seq": 1, "at": "2026-11-21T12:00:00.000000Z", "action": "item.submitted"}
    body = '{"action":"item.submitted","actor_device":null,"actor_person":null,"at":"2026-11-21T12:00:00.000000Z",' \
           '"case_id":null,"code":null,"item_id":null,"seq":1,"subject":null}'
    assert len(FIELDS) == 9
    assert entry_hash(GENESIS, entry) == b3(GENESIS.encode() + body.encode())
