"""What retention needs from the metadata store: the facts it decides on, legal holds and per-case
overrides (audited), and the transactions of a purge.

A purge goes in steps, each durable before the next starts, so a crash anywhere leaves a state
the next run finishes:

1. :func:`mark` sets a due item to ``expired`` (remembering its state and the rule). From then
   on no request serves or lists it, but nothing is lost yet: a legal hold set now puts it back
   as it was (:func:`set_legal_hold`).
2. :func:`commit` moves marked items of cases not under hold to ``purged``: their deletion has
   begun and is always finished, even by a later run.
3. The caller deletes their blobs (idempotent, fsynced).
4. :func:`finish` deletes the rows, with manifest, sealed keys, decision and receipt, and
   appends the tombstones to the audit chain: the item's id, its case, the time and the rule.

The schedule itself is a pure decision (``policies.retention``); the caller passes it in as
``still_due``, which :func:`mark` asks again inside the write transaction, so a legal hold, an
override or a delivery that arrived since the caller looked is always respected.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

import aiosqlite

from . import audit
from .db import Database
from .errors import Conflict, LegalHoldActive, NotFound
from .rows import SYSTEM, Actor, many, many_now, one

OVERRIDABLE = ("review_wait", "released_undelivered", "after_delivery", "returned_or_withheld", "closed_case")
# States retention decides on. 'uploading' never holds content; 'expired' is already being purged.
LIVE_STATES = ("pending_review", "held", "released", "delivered", "returned", "withheld")
# What a withdrawn participant may have erased: everything they sent that nobody has opened.
UNDELIVERED = ("pending_review", "held", "released", "returned", "withheld")

_FACTS = "id, case_id, state, submitted_at, decided_at, first_opened_at"
_CASE_FACTS = "id, status, closed_at, legal_hold_since, last_activity_at"

StillDue = Callable[[dict[str, Any], dict[str, Any]], str | None]  # (item facts, case facts) -> rule or None


# -- legal hold and per-case overrides --------------------------------------------------------


async def set_legal_hold(db: Database, *, case_id: str, hold: bool, now: str, actor: Actor) -> bool:
    """Set or lift a case's legal hold; True if it changed."""

    async def run(conn: aiosqlite.Connection) -> bool:
        case = await one(conn, "SELECT legal_hold_since FROM cases WHERE id = ?", (case_id,))
        if case is None:
            raise NotFound("case")
        if (case["legal_hold_since"] is not None) == hold:
            return False
        await conn.execute("UPDATE cases SET legal_hold_since = ?, legal_hold_by = ?, updated_at = ? WHERE id = ?",
                           (now if hold else None, actor.person if hold else None, now, case_id))
        await audit.append(conn, at=now, action="case.legal_hold_set" if hold else "case.legal_hold_lifted",
                           actor_person=actor.person, actor_device=actor.device, case_id=case_id)
        if hold:  # items marked for a purge that has not begun are kept after all, as they were
            async with conn.execute("UPDATE items SET state = purge_from, purge_rule = NULL, purge_from = NULL"
                                    " WHERE case_id = ? AND state = 'expired' RETURNING id", (case_id,)) as cur:
                kept = [r[0] for r in await cur.fetchall()]
            await audit.append_many(conn, [{"at": now, "action": "item.purge_stopped", "case_id": case_id,
                                            "item_id": item_id, "code": "legal-hold"} for item_id in kept],
                                    actor=actor)
        return True

    return await db.write(run)


async def set_override(db: Database, *, case_id: str, rule: str, days: int | None, now: str, actor: Actor) -> None:
    """A per-case length for one rule (``days``), or back to the schedule's (None)."""
    if rule not in OVERRIDABLE:
        raise Conflict("that rule cannot be overridden per case")

    async def run(conn: aiosqlite.Connection) -> None:
        if await one(conn, "SELECT id FROM cases WHERE id = ?", (case_id,)) is None:
            raise NotFound("case")
        if days is None:
            cur = await conn.execute("DELETE FROM retention_overrides WHERE case_id = ? AND rule = ?", (case_id, rule))
            if cur.rowcount == 0:
                return  # there was none: nothing changed, nothing to record
        else:
            await conn.execute(
                "INSERT INTO retention_overrides (case_id, rule, days, set_by, set_at) VALUES (?,?,?,?,?)"
                " ON CONFLICT (case_id, rule) DO UPDATE SET days = excluded.days, set_by = excluded.set_by,"
                " set_at = excluded.set_at", (case_id, rule, days, actor.person, now))
        await audit.append(conn, at=now, action="case.retention_override", actor_person=actor.person,
                           actor_device=actor.device, case_id=case_id, subject=rule,
                           code=str(days) if days is not None else "default")

    await db.write(run)


def overrides_of(conn: sqlite3.Connection, case_id: str) -> dict[str, int]:
    return {r["rule"]: r["days"] for r in many_now(
        conn, "SELECT rule, days FROM retention_overrides WHERE case_id = ?", (case_id,))}


# -- the facts retention decides on -----------------------------------------------------------


async def item_page(db: Database, *, after_id: str, limit: int) -> list[dict[str, Any]]:
    """Live items in id order, ``limit`` at a time: a purge run walks all of them in bounded steps."""
    rows = await db.fetchall(
        f"SELECT {_FACTS} FROM items WHERE id > ? AND state IN ({_marks(LIVE_STATES)}) ORDER BY id LIMIT ?",
        (after_id, *LIVE_STATES, limit))
    return [dict(r) for r in rows]


async def case_facts(db: Database, case_ids: set[str]) -> dict[str, dict[str, Any]]:
    return await db.read(lambda conn: _case_facts(conn, case_ids))


async def _case_facts(conn: aiosqlite.Connection, case_ids: set[str]) -> dict[str, dict[str, Any]]:
    if not case_ids:
        return {}
    ids = tuple(case_ids)
    facts = {r["id"]: {**r, "overrides": {}} for r in await many(
        conn, f"SELECT {_CASE_FACTS} FROM cases WHERE id IN ({_marks(ids)})", ids)}
    for row in await many(conn, f"SELECT case_id, rule, days FROM retention_overrides WHERE case_id IN ({_marks(ids)})",
                          ids):
        facts[row["case_id"]]["overrides"][row["rule"]] = row["days"]
    return facts


# -- a purge, step by step --------------------------------------------------------------------


async def mark(db: Database, item_ids: list[str], still_due: StillDue) -> list[str]:
    """Step 1: set the items that are still due (asked again now, in the write transaction) to
    ``expired``. Never an item of a case under legal hold, whatever ``still_due`` says."""

    async def run(conn: aiosqlite.Connection) -> list[str]:
        rows = await many(conn, f"SELECT {_FACTS} FROM items WHERE id IN ({_marks(item_ids)})", tuple(item_ids))
        cases = await _case_facts(conn, {r["case_id"] for r in rows})
        chosen = []
        for item in rows:
            case = cases[item["case_id"]]
            if item["state"] not in LIVE_STATES or case["legal_hold_since"] is not None:
                continue
            rule = still_due(item, case)
            if rule is not None:
                chosen.append((rule, item["id"], item["state"]))
        return await _mark(conn, chosen)

    return await db.write(run)


async def _mark(conn: aiosqlite.Connection, chosen: list[tuple[str, str, str]]) -> list[str]:
    await conn.executemany("UPDATE items SET state = 'expired', purge_rule = ?, purge_from = state"
                           " WHERE id = ? AND state = ?", chosen)
    return [item_id for _, item_id, _ in chosen]


async def mark_for_erasure(db: Database, *, case_id: str, person_id: str, now: str, actor: Actor) -> list[str]:
    """Step 1 of a withdrawal's erasure: the participant's undelivered items, recorded in the
    audit chain with the request itself. Refused unless their consent is withdrawn, and while
    the case is under legal hold."""

    async def run(conn: aiosqlite.Connection) -> list[str]:
        case = await one(conn, "SELECT legal_hold_since FROM cases WHERE id = ?", (case_id,))
        member = await one(conn, "SELECT consent FROM case_participants WHERE case_id = ? AND person_id = ?",
                           (case_id, person_id))
        if case is None or member is None:
            raise NotFound("participant")
        if member["consent"] != "withdrawn":
            raise Conflict("erasure follows a withdrawal of consent")
        if case["legal_hold_since"] is not None:
            raise LegalHoldActive()
        rows = await many(conn, f"SELECT id, state FROM items WHERE case_id = ? AND sender_id = ? AND state IN"
                                f" ({_marks(UNDELIVERED)})", (case_id, person_id, *UNDELIVERED))
        await audit.append(conn, at=now, action="case.erasure", actor_person=actor.person, actor_device=actor.device,
                           case_id=case_id, subject=person_id, code="withdrawal-erasure")
        return await _mark(conn, [("withdrawal-erasure", r["id"], r["state"]) for r in rows])

    return await db.write(run)


async def commit(db: Database, *, item_ids: list[str] | None = None, limit: int) -> list[dict[str, Any]]:
    """Step 2: marked items (these, or any) of cases not under legal hold go to ``purged``: from
    here their deletion is always finished. Returns what the next steps need (blob names)."""

    async def run(conn: aiosqlite.Connection) -> list[dict[str, Any]]:
        which = f"id IN ({_marks(item_ids)})" if item_ids is not None else "1 = 1"
        async with conn.execute(
                f"UPDATE items SET state = 'purged' WHERE id IN (SELECT id FROM items WHERE {which} AND"
                " state = 'expired' AND case_id NOT IN (SELECT id FROM cases WHERE legal_hold_since IS NOT NULL)"
                " LIMIT ?) RETURNING id", (*(item_ids or ()), limit)) as cur:
            ids = tuple(r[0] for r in await cur.fetchall())
        return await _purging_rows(conn, f"id IN ({_marks(ids)})", ids) if ids else []

    if item_ids is not None and not item_ids:
        return []
    return await db.write(run)


async def committed(db: Database, *, limit: int) -> list[dict[str, Any]]:
    """Items whose deletion began but did not finish (a crash, a stop): the next run finishes them."""
    return await db.read(lambda conn: _purging_rows(conn, "state = 'purged' ORDER BY id LIMIT ?", (limit,)))


async def _purging_rows(conn: aiosqlite.Connection, where: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
    return await many(conn, f"SELECT id, case_id, blob_id, delivery_blob_id, poster_blob_id, purge_rule FROM items"
                            f" WHERE {where}", params)


async def finish(db: Database, rows: list[dict[str, Any]], *, now: str) -> list[dict[str, Any]]:
    """Step 4: the rows go, and each leaves a tombstone naming the rule. Idempotent: a row
    already gone (finished by an earlier run) is skipped. Returns the rows that went."""

    async def run(conn: aiosqlite.Connection) -> list[dict[str, Any]]:
        ids = tuple(r["id"] for r in rows)
        async with conn.execute(f"DELETE FROM items WHERE state = 'purged' AND id IN ({_marks(ids)}) RETURNING id",
                                ids) as cur:
            deleted = {r[0] for r in await cur.fetchall()}
        gone = [r for r in rows if r["id"] in deleted]
        await audit.append_many(conn, [{"at": now, "action": "item.purged", "case_id": r["case_id"],
                                        "item_id": r["id"], "code": r["purge_rule"]} for r in gone], actor=SYSTEM)
        tally: dict[str, int] = {}
        for row in gone:
            tally[row["purge_rule"]] = tally.get(row["purge_rule"], 0) + 1
        await conn.executemany("INSERT INTO retention_counts (rule, purged) VALUES (?, ?) ON CONFLICT (rule)"
                               " DO UPDATE SET purged = purged + excluded.purged", list(tally.items()))
        return gone

    if not rows:
        return []
    return await db.write(run)


# -- records with one clock: sessions, challenges, key-bundle fetches, bootstrap codes ---------


async def drop_old_sessions(db: Database, *, before: str, now: str) -> int:
    """Sessions that ended or expired before ``before``; login challenges and first-start codes
    past their expiry; key-bundle fetches older than ``before``. Ids and times only, but kept
    no longer than the schedule says."""

    async def run(conn: aiosqlite.Connection) -> int:
        cur = await conn.execute("DELETE FROM sessions WHERE COALESCE(ended_at, expires_at) < ?"
                                 " AND (ended_at IS NOT NULL OR expires_at < ?)", (before, now))
        dropped = cur.rowcount
        await conn.execute("DELETE FROM challenges WHERE expires_at < ?", (now,))
        await conn.execute("DELETE FROM bundle_fetches WHERE at < ?", (before,))
        await conn.execute("DELETE FROM bootstrap_codes WHERE expires_at < ? OR used_at IS NOT NULL", (now,))
        return dropped

    return await db.write(run)


# -- the schedule the relay runs with ----------------------------------------------------------


async def record_schedule(db: Database, *, schedule: str, now: str) -> None:
    async def run(conn: aiosqlite.Connection) -> None:
        await conn.execute("INSERT INTO retention_schedule (id, schedule, recorded_at) VALUES (1, ?, ?)"
                           " ON CONFLICT (id) DO UPDATE SET schedule = excluded.schedule,"
                           " recorded_at = excluded.recorded_at", (schedule, now))

    await db.write(run)


async def recorded_schedule(db: Database) -> str | None:
    row = await db.fetchone("SELECT schedule FROM retention_schedule WHERE id = 1")
    return str(row[0]) if row else None


# -- observability ----------------------------------------------------------------------------


async def status(db: Database) -> dict[str, Any]:
    async def run(conn: aiosqlite.Connection) -> dict[str, Any]:
        by_state = {r["state"]: r["n"] for r in await many(
            conn, "SELECT state, COUNT(*) AS n FROM items GROUP BY state")}
        purged = {r["rule"]: r["purged"] for r in await many(conn, "SELECT rule, purged FROM retention_counts")}
        holds = await one(conn, "SELECT COUNT(*) AS n FROM cases WHERE legal_hold_since IS NOT NULL")
        last = await one(conn, "SELECT * FROM retention_runs ORDER BY id DESC LIMIT 1")
        return {"items_by_state": by_state, "purged_by_rule": purged, "cases_under_legal_hold": holds["n"] if holds
                else 0, "last_run": last}

    return await db.read(run)


async def start_run(db: Database, *, now: str) -> int:
    async def run(conn: aiosqlite.Connection) -> int:
        cur = await conn.execute("INSERT INTO retention_runs (started_at) VALUES (?)", (now,))
        await conn.execute("DELETE FROM retention_runs WHERE id < ?", ((cur.lastrowid or 0) - 100,))
        return int(cur.lastrowid or 0)

    return await db.write(run)


async def finish_run(db: Database, run_id: int, *, now: str, counts: dict[str, int]) -> None:
    async def run(conn: aiosqlite.Connection) -> None:
        await conn.execute("UPDATE retention_runs SET finished_at = ?, items = ?, uploads = ?, sessions = ?, audit = ?"
                           " WHERE id = ?", (now, counts["items"], counts["uploads"], counts["sessions"],
                                             counts["audit"], run_id))

    await db.write(run)


def _marks(values: tuple[Any, ...] | list[Any]) -> str:
    return ", ".join("?" for _ in values)
