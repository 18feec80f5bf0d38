"""What ``/readyz`` asks of storage: can the database commit, is its schema this code's, can the
blob directory take a new file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import aiosqlite

from .db import Database, _migrations


async def database_writable(db: Database, now: str) -> bool:
    """A real commit through the single writer (a full disk or a read-only file fails it)."""

    async def run(conn: aiosqlite.Connection) -> None:
        await conn.execute("UPDATE readiness_probe SET checked_at = ? WHERE id = 1", (now,))

    try:
        await db.write(run)
    except Exception:
        return False
    return True


async def schema_current(db: Database) -> bool:
    row = await db.fetchone("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
    return row is not None and int(row[0]) == len(_migrations())


def directory_writable(directory: Path) -> bool:
    """A small file written, synced and removed in ``directory``."""
    try:
        fd, name = tempfile.mkstemp(dir=directory, prefix=".ready-", suffix=".part")
    except OSError:
        return False
    try:
        os.write(fd, b"ready")
        os.fsync(fd)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
        os.unlink(name)
