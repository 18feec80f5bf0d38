"""Items (letters, videos) and their lifecycle. Every change of state is a compare-and-set on
the state it expects, inside the single writer, with its audit entry in the same transaction."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import aiosqlite

from . import audit
from .clock import iso, parse
from .db import Database
from .errors import AlreadyDecided, Conflict, NotFound, QuotaExceeded
from .rows import Actor, insert, many_now, one, one_now
from .session_checks import still_signed_in

# What a listing returns: never the manifest's sealed keys or the decision document.
_SUMMARY = (
    "id, case_id, kind, sender_id, recipient_id, state, content_type, size, created_at, submitted_at,"
    " decision, decided_by, decided_at, reason_code, hold_code, held_from, first_opened_at,"
    " poster_blob_id IS NOT NULL AS has_poster, screening_code, damaged_at, damaged_part"
)


# States no request serves or lists: still uploading, or being purged.
HIDDEN_STATES = ("uploading", "expired", "purged")
_LISTED = f"state NOT IN {HIDDEN_STATES}"


@dataclass(frozen=True)
class Quota:
    """What one person may submit: items since ``since`` (a day ago), bytes waiting for review."""

    items_per_day: int
    pending_bytes: int | None
    since: str


# Sent and not yet decided: what a sender's pending bytes count (held items wait, too).
_WAITING = "state IN ('pending_review', 'held', 'uploading') AND decided_at IS NULL"


# What a sender has used of their quota, in one statement (one trip to the database's thread).
_QUOTA_USE = ("SELECT COUNT(*) AS sent, MIN(submitted_at) AS oldest, (SELECT COALESCE(SUM(size), 0) FROM items"
              f" WHERE sender_id = :person AND {_WAITING} AND recipient_id IS NOT NULL) AS pending"
              " FROM items WHERE sender_id = :person AND submitted_at > :since")


def _judge_quota(used: dict[str, Any], quota: Quota, size: int) -> None:
    if used["sent"] >= quota.items_per_day:
        # A rolling day: the oldest counted item leaves the window a day after it was sent.
        resets = iso(parse(used["oldest"]) + timedelta(days=1)) if used["oldest"] else None
        raise QuotaExceeded("items_per_day", quota.items_per_day, int(used["sent"]), resets)
    if quota.pending_bytes is not None and used["pending"] + size > quota.pending_bytes:
        raise QuotaExceeded("pending_bytes", quota.pending_bytes, int(used["pending"]), None)


async def _check_quota(conn: aiosqlite.Connection, person_id: str, quota: Quota, size: int) -> None:
    used = await one(conn, _QUOTA_USE, {"person": person_id, "since": quota.since})
    assert used is not None  # aggregates always answer one row
    _judge_quota(used, quota, size)


async def check_quota(db: Database, person_id: str, quota: Quota, *, size: int) -> None:
    """Raise QuotaExceeded if an item of ``size`` bytes would pass the person's quota now."""
    # A snapshot on the event loop: the rows are one person's of a day, by index.
    used = await db.snapshot(lambda conn: conn.execute(_QUOTA_USE, {"person": person_id, "since": quota.since})
                             .fetchone())
    assert used is not None
    _judge_quota(dict(used), quota, size)


async def create(db: Database, row: dict[str, Any], *, actor: Actor, quota: Quota | None = None,
                 session: str | None = None) -> dict[str, Any]:
    """Record an item whose blob is already durable. This is the moment of acknowledgement.

    With ``quota``, the sender's quota is checked in the same transaction as the insert; with
    ``session``, that the sender's session is still open (else SignedOut)."""

    async def run(conn: aiosqlite.Connection) -> dict[str, Any]:
        await still_signed_in(conn, session)
        if await one(conn, "SELECT id FROM items WHERE id = ?", (row["id"],)):
            raise Conflict("an item with that id exists")
        if quota is not None:
            await _check_quota(conn, row["sender_id"], quota, row["size"] if row["state"] == "pending_review" else 0)
        await insert(conn, "items", row)
        await _activity(conn, row["case_id"], row["submitted_at"])
        await audit.append(conn, at=row["submitted_at"], action="item.submitted", actor_person=actor.person,
                           actor_device=actor.device, case_id=row["case_id"], item_id=row["id"],
                           code=row["state"])
        if row.get("screening_code"):
            await audit.append(conn, at=row["submitted_at"], action="item.referred", actor_person=actor.person,
                               actor_device=actor.device, case_id=row["case_id"], item_id=row["id"],
                               code=row["screening_code"])
        if row.get("decision"):
            await audit.append(conn, at=row["submitted_at"], action=f"item.{row['decision']}",
                               actor_person=actor.person, actor_device=actor.device, case_id=row["case_id"],
                               item_id=row["id"], code=row.get("reason_code"))
        return row

    return await db.write(run)


async def _activity(conn: aiosqlite.Connection, case_id: str, now: str) -> None:
    """New activity in a case: retention's grace period reads it."""
    await conn.execute("UPDATE cases SET last_activity_at = ? WHERE id = ? AND COALESCE(last_activity_at, '') < ?",
                       (now, case_id, now))


async def get(db: Database, item_id: str) -> dict[str, Any] | None:
    # By key, read by most requests about an item: a snapshot (no trip to a thread).
    return await db.snapshot(lambda conn: one_now(conn, "SELECT * FROM items WHERE id = ?", (item_id,)))


async def decide(
    db: Database, *, item_id: str, expect_state: str, changes: dict[str, Any], now: str, actor: Actor,
    session: str | None = None,
) -> None:
    """Apply a mediator's decision if the item is still in ``expect_state`` (else Conflict) and,
    with ``session``, the mediator's session is still open (else SignedOut)."""

    async def run(conn: aiosqlite.Connection) -> None:
        await still_signed_in(conn, session)
        item = await one(conn, "SELECT case_id, state, decision, decided_at FROM items WHERE id = ?", (item_id,))
        if item is None:
            raise NotFound("item")
        if item["state"] != expect_state:
            raise AlreadyDecided(item["state"], item["decision"], item["decided_at"])
        sets = ", ".join(f"{k} = ?" for k in changes)
        await conn.execute(f"UPDATE items SET {sets} WHERE id = ?", (*changes.values(), item_id))
        await _activity(conn, item["case_id"], now)
        await audit.append(conn, at=now, action=f"item.{changes['decision']}", actor_person=actor.person,
                           actor_device=actor.device, case_id=item["case_id"], item_id=item_id,
                           code=changes.get("reason_code"))

    await db.write(run)


async def hold(db: Database, *, item_id: str, code: str, now: str, actor: Actor) -> bool:
    """Hold an item that screening now blocks; True if this call held it."""

    async def run(conn: aiosqlite.Connection) -> bool:
        item = await one(conn, "SELECT case_id, state FROM items WHERE id = ?", (item_id,))
        if item is None or item["state"] not in ("pending_review", "released"):
            return False
        await conn.execute("UPDATE items SET state = 'held', held_from = ?, hold_code = ? WHERE id = ?",
                           (item["state"], code, item_id))
        await audit.append(conn, at=now, action="item.held", actor_person=actor.person, actor_device=actor.device,
                           case_id=item["case_id"], item_id=item_id, code=code)
        return True

    return await db.write(run)


async def record_receipt(
    db: Database, *, item_id: str, receipt_doc: str, receipt_sig: str, now: str, actor: Actor
) -> bool:
    """First open of a released item: delivered. Later receipts change nothing (False)."""

    async def run(conn: aiosqlite.Connection) -> bool:
        item = await one(conn, "SELECT case_id, state FROM items WHERE id = ?", (item_id,))
        if item is None:
            raise NotFound("item")
        if item["state"] == "delivered":
            return False
        if item["state"] != "released":
            raise Conflict("the item is not released")
        await conn.execute(
            "UPDATE items SET state = 'delivered', first_opened_at = ?, receipt_doc = ?, receipt_sig = ? WHERE id = ?",
            (now, receipt_doc, receipt_sig, item_id),
        )
        await audit.append(conn, at=now, action="item.delivered", actor_person=actor.person,
                           actor_device=actor.device, case_id=item["case_id"], item_id=item_id)
        return True

    return await db.write(run)


async def _summaries(db: Database, where: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
    return [dict(r) for r in await db.fetchall(f"SELECT {_SUMMARY} FROM items WHERE {where}", params)]


async def sent_by(db: Database, person_id: str) -> list[dict[str, Any]]:
    return await _summaries(db, f"sender_id = ? AND {_LISTED} ORDER BY submitted_at", (person_id,))


async def released_to(db: Database, person_id: str) -> list[dict[str, Any]]:
    """Items released to this participant, including those a hold may have set aside since
    (screening at fetch, the caller's job, decides which are served now)."""
    return await db.snapshot(lambda conn: released_now(conn, person_id))


def released_now(conn: sqlite3.Connection, person_id: str) -> list[dict[str, Any]]:
    return many_now(conn, f"SELECT {_SUMMARY} FROM items WHERE recipient_id = ? AND (state IN ('released',"
                    " 'delivered') OR (state = 'held' AND held_from = 'released')) ORDER BY decided_at", (person_id,))


_OF_MY_CASES = "case_id IN (SELECT case_id FROM case_mediators WHERE person_id = ?)"


async def review_queue(db: Database, mediator_id: str) -> list[dict[str, Any]]:
    """Pending and held items between participants of the mediator's cases, oldest first."""
    return await _summaries(db, "state IN ('pending_review', 'held') AND recipient_id IS NOT NULL AND "
                            f"{_OF_MY_CASES} ORDER BY submitted_at", (mediator_id,))


async def mediator_inbox(db: Database, mediator_id: str) -> list[dict[str, Any]]:
    """Items participants addressed to the mediators of the mediator's cases."""
    return await _summaries(db, "recipient_id IS NULL AND state IN ('released', 'delivered', 'held') AND "
                            f"{_OF_MY_CASES} ORDER BY submitted_at", (mediator_id,))


async def of_case(db: Database, case_id: str) -> list[dict[str, Any]]:
    return await _summaries(db, f"case_id = ? AND {_LISTED} ORDER BY submitted_at", (case_id,))


async def mark_mediator_read(db: Database, *, item_id: str, now: str, actor: Actor) -> bool:
    """A mediator opened an item addressed to the mediators: delivered, first time only."""

    async def run(conn: aiosqlite.Connection) -> bool:
        item = await one(conn, "SELECT case_id, state FROM items WHERE id = ? AND recipient_id IS NULL", (item_id,))
        if item is None:
            raise NotFound("item")
        if item["state"] != "released":
            return False
        await conn.execute("UPDATE items SET state = 'delivered', first_opened_at = ? WHERE id = ?", (now, item_id))
        await audit.append(conn, at=now, action="item.delivered", actor_person=actor.person,
                           actor_device=actor.device, case_id=item["case_id"], item_id=item_id)
        return True

    return await db.write(run)


async def held_in_case(db: Database, case_id: str) -> list[dict[str, Any]]:
    return await _summaries(db, "case_id = ? AND state = 'held'", (case_id,))


async def back_to_review(conn: aiosqlite.Connection, item_id: str, *, now: str, actor: Actor) -> str | None:
    """Inside the caller's transaction: a held item goes back to review (never straight to the
    recipient), its old decision cleared so the mediator decides again. Returns the superseded
    delivery blob, for the caller to delete once the transaction has committed."""
    item = await one(conn, "SELECT case_id, state, recipient_id, blob_id, delivery_blob_id FROM items WHERE id = ?",
                     (item_id,))
    if item is None or item["state"] != "held":
        return None
    back_to = "pending_review" if item["recipient_id"] is not None else "released"
    await conn.execute(
        "UPDATE items SET state = ?, held_from = NULL, hold_code = NULL, decision = NULL, decision_doc = NULL,"
        " decision_sig = NULL, decision_hash = NULL, decided_by = NULL, decided_at = NULL, delivery_blob_id = NULL"
        " WHERE id = ?",
        (back_to, item_id),
    )
    await audit.append(conn, at=now, action="item.returned_to_review", actor_person=actor.person,
                       actor_device=actor.device, case_id=item["case_id"], item_id=item_id)
    superseded = item["delivery_blob_id"]
    return superseded if superseded and superseded != item["blob_id"] else None


async def unhold(db: Database, *, item_id: str, code: str, now: str, actor: Actor) -> bool:
    """Put a held item back where screening found it (a release stays signed and valid), only if
    it is still held for ``code``, the hold the caller screened as lapsed: a withdrawal of consent
    committed since the caller read the item relabels the hold, and must then win."""

    async def run(conn: aiosqlite.Connection) -> bool:
        item = await one(conn, "SELECT case_id, state, held_from, hold_code FROM items WHERE id = ?", (item_id,))
        if item is None or item["state"] != "held" or item["held_from"] is None or item["hold_code"] != code:
            return False
        await conn.execute("UPDATE items SET state = held_from, held_from = NULL, hold_code = NULL WHERE id = ?",
                           (item_id,))
        await audit.append(conn, at=now, action="item.hold_released", actor_person=actor.person,
                           actor_device=actor.device, case_id=item["case_id"], item_id=item_id,
                           code=item["held_from"])
        return True

    return await db.write(run)


async def referenced_blobs(db: Database) -> set[str]:
    rows = await db.fetchall("SELECT blob_id FROM items UNION SELECT delivery_blob_id FROM items"
                             " WHERE delivery_blob_id IS NOT NULL UNION SELECT poster_blob_id FROM items"
                             " WHERE poster_blob_id IS NOT NULL")
    return {r[0] for r in rows}


async def mark_damaged(db: Database, *, item_id: str, part: str, now: str) -> bool:
    """A scrub found a blob of the item that no longer matches what was signed; True if newly marked."""

    async def run(conn: aiosqlite.Connection) -> bool:
        item = await one(conn, "SELECT case_id, damaged_at, damaged_part FROM items WHERE id = ?", (item_id,))
        parts = damaged_parts(item) if item else set()
        if item is None or part in parts:
            return False
        await conn.execute("UPDATE items SET damaged_at = COALESCE(damaged_at, ?), damaged_part = ? WHERE id = ?",
                           (now, ",".join(sorted(parts | {part})), item_id))
        await audit.append(conn, at=now, action="item.damaged", case_id=item["case_id"], item_id=item_id, code=part)
        return True

    return await db.write(run)


async def scrub_page(db: Database, *, after_id: str, limit: int) -> list[dict[str, Any]]:
    """Items whose blobs a scrub checks, in id order: everything stored and not being purged."""
    rows = await db.fetchall(
        "SELECT id, kind, size, hash, blob_id, delivery_blob_id, decision_doc, manifest, poster_blob_id, damaged_at"
        f" FROM items WHERE id > ? AND state NOT IN {HIDDEN_STATES} ORDER BY id LIMIT ?", (after_id, limit))
    return [dict(r) for r in rows]


def damaged_parts(item: dict[str, Any]) -> set[str]:
    """Which stored blobs of the item a scrub found damaged: 'original', 'delivery', 'poster'."""
    return set(filter(None, (item.get("damaged_part") or "").split(",")))


async def review_backlog(db: Database) -> tuple[int, str | None]:
    """How many items wait for a mediator (pending or held), and when the oldest was submitted."""
    row = await db.fetchone(
        "SELECT COUNT(*) AS n, MIN(submitted_at) AS oldest FROM items WHERE state IN ('pending_review', 'held')")
    return (row["n"], row["oldest"]) if row else (0, None)
