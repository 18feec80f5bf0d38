"""The audit chain: append-only, hash-linked, metadata only.

Each entry records who (person and device ids), what (an action name), which case or item,
when, and a code (a decision or reason code). Never content, never names, never secrets: the
program's protocol allows activity records to say that something happened, not what was said.

``hash = BLAKE2b-256(prev_hash || canonical JSON of the entry's fields)``; the first entry links
to 64 zeros. Editing any field, removing an entry or inserting one breaks a link that
:func:`verify` finds. Removing the newest entries leaves a shorter valid chain, so operators
record the head (``relay audit verify`` prints it) outside the server and pass it back with
``--expect-head``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import aiosqlite

from .db import Database

GENESIS = "0" * 64
FIELDS = ("seq", "at", "action", "actor_person", "actor_device", "case_id", "item_id", "subject", "code")


def entry_hash(prev_hash: str, entry: dict[str, Any]) -> str:
    body = json.dumps({k: entry.get(k) for k in FIELDS}, sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(prev_hash.encode("ascii") + body.encode("utf-8"), digest_size=32).hexdigest()


async def append(
    conn: aiosqlite.Connection,
    *,
    at: str,
    action: str,
    actor_person: str | None = None,
    actor_device: str | None = None,
    case_id: str | None = None,
    item_id: str | None = None,
    subject: str | None = None,
    code: str | None = None,
) -> int:
    """Append one entry inside the caller's write transaction (so it commits with the change)."""
    async with conn.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1") as cur:
        last = await cur.fetchone()
    seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
    entry = {
        "seq": seq, "at": at, "action": action, "actor_person": actor_person,
        "actor_device": actor_device, "case_id": case_id, "item_id": item_id,
        "subject": subject, "code": code,
    }
    await conn.execute(
        "INSERT INTO audit_log (seq, at, action, actor_person, actor_device, case_id, item_id, subject,"
        " code, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        (*(entry[k] for k in FIELDS), prev, entry_hash(prev, entry)),
    )
    return seq


@dataclass(frozen=True)
class Verification:
    ok: bool
    entries: int
    head: str
    problem: str | None = None
    bad_seq: int | None = None


async def verify(db: Database, *, expect_head: str | None = None) -> Verification:
    """Walk the chain from the start; report the first entry that does not link."""

    async def walk(conn: aiosqlite.Connection) -> Verification:
        prev, count, expected_seq = GENESIS, 0, 1
        async with conn.execute(f"SELECT {', '.join(FIELDS)}, prev_hash, hash FROM audit_log ORDER BY seq") as cur:
            async for row in cur:
                entry = {k: row[k] for k in FIELDS}
                if row["seq"] != expected_seq:
                    return Verification(False, count, prev, "an entry is missing or out of order", row["seq"])
                if row["prev_hash"] != prev:
                    return Verification(False, count, prev, "an entry does not link to the one before", row["seq"])
                if entry_hash(prev, entry) != row["hash"]:
                    return Verification(False, count, prev, "an entry was altered", row["seq"])
                prev, count, expected_seq = row["hash"], count + 1, expected_seq + 1
        if expect_head is not None and expect_head != prev:
            known = await (await conn.execute("SELECT seq FROM audit_log WHERE hash = ?", (expect_head,))).fetchone()
            if known is None:
                return Verification(False, count, prev, "the recorded head is not in the chain (entries removed from the end)")
        return Verification(True, count, prev)

    return await db.read(walk)


async def entries(db: Database, *, after_seq: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
    rows = await db.fetchall(
        f"SELECT {', '.join(FIELDS)}, prev_hash, hash FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?",
        (after_seq, limit),
    )
    return [dict(row) for row in rows]
