"""No-contact conditions and approvals: added, amended, lifted and revoked, never silently edited."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import aiosqlite

from . import audit
from .db import Database
from .errors import Conflict, NotFound
from .rows import Actor, insert, many_now, one

_FIELDS = ("kind", "reference", "restricted_id", "protected_people", "protected_case_id", "protected_side",
           "direction", "effective_from", "effective_until", "program_exception")


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "protected_people": json.loads(row["protected_people"]),
            "program_exception": bool(row["program_exception"])}


async def _record_version(conn: aiosqlite.Connection, condition_id: str, change: str, now: str,
                          actor: Actor) -> dict[str, Any]:
    row = await one(conn, "SELECT * FROM conditions WHERE id = ?", (condition_id,))
    assert row is not None
    snapshot = json.dumps(_decode(row), sort_keys=True, separators=(",", ":"))
    await insert(conn, "condition_versions", {"condition_id": condition_id, "version": row["version"],
                                              "recorded_at": now, "recorded_by": actor.person, "change": change,
                                              "snapshot": snapshot})
    await audit.append(conn, at=now, action=f"condition.{change}", actor_person=actor.person,
                       actor_device=actor.device, subject=condition_id, case_id=row["protected_case_id"],
                       code=f"{row['kind']}:v{row['version']}")
    return _decode(row)


async def _check_people(conn: aiosqlite.Connection, values: dict[str, Any]) -> None:
    people = [values["restricted_id"], *values["protected_people"]]
    for person_id in people:
        if not await one(conn, "SELECT id FROM people WHERE id = ? AND role = 'participant'", (person_id,)):
            raise NotFound("person")
    if values.get("protected_case_id") and not await one(
            conn, "SELECT id FROM cases WHERE id = ?", (values["protected_case_id"],)):
        raise NotFound("case")


async def add(db: Database, *, id: str, values: dict[str, Any], now: str, actor: Actor) -> dict[str, Any]:
    async def run(conn: aiosqlite.Connection) -> dict[str, Any]:
        await _check_people(conn, values)
        row = {**{k: values.get(k) for k in _FIELDS}, "id": id, "version": 1, "created_at": now, "updated_at": now}
        row["protected_people"] = json.dumps(sorted(values["protected_people"]))
        row["program_exception"] = int(bool(values["program_exception"]))
        await insert(conn, "conditions", row)
        return await _record_version(conn, id, "added", now, actor)

    return await db.write(run)


async def amend(db: Database, *, id: str, values: dict[str, Any], now: str, actor: Actor) -> dict[str, Any]:
    """A new version with the given fields changed; the old version stays in the history."""

    async def run(conn: aiosqlite.Connection) -> dict[str, Any]:
        current = await one(conn, "SELECT * FROM conditions WHERE id = ?", (id,))
        if current is None:
            raise NotFound("condition")
        if current["lifted_at"] is not None:
            raise Conflict("a lifted condition is not amended; add a new one")
        merged = {**_decode(current), **values}
        await _check_people(conn, merged)
        sets = {k: merged[k] for k in _FIELDS}
        sets["protected_people"] = json.dumps(sorted(merged["protected_people"]))
        sets["program_exception"] = int(bool(merged["program_exception"]))
        sets |= {"version": current["version"] + 1, "updated_at": now}
        await conn.execute(f"UPDATE conditions SET {', '.join(f'{k} = ?' for k in sets)} WHERE id = ?",
                           (*sets.values(), id))
        return await _record_version(conn, id, "amended", now, actor)

    return await db.write(run)


async def lift(db: Database, *, id: str, now: str, actor: Actor) -> dict[str, Any]:
    async def run(conn: aiosqlite.Connection) -> dict[str, Any]:
        current = await one(conn, "SELECT version, lifted_at FROM conditions WHERE id = ?", (id,))
        if current is None:
            raise NotFound("condition")
        if current["lifted_at"] is not None:
            raise Conflict("the condition is already lifted")
        await conn.execute("UPDATE conditions SET lifted_at = ?, updated_at = ?, version = version + 1 WHERE id = ?",
                           (now, now, id))
        return await _record_version(conn, id, "lifted", now, actor)

    return await db.write(run)


async def get(db: Database, condition_id: str) -> dict[str, Any] | None:
    row = await db.fetchone("SELECT * FROM conditions WHERE id = ?", (condition_id,))
    return _decode(dict(row)) if row else None


async def history(db: Database, condition_id: str) -> list[dict[str, Any]]:
    rows = await db.fetchall("SELECT * FROM condition_versions WHERE condition_id = ? ORDER BY version",
                             (condition_id,))
    return [{**dict(r), "snapshot": json.loads(r["snapshot"])} for r in rows]


async def list_all(db: Database) -> list[dict[str, Any]]:
    return [_decode(dict(r)) for r in await db.fetchall("SELECT * FROM conditions ORDER BY created_at")]


def for_case(conn: sqlite3.Connection, case_id: str, member_ids: list[str]) -> list[dict[str, Any]]:
    """Unlifted conditions restricting a member: the only ones that can cover an exchange in this case.

    Runs on the caller's read connection so it belongs to the same snapshot as the case.
    """
    if not member_ids:
        return []
    marks = ", ".join("?" for _ in member_ids)
    rows = many_now(conn, f"SELECT * FROM conditions WHERE restricted_id IN ({marks}) AND lifted_at IS NULL",
                    tuple(member_ids))
    return [_decode(r) for r in rows]


def approvals_for_case(conn: sqlite3.Connection, case_id: str) -> list[dict[str, Any]]:
    rows = many_now(conn, "SELECT * FROM approvals WHERE case_id = ? AND revoked_at IS NULL", (case_id,))
    return [{**r, "directions": json.loads(r["directions"]), "kinds": json.loads(r["kinds"])} for r in rows]


async def approve(db: Database, *, row: dict[str, Any], now: str, actor: Actor) -> dict[str, Any]:
    async def run(conn: aiosqlite.Connection) -> dict[str, Any]:
        condition = await one(conn, "SELECT lifted_at FROM conditions WHERE id = ?", (row["condition_id"],))
        if condition is None or not await one(conn, "SELECT id FROM cases WHERE id = ?", (row["case_id"],)):
            raise NotFound("condition or case")
        stored = {**row, "directions": json.dumps(sorted(row["directions"])), "kinds": json.dumps(sorted(row["kinds"])),
                  "approved_by": actor.person, "approved_at": now}
        await insert(conn, "approvals", stored)
        await audit.append(conn, at=now, action="approval.recorded", actor_person=actor.person,
                           actor_device=actor.device, case_id=row["case_id"], subject=row["id"],
                           code=row["condition_id"])
        return {**row, "approved_by": actor.person, "approved_at": now}

    return await db.write(run)


async def revoke_approval(db: Database, *, approval_id: str, now: str, actor: Actor) -> None:
    async def run(conn: aiosqlite.Connection) -> None:
        row = await one(conn, "SELECT case_id, revoked_at FROM approvals WHERE id = ?", (approval_id,))
        if row is None:
            raise NotFound("approval")
        if row["revoked_at"] is not None:
            return
        await conn.execute("UPDATE approvals SET revoked_at = ?, revoked_by = ? WHERE id = ?",
                           (now, actor.person, approval_id))
        await audit.append(conn, at=now, action="approval.revoked", actor_person=actor.person,
                           actor_device=actor.device, case_id=row["case_id"], subject=approval_id)

    await db.write(run)


async def list_approvals(db: Database) -> list[dict[str, Any]]:
    rows = await db.fetchall("SELECT * FROM approvals ORDER BY approved_at")
    return [{**dict(r), "directions": json.loads(r["directions"]), "kinds": json.loads(r["kinds"])} for r in rows]
