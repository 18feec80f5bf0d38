"""What a backup copy of the database holds, read from the copy itself (never from the live
database, which has moved on since the snapshot): its schema version, its audit head, and the
files on disk its rows point at (blobs, and the acknowledged part of unfinished uploads)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from .audit import GENESIS


@dataclass(frozen=True)
class Snapshot:
    schema_version: int
    audit_seq: int  # 0: an empty chain
    audit_head: str
    blobs: frozenset[str]
    uploads: dict[str, int]  # upload id -> acknowledged offset (bytes a client may resume from)


def read_snapshot(path: Path) -> Snapshot:
    """Facts of the database file at ``path`` (a backup copy), opened read-only."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        version = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()[0]
        head = conn.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
        if head is None:  # every entry pruned, or none yet: the anchor (or the genesis) is the head
            head = conn.execute("SELECT seq, hash FROM audit_anchor WHERE id = 1").fetchone() or (0, GENESIS)
        blobs = {row[0] for row in conn.execute(
            "SELECT blob_id FROM items UNION SELECT delivery_blob_id FROM items WHERE delivery_blob_id IS NOT NULL"
            " UNION SELECT poster_blob_id FROM items WHERE poster_blob_id IS NOT NULL") if row[0]}
        uploads = {row[0]: int(row[1]) for row in conn.execute("SELECT id, offset FROM uploads")}
    finally:
        conn.close()
    return Snapshot(int(version), int(head[0]), str(head[1]), frozenset(blobs), uploads)
