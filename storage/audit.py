"""The audit chain: append-only, hash-linked, metadata only.

Each entry records who (person and device ids), what (an action name), which case or item,
when, and a code (a decision or reason code). Never content, never names, never secrets: the
program's protocol allows activity records to say that something happened, not what was said.

``hash = BLAKE3-256(prev_hash || canonical JSON of the entry's fields)`` (the envelope's one hash); the first entry links
to 64 zeros. Editing any field, removing an entry or inserting one breaks a link that
:func:`verify` finds. Removing the newest entries leaves a shorter valid chain, so operators
record the head (``relay audit verify`` prints it) outside the server and pass it back with
``--expect-head``.

Entries older than the retention schedule's ``audit_entry`` period go from the start of the
chain (:func:`prune`). The hash of the newest entry removed stays as the chain's *anchor*, so
what remains still verifies, and a trigger refuses to delete any entry the anchor does not
cover. Nothing of a case under legal hold is pruned: pruning stops at its first entry. The
national unit exports the chain (``relay audit export``) before its entries age out.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import aiosqlite

from .db import Database
from .hashing import new_hasher
from .rows import one

GENESIS = "0" * 64
FIELDS = ("seq", "at", "action", "actor_person", "actor_device", "case_id", "item_id", "subject", "code")


def entry_hash(prev_hash: str, entry: dict[str, Any]) -> str:
    body = json.dumps({k: entry.get(k) for k in FIELDS}, sort_keys=True, separators=(",", ":"))
    hasher = new_hasher()
    hasher.update(prev_hash.encode("ascii") + body.encode("utf-8"))
    return hasher.hexdigest()


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
    last = await one(conn, "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
    seq, prev = (last["seq"] + 1, last["hash"]) if last else (1, GENESIS)
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


async def append_many(conn: aiosqlite.Connection, entries: list[dict[str, Any]], *, actor: Any) -> None:
    """Append several entries in one statement (a purge's tombstones), linked in order."""
    if not entries:
        return
    last = await one(conn, "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
    seq, prev = (last["seq"], last["hash"]) if last else (0, GENESIS)
    rows = []
    for given in entries:
        seq += 1
        entry = {k: given.get(k) for k in FIELDS} | {"seq": seq, "actor_person": actor.person,
                                                     "actor_device": actor.device}
        digest = entry_hash(prev, entry)
        rows.append((*(entry[k] for k in FIELDS), prev, digest))
        prev = digest
    await conn.executemany(
        "INSERT INTO audit_log (seq, at, action, actor_person, actor_device, case_id, item_id, subject,"
        " code, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)


async def prune(db: Database, *, before: str, now: str, limit: int = 5000) -> int:
    """Remove up to ``limit`` of the oldest entries dated before ``before``, stopping at the first
    newer one and at the first entry of a case under legal hold. Records the anchor, and the
    pruning itself as a new entry. Returns how many went."""

    async def run(conn: aiosqlite.Connection) -> int:
        async with conn.execute(
            "SELECT a.seq, a.at, a.hash, c.legal_hold_since FROM audit_log a LEFT JOIN cases c ON c.id = a.case_id"
            " WHERE a.seq < (SELECT MAX(seq) FROM audit_log) ORDER BY a.seq LIMIT ?", (limit,)) as cur:
            rows = await cur.fetchall()  # never the newest entry: the chain always has a head to go on from
        last = None
        for row in rows:
            if row["at"] >= before or row["legal_hold_since"] is not None:
                break
            last = row
        if last is None:
            return 0
        await conn.execute("INSERT INTO audit_anchor (id, seq, hash, at) VALUES (1, ?, ?, ?) ON CONFLICT (id)"
                           " DO UPDATE SET seq = excluded.seq, hash = excluded.hash, at = excluded.at",
                           (last["seq"], last["hash"], now))
        cur = await conn.execute("DELETE FROM audit_log WHERE seq <= ?", (last["seq"],))
        # The pruning is itself on the chain, naming the anchor: an anchor no such entry names
        # (entries cut from the start by hand) fails verification.
        await append(conn, at=now, action="audit.pruned", subject=_anchor_name(last["seq"], last["hash"]),
                     code="audit-entry")
        return cur.rowcount

    return await db.write(run)


def _anchor_name(seq: int, digest: str) -> str:
    return f"{seq}:{digest}"


@dataclass(frozen=True)
class Verification:
    ok: bool
    entries: int
    head: str
    problem: str | None = None
    bad_seq: int | None = None
    first_seq: int = 1  # after pruning, the chain starts later, at the anchor


def _broken_link(row: Any, entry: dict[str, Any], prev: str, expected_seq: int, count: int) -> Verification | None:
    """What is wrong with ``row`` as the entry after ``prev`` at ``expected_seq``, if anything:
    the one check shared by the database's chain and an exported copy."""
    if row["seq"] != expected_seq:
        return Verification(False, count, prev, "an entry is missing or out of order", row["seq"])
    if row["prev_hash"] != prev:
        return Verification(False, count, prev, "an entry does not link to the one before", row["seq"])
    if entry_hash(prev, entry) != row["hash"]:
        return Verification(False, count, prev, "an entry was altered", row["seq"])
    return None


async def verify(db: Database, *, expect_head: str | None = None) -> Verification:
    """Walk the chain from the start; report the first entry that does not link."""

    async def walk(conn: aiosqlite.Connection) -> Verification:
        async with conn.execute("SELECT seq, hash FROM audit_anchor WHERE id = 1") as cur:
            anchor = await cur.fetchone()
        prev, count, expected_seq = (anchor["hash"], 0, anchor["seq"] + 1) if anchor else (GENESIS, 0, 1)
        first = expected_seq
        named = None  # the anchor the newest pruning entry names
        async with conn.execute(f"SELECT {', '.join(FIELDS)}, prev_hash, hash FROM audit_log ORDER BY seq") as cur:
            async for row in cur:
                if broken := _broken_link(row, {k: row[k] for k in FIELDS}, prev, expected_seq, count):
                    return broken
                prev, count, expected_seq = row["hash"], count + 1, expected_seq + 1
                if row["action"] == "audit.pruned":
                    named = row["subject"]
        if anchor is not None and named != _anchor_name(anchor["seq"], anchor["hash"]):
            return Verification(False, count, prev, "the chain starts after entries no pruning entry accounts for",
                                first)
        if expect_head is not None and expect_head != prev:
            known = await (await conn.execute("SELECT seq FROM audit_log WHERE hash = ?", (expect_head,))).fetchone()
            if known is None:
                return Verification(False, count, prev, "the recorded head is not in the chain (entries removed"
                                    " from the end, or it is older than the pruned start)")
        return Verification(True, count, prev, first_seq=first)

    return await db.read(walk)


def verify_rows(rows: Iterable[dict[str, Any]], *, expect_head: str | None = None) -> Verification:
    """Verify an exported chain on its own (no database): each entry's hash, each link, no gap.

    An export that starts after pruning begins with the anchor's link (its first ``prev_hash``),
    which the national unit checks against the last entry of its previous export.
    """
    prev: str | None = None
    count, first, expected_seq = 0, 1, None
    head_seen, named, start = False, None, ""
    for row in rows:
        entry = {k: row.get(k) for k in FIELDS}
        if prev is None:  # the first entry sets where this export starts
            prev, expected_seq, first = row["prev_hash"], row["seq"], row["seq"]
            start = str(prev)
            if not isinstance(first, int) or first < 1 or (first == 1 and prev != GENESIS):
                return Verification(False, 0, str(prev), "the first entry does not start the chain", None)
        assert expected_seq is not None  # set by the first entry, above
        if broken := _broken_link(row, entry, prev, expected_seq, count):
            return broken
        prev, count, expected_seq = row["hash"], count + 1, row["seq"] + 1
        head_seen = head_seen or prev == expect_head
        if row["action"] == "audit.pruned":
            named = row["subject"]
    head = prev or GENESIS
    if count == 0:
        return Verification(False, 0, head, "the export holds no entries")
    if first > 1 and named != _anchor_name(first - 1, start):
        return Verification(False, count, head, "the export starts after entries no pruning entry accounts for",
                            first)
    if expect_head is not None and not head_seen:
        return Verification(False, count, head, "the recorded head is not in the export (entries removed from the end)")
    return Verification(True, count, head, first_seq=first)


async def entries(db: Database, *, after_seq: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
    rows = await db.fetchall(
        f"SELECT {', '.join(FIELDS)}, prev_hash, hash FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?",
        (after_seq, limit),
    )
    return [dict(row) for row in rows]


async def of_case(db: Database, case_id: str, *, actions: tuple[str, ...], after_seq: int = 0,
                  limit: int = 500) -> list[dict[str, Any]]:
    """A case's entries of the given actions, oldest first (a case's timeline)."""
    marks = ", ".join("?" for _ in actions)
    rows = await db.fetchall(
        f"SELECT {', '.join(FIELDS)} FROM audit_log WHERE case_id = ? AND seq > ? AND action IN ({marks})"
        " ORDER BY seq LIMIT ?", (case_id, after_seq, *actions, limit))
    return [dict(row) for row in rows]
