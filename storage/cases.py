"""Mediation cases, their participants (with consent) and their assigned mediators."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

import aiosqlite

from . import audit, conditions, items, retention
from .db import Database
from .errors import Conflict, NotFound, PausedByCoordinator
from .rows import Actor, insert, many, many_now, one, one_now


async def create_case(db: Database, row: dict[str, Any], *, now: str, actor: Actor) -> dict[str, Any]:
    async def run(conn: aiosqlite.Connection) -> dict[str, Any]:
        if not await one(conn, "SELECT id FROM institutions WHERE id = ?", (row["institution_id"],)):
            raise NotFound("institution")
        full = {**row, "status": "open", "created_at": now, "updated_at": now}
        if not full.get("label"):  # "Case 12": a name the desk can show instead of the id
            count = await one(conn, "SELECT COUNT(*) AS n FROM cases")
            full["label"] = f"Case {(count['n'] if count else 0) + 1}"
        await insert(conn, "cases", full)
        await audit.append(conn, at=now, action="case.opened", actor_person=actor.person,
                           actor_device=actor.device, case_id=row["id"], code=row["referral_source"])
        return full

    return await db.write(run)


async def add_member(
    db: Database, *, case_id: str, person_id: str, as_role: str, now: str, actor: Actor
) -> None:
    """Add a participant or assign a mediator; the person's enrolled role must match."""
    table = {"participant": "case_participants", "mediator": "case_mediators"}[as_role]

    async def run(conn: aiosqlite.Connection) -> None:
        case = await one(conn, "SELECT status FROM cases WHERE id = ?", (case_id,))
        person = await one(conn, "SELECT role, status FROM people WHERE id = ?", (person_id,))
        if case is None:
            raise NotFound("case")
        if person is None or person["status"] != "active":
            raise NotFound("person")
        if person["role"] != as_role:
            raise Conflict(f"that person is not enrolled as a {as_role}")
        if case["status"] == "closed":
            raise Conflict("the case is closed")
        if await one(conn, f"SELECT 1 AS x FROM {table} WHERE case_id = ? AND person_id = ?", (case_id, person_id)):
            raise Conflict(f"already a {as_role} of this case")
        row = {"case_id": case_id, "person_id": person_id}
        if as_role == "participant":
            row |= {"consent": "given", "consent_changed_at": now}
        await insert(conn, table, row)
        await conn.execute("UPDATE cases SET updated_at = ? WHERE id = ?", (now, case_id))
        await audit.append(conn, at=now, action=f"case.{as_role}_added", actor_person=actor.person,
                           actor_device=actor.device, case_id=case_id, subject=person_id)

    await db.write(run)


@dataclass(frozen=True)
class ConsentChange:
    held: list[str]  # items a withdrawal held
    returned_to_review: list[str]  # items a return of consent sent back to review
    superseded_blobs: list[str]  # delivery renditions no longer referenced: delete after commit


async def set_consent(
    db: Database, *, case_id: str, person_id: str, consent: str, now: str, actor: Actor
) -> ConsentChange:
    """Record a withdrawal or a return, and its effect on items, in one transaction.

    A withdrawal holds the person's undelivered exchanges at once. A return sends the items that
    withdrawal held back to the mediator's review, never straight to anyone.
    """

    async def run(conn: aiosqlite.Connection) -> ConsentChange:
        row = await one(conn, "SELECT consent FROM case_participants WHERE case_id = ? AND person_id = ?",
                        (case_id, person_id))
        if row is None:
            raise NotFound("participant")
        change = ConsentChange([], [], [])
        if row["consent"] == consent:
            return change
        await conn.execute(
            "UPDATE case_participants SET consent = ?, consent_changed_at = ? WHERE case_id = ? AND person_id = ?",
            (consent, now, case_id, person_id),
        )
        await audit.append(conn, at=now, action="case.consent_withdrawn" if consent == "withdrawn"
                           else "case.consent_given", actor_person=actor.person, actor_device=actor.device,
                           case_id=case_id, subject=person_id)
        theirs = "case_id = ? AND (sender_id = ? OR recipient_id = ?) AND recipient_id IS NOT NULL"
        if consent == "withdrawn":
            # Letters to the mediators are not held: writing to the mediator is never stopped.
            # An item a fetch already held for another reason (a pause, a condition) is taken
            # too: otherwise, once that reason lapsed, its old release would reach the recipient
            # although consent was withdrawn and returned in between (found by the stateful proof).
            for item in await many(conn, f"SELECT id, state, held_from FROM items WHERE {theirs}"
                                         " AND (state IN ('pending_review', 'released') OR (state = 'held'"
                                         " AND COALESCE(hold_code, '') != 'consent-withdrawn'))", (case_id, person_id, person_id)):
                await conn.execute(
                    "UPDATE items SET state = 'held', held_from = ?, hold_code = 'consent-withdrawn' WHERE id = ?",
                    (item["held_from"] if item["state"] == "held" else item["state"], item["id"]),
                )
                await audit.append(conn, at=now, action="item.held", actor_person=actor.person,
                                   actor_device=actor.device, case_id=case_id, item_id=item["id"],
                                   code="consent-withdrawn")
                change.held.append(item["id"])
        else:
            for item in await many(conn, f"SELECT id FROM items WHERE {theirs} AND state = 'held'"
                                         " AND hold_code = 'consent-withdrawn'", (case_id, person_id, person_id)):
                superseded = await items.back_to_review(conn, item["id"], now=now, actor=actor)
                change.returned_to_review.append(item["id"])
                if superseded:
                    change.superseded_blobs.append(superseded)
        return change

    return await db.write(run)


async def set_status(db: Database, *, case_id: str, status: str, now: str, actor: Actor) -> None:
    async def run(conn: aiosqlite.Connection) -> None:
        case = await one(conn, "SELECT status FROM cases WHERE id = ?", (case_id,))
        if case is None:
            raise NotFound("case")
        if case["status"] == "closed":
            raise Conflict("a closed case stays closed")
        if case["status"] == status:
            return
        await conn.execute("UPDATE cases SET status = ?, updated_at = ?, closed_at = ? WHERE id = ?",
                           (status, now, now if status == "closed" else None, case_id))
        paused = status == "paused"
        await conn.execute("UPDATE cases SET paused_by = ?, paused_at = ?, pause_reason = NULL WHERE id = ?",
                           (actor.person if paused else None, now if paused else None, case_id))
        await audit.append(conn, at=now, action=f"case.{status}", actor_person=actor.person,
                           actor_device=actor.device, case_id=case_id, code=status)

    await db.write(run)


async def set_pause(db: Database, *, case_id: str, paused: bool, reason: str, now: str, actor: Actor,
                    coordinator: bool) -> bool:
    """A case's mediator (or the coordinator) pauses or resumes it, with a reason code. A pause
    the national unit made is lifted only by the national unit. True if the status changed."""

    async def run(conn: aiosqlite.Connection) -> bool:
        case = await one(conn, "SELECT c.status, c.paused_by, p.role AS paused_by_role FROM cases c"
                               " LEFT JOIN people p ON p.id = c.paused_by WHERE c.id = ?", (case_id,))
        if case is None:
            raise NotFound("case")
        if case["status"] == "closed":
            raise Conflict("a closed case stays closed")
        if case["status"] == ("paused" if paused else "open"):
            return False
        if not paused and case["paused_by_role"] == "coordinator" and not coordinator:
            raise PausedByCoordinator("the national unit paused this case: only the coordinator resumes it")
        await conn.execute("UPDATE cases SET status = ?, updated_at = ?, paused_by = ?, paused_at = ?,"
                           " pause_reason = ? WHERE id = ?",
                           ("paused" if paused else "open", now, actor.person if paused else None,
                            now if paused else None, reason if paused else None, case_id))
        await audit.append(conn, at=now, action="case.paused" if paused else "case.resumed",
                           actor_person=actor.person, actor_device=actor.device, case_id=case_id, code=reason)
        return True

    return await db.write(run)


async def get_case(db: Database, case_id: str) -> dict[str, Any] | None:
    """The case with its members, conditions and approvals, in one snapshot: what screening decides on."""
    return await db.snapshot(lambda conn: case_now(conn, case_id))  # read on every screening: one trip


async def released_with_cases(db: Database, person_id: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Items released to this participant (:func:`storage.items.released_now`) and their cases
    by id (as :func:`get_case`), in one snapshot: what an inbox screens, in one trip."""

    def run(conn: sqlite3.Connection) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        released = items.released_now(conn, person_id)
        return released, {case_id: case_now(conn, case_id) for case_id in {i["case_id"] for i in released}}

    return await db.snapshot(run)


def case_now(conn: sqlite3.Connection, case_id: str) -> dict[str, Any] | None:
    """:func:`get_case` inside a snapshot."""
    case = one_now(conn, "SELECT * FROM cases WHERE id = ?", (case_id,))
    if case is None:
        return None
    case["participants"] = many_now(
        conn,
        "SELECT p.id, p.label, p.relation, p.status, p.institution_id, cp.consent, cp.consent_changed_at"
        " FROM case_participants cp JOIN people p ON p.id = cp.person_id WHERE cp.case_id = ?"
        " ORDER BY p.created_at",
        (case_id,),
    )
    case["mediators"] = many_now(
        conn,
        "SELECT p.id, p.label, p.status FROM case_mediators cm JOIN people p ON p.id = cm.person_id"
        " WHERE cm.case_id = ? ORDER BY p.created_at",
        (case_id,),
    )
    members = [p["id"] for p in case["participants"]]
    case["conditions"] = conditions.for_case(conn, case_id, members)
    case["approvals"] = conditions.approvals_for_case(conn, case_id)
    case["retention_overrides"] = retention.overrides_of(conn, case_id)
    return case


async def list_cases(db: Database, *, member: str | None = None) -> list[dict[str, Any]]:
    """Every case (coordinator), or the cases a person takes part in or mediates."""
    if member is None:
        rows = await db.fetchall("SELECT * FROM cases ORDER BY created_at")
    else:
        rows = await db.fetchall(
            "SELECT * FROM cases WHERE id IN (SELECT case_id FROM case_participants WHERE person_id = ?"
            " UNION SELECT case_id FROM case_mediators WHERE person_id = ?) ORDER BY created_at",
            (member, member),
        )
    return [dict(r) for r in rows]


async def institutions_of_person(db: Database, person_id: str) -> set[str]:
    """Institutions where this person has a case: where a terminal may serve them."""
    return await db.snapshot(lambda conn: institutions_now(conn, person_id))


def institutions_now(conn: sqlite3.Connection, person_id: str) -> set[str]:
    rows = conn.execute(
        "SELECT DISTINCT c.institution_id FROM cases c JOIN case_participants cp ON cp.case_id = c.id"
        " WHERE cp.person_id = ? AND c.status != 'closed'",
        (person_id,),
    ).fetchall()
    return {r[0] for r in rows}
