"""Institutions, enrolled people, approved devices, login challenges and sessions."""

from __future__ import annotations

import sqlite3
from typing import Any

import aiosqlite

from . import audit, cases, security
from .db import Database
from .errors import Conflict, NotFound
from .rows import Actor, insert, one, one_now

# -- institutions ---------------------------------------------------------------------------


async def create_institution(db: Database, *, id: str, name: str, now: str, actor: Actor) -> dict[str, Any]:
    async def run(conn: aiosqlite.Connection) -> dict[str, Any]:
        if await one(conn, "SELECT id FROM institutions WHERE name = ?", (name,)):
            raise Conflict("an institution with that name exists")
        row = {"id": id, "name": name, "created_at": now}
        await insert(conn, "institutions", row)
        await audit.append(conn, at=now, action="institution.created", actor_person=actor.person,
                           actor_device=actor.device, subject=id)
        return row

    return await db.write(run)


async def list_institutions(db: Database) -> list[dict[str, Any]]:
    return [dict(r) for r in await db.fetchall("SELECT * FROM institutions ORDER BY name")]


# -- people ---------------------------------------------------------------------------------

PERSON_PUBLIC = "id, role, relation, label, institution_id, sign_pk, box_pk, enrollment, enrollment_sig, status, created_at"


async def create_person(db: Database, row: dict[str, Any], *, now: str, actor: Actor) -> dict[str, Any]:
    async def run(conn: aiosqlite.Connection) -> dict[str, Any]:
        if await one(conn, "SELECT id FROM people WHERE id = ? OR sign_pk = ?", (row["id"], row["sign_pk"])):
            raise Conflict("that person or key is already enrolled")
        if row.get("institution_id") and not await one(
            conn, "SELECT id FROM institutions WHERE id = ?", (row["institution_id"],)
        ):
            raise NotFound("institution")
        await insert(conn, "people", {**row, "status": "active", "created_at": now})
        await audit.append(conn, at=now, action="person.enrolled", actor_person=actor.person,
                           actor_device=actor.device, subject=row["id"], code=row["role"])
        return {**row, "status": "active", "created_at": now}

    return await db.write(run)


async def get_person(db: Database, person_id: str) -> dict[str, Any] | None:
    # By key, read by most requests about an item or a person: a snapshot (no trip to a thread).
    return await db.snapshot(lambda conn: one_now(conn, f"SELECT {PERSON_PUBLIC} FROM people WHERE id = ?",
                                                  (person_id,)))


async def list_people(db: Database) -> list[dict[str, Any]]:
    return [dict(r) for r in await db.fetchall(f"SELECT {PERSON_PUBLIC} FROM people ORDER BY created_at")]


async def revoke_person(db: Database, person_id: str, *, now: str, actor: Actor) -> None:
    """Revoke an enrollment: the person's sessions end and their devices stop serving them."""

    async def run(conn: aiosqlite.Connection) -> None:
        person = await one(conn, "SELECT status FROM people WHERE id = ?", (person_id,))
        if person is None:
            raise NotFound("person")
        if person["status"] == "revoked":
            return
        await conn.execute("UPDATE people SET status = 'revoked' WHERE id = ?", (person_id,))
        await conn.execute(
            "UPDATE sessions SET ended_at = ? WHERE person_id = ? AND ended_at IS NULL", (now, person_id)
        )
        await audit.append(conn, at=now, action="person.revoked", actor_person=actor.person,
                           actor_device=actor.device, subject=person_id)

    await db.write(run)


async def get_key_bundle(db: Database, person_id: str) -> bytes | None:
    row = await db.fetchone("SELECT key_bundle FROM people WHERE id = ? AND status = 'active'", (person_id,))
    return bytes(row["key_bundle"]) if row and row["key_bundle"] is not None else None


async def record_bundle_fetch(
    db: Database, *, person_id: str, device_id: str, now: str, since: str, limit: int,
    terminal_limit: int | None = None, window_end: str | None = None,
) -> str | None:
    """Count this fetch against the per-person limit and the terminal's own; None if allowed,
    else which limit ('person' or 'terminal'). Only fetches not refunded by a sign-in count.

    A refusal is a security event: audited once per window, its repeats counted."""

    async def run(conn: aiosqlite.Connection) -> str | None:
        recent = await one(
            conn, "SELECT COUNT(*) AS n FROM bundle_fetches WHERE person_id = ? AND at > ? AND redeemed_at IS NULL",
            (person_id, since),
        )
        refused = None if recent is not None and recent["n"] < limit else "person"
        if refused is None and terminal_limit is not None:
            here = await one(conn, "SELECT COUNT(*) AS n FROM bundle_fetches WHERE device_id = ? AND at > ?"
                             " AND redeemed_at IS NULL", (device_id, since))
            refused = None if here is not None and here["n"] < terminal_limit else "terminal"
        if refused is None:
            await insert(conn, "bundle_fetches", {"person_id": person_id, "device_id": device_id, "at": now})
            await audit.append(conn, at=now, action="key_bundle.fetched", actor_device=device_id, subject=person_id)
        elif window_end is None:
            await audit.append(conn, at=now, action="key_bundle.rate_limited", actor_device=device_id,
                               subject=person_id, code=refused)
        else:
            await security.record(conn, action="key_bundle.rate_limited", now=now, window_end=window_end,
                                  actor=Actor(person=None, device=device_id), subject=person_id, code=refused)
        return refused

    return await db.write(run)


async def unlock_bundle(db: Database, *, person_id: str, now: str, actor: Actor) -> int:
    """The coordinator lifts a person's key-bundle limit: their unrefunded fetches stop counting."""

    async def run(conn: aiosqlite.Connection) -> int:
        if not await one(conn, "SELECT id FROM people WHERE id = ? AND role = 'participant'", (person_id,)):
            raise NotFound("person")
        cur = await conn.execute("UPDATE bundle_fetches SET redeemed_at = ? WHERE person_id = ? AND redeemed_at IS NULL",
                                 (now, person_id))
        await audit.append(conn, at=now, action="key_bundle.unlocked", actor_person=actor.person,
                           actor_device=actor.device, subject=person_id, code=str(cur.rowcount))
        return int(cur.rowcount)

    return await db.write(run)


# -- kiosk codes ----------------------------------------------------------------------------


async def set_kiosk_code(db: Database, *, person_id: str, code_hash: str, now: str, actor: Actor) -> None:
    """A participant's new kiosk code (its hash); the old one stops working."""

    async def run(conn: aiosqlite.Connection) -> None:
        person = await one(conn, "SELECT role, status FROM people WHERE id = ?", (person_id,))
        if person is None or person["status"] != "active":
            raise NotFound("person")
        if person["role"] != "participant":
            raise Conflict("only participants sign in at a kiosk")
        if await one(conn, "SELECT id FROM people WHERE kiosk_code_hash = ?", (code_hash,)):
            raise Conflict("that code is taken")  # one in 10^11: the caller draws another
        await conn.execute("UPDATE people SET kiosk_code_hash = ? WHERE id = ?", (code_hash, person_id))
        await audit.append(conn, at=now, action="kiosk_code.issued", actor_person=actor.person,
                           actor_device=actor.device, subject=person_id)

    await db.write(run)


async def person_by_kiosk_code(db: Database, code_hash: str) -> dict[str, Any] | None:
    row = await db.fetchone(f"SELECT {PERSON_PUBLIC} FROM people WHERE kiosk_code_hash = ? AND status = 'active'",
                            (code_hash,))
    return dict(row) if row else None


async def reserve_kiosk_attempt(db: Database, *, device_id: str, now: str, since: str, limit: int) -> int | None:
    """Count a code a terminal typed *before* it is looked up, in the transaction that checks the
    count: codes typed all at once cannot all find room under the limit. The attempt's row id, to
    refund if the code was right; None once the terminal has typed ``limit`` codes in the window."""

    async def run(conn: aiosqlite.Connection) -> int | None:
        if await security.count_events(conn, kind="kiosk-code", key=device_id, since=since) >= limit:
            return None
        return await security.add_event(conn, kind="kiosk-code", key=device_id, now=now, forget_before=since)

    return await db.write(run)


async def refund_kiosk_attempt(db: Database, attempt: int) -> None:
    """A right code is not a wrong one: its reserved attempt goes."""

    async def run(conn: aiosqlite.Connection) -> None:
        await security.remove_event(conn, attempt)

    await db.write(run)


# -- devices --------------------------------------------------------------------------------

DEVICE_PUBLIC = "id, kind, person_id, institution_id, label, status, created_at, revoked_at"


async def create_device(db: Database, row: dict[str, Any], *, now: str, actor: Actor) -> dict[str, Any]:
    async def run(conn: aiosqlite.Connection) -> dict[str, Any]:
        if row.get("person_id") and not await one(
            conn, "SELECT id FROM people WHERE id = ? AND status = 'active'", (row["person_id"],)
        ):
            raise NotFound("person")
        if row.get("institution_id") and not await one(
            conn, "SELECT id FROM institutions WHERE id = ?", (row["institution_id"],)
        ):
            raise NotFound("institution")
        await insert(conn, "devices", {**row, "status": "active", "created_at": now})
        await audit.append(conn, at=now, action="device.registered", actor_person=actor.person,
                           actor_device=actor.device, subject=row["id"], code=row["kind"])
        return {k: v for k, v in {**row, "status": "active", "created_at": now}.items() if k != "token_hash"}

    return await db.write(run)


async def list_devices(db: Database) -> list[dict[str, Any]]:
    return [dict(r) for r in await db.fetchall(f"SELECT {DEVICE_PUBLIC} FROM devices ORDER BY created_at")]


async def revoke_device(db: Database, device_id: str, *, now: str, actor: Actor) -> None:
    async def run(conn: aiosqlite.Connection) -> None:
        device = await one(conn, "SELECT status FROM devices WHERE id = ?", (device_id,))
        if device is None:
            raise NotFound("device")
        if device["status"] == "revoked":
            return
        await conn.execute("UPDATE devices SET status = 'revoked', revoked_at = ? WHERE id = ?", (now, device_id))
        await conn.execute(
            "UPDATE sessions SET ended_at = ? WHERE device_id = ? AND ended_at IS NULL", (now, device_id)
        )
        await audit.append(conn, at=now, action="device.revoked", actor_person=actor.person,
                           actor_device=actor.device, subject=device_id)

    await db.write(run)


# -- first coordinator ----------------------------------------------------------------------


async def has_people(db: Database) -> bool:
    return await db.fetchone("SELECT 1 FROM people LIMIT 1") is not None


async def create_bootstrap_code(db: Database, *, id: str, code_hash: str, now: str, expires_at: str) -> None:
    async def run(conn: aiosqlite.Connection) -> None:
        # Only the newest code is valid: a restart before first use replaces it.
        await conn.execute("UPDATE bootstrap_codes SET used_at = ? WHERE used_at IS NULL", (now,))
        await insert(conn, "bootstrap_codes",
                     {"id": id, "code_hash": code_hash, "created_at": now, "expires_at": expires_at})
        await audit.append(conn, at=now, action="bootstrap.code_issued", subject=id)

    await db.write(run)


async def get_bootstrap_code(db: Database, code_id: str, now: str) -> dict[str, Any] | None:
    row = await db.fetchone(
        "SELECT * FROM bootstrap_codes WHERE id = ? AND used_at IS NULL AND expires_at > ?", (code_id, now)
    )
    return dict(row) if row else None


async def bootstrap_coordinator(
    db: Database, *, code_id: str, person: dict[str, Any], device: dict[str, Any], now: str
) -> None:
    """Consume the code and create the first coordinator and their console, all or nothing."""

    async def run(conn: aiosqlite.Connection) -> None:
        cur = await conn.execute(
            "UPDATE bootstrap_codes SET used_at = ? WHERE id = ? AND used_at IS NULL AND expires_at > ?",
            (now, code_id, now),
        )
        if cur.rowcount != 1 or await one(conn, "SELECT 1 AS x FROM people LIMIT 1"):
            raise Conflict("the enrollment code was already used or has expired")
        await insert(conn, "people", {**person, "status": "active", "created_at": now})
        await insert(conn, "devices", {**device, "status": "active", "created_at": now})
        await audit.append(conn, at=now, action="bootstrap.coordinator_enrolled",
                           actor_person=person["id"], actor_device=device["id"], subject=code_id)

    await db.write(run)


# -- challenges and sessions ----------------------------------------------------------------


async def create_challenge(db: Database, row: dict[str, Any]) -> None:
    async def run(conn: aiosqlite.Connection) -> None:
        await insert(conn, "challenges", row)

    await db.write(run)


async def consume_challenge(
    db: Database, *, challenge_id: str, device_id: str, now: str
) -> dict[str, Any] | None:
    """Mark a challenge used and return it, or None if unknown, used, expired or another device's."""

    async def run(conn: aiosqlite.Connection) -> dict[str, Any] | None:
        row = await one(
            conn,
            "SELECT * FROM challenges WHERE id = ? AND device_id = ? AND used_at IS NULL AND expires_at > ?",
            (challenge_id, device_id, now),
        )
        if row is not None:
            await conn.execute("UPDATE challenges SET used_at = ? WHERE id = ?", (now, challenge_id))
        return row

    return await db.write(run)


async def create_session(db: Database, row: dict[str, Any], *, actor: Actor, refund_since: str = "") -> None:
    async def run(conn: aiosqlite.Connection) -> None:
        await insert(conn, "sessions", row)
        # A key bundle fetched shortly before its owner signed in on that terminal was opened by
        # them: it no longer counts against the limit that slows offline guessing. Older fetches
        # still count (a stranger's earlier fetches are not refunded by the owner's later sign-in).
        await conn.execute("UPDATE bundle_fetches SET redeemed_at = ? WHERE person_id = ? AND device_id = ?"
                           " AND redeemed_at IS NULL AND at >= ?",
                           (row["created_at"], row["person_id"], row["device_id"], refund_since))
        await audit.append(conn, at=row["created_at"], action="session.started", actor_person=actor.person,
                           actor_device=actor.device, subject=row["id"])

    await db.write(run)


async def credentials(db: Database, device_id: str, session_id: str | None
                      ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """What a request's tokens name, read together in one trip to a reader thread (every request
    needs it): the device with its token hash, and the session (if ``session_id``) with its
    person (``person``, public columns) and the institutions where that person has an open case
    (``institutions``: where a terminal may serve them). Nothing is checked here."""

    def run(conn: sqlite3.Connection) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        device = one_now(conn, f"SELECT {DEVICE_PUBLIC}, token_hash FROM devices WHERE id = ?", (device_id,))
        session = one_now(conn, "SELECT * FROM sessions WHERE id = ?", (session_id,)) if session_id else None
        if session is not None:
            session["person"] = one_now(conn, f"SELECT {PERSON_PUBLIC} FROM people WHERE id = ?",
                                        (session["person_id"],))
            session["institutions"] = cases.institutions_now(conn, session["person_id"])
        return device, session

    return await db.snapshot(run)


async def touch_session(db: Database, session_id: str, now: str) -> None:
    async def run(conn: aiosqlite.Connection) -> None:
        await conn.execute("UPDATE sessions SET last_seen_at = ? WHERE id = ? AND ended_at IS NULL", (now, session_id))

    await db.write(run)


async def end_session(db: Database, session_id: str, *, now: str, actor: Actor) -> None:
    async def run(conn: aiosqlite.Connection) -> None:
        await conn.execute("UPDATE sessions SET ended_at = ? WHERE id = ? AND ended_at IS NULL", (now, session_id))
        await audit.append(conn, at=now, action="session.ended", actor_person=actor.person,
                           actor_device=actor.device, subject=session_id)

    await db.write(run)


async def record_security_event(
    db: Database, *, action: str, now: str, actor: Actor, subject: str | None = None, code: str | None = None,
    case_id: str | None = None, item_id: str | None = None, window_end: str | None = None,
) -> None:
    """Failed logins, refused tokens, screening refusals: audited with ids and a code only. With
    ``window_end``, repeats of the same event until then are counted, not appended
    (``storage.security``)."""

    async def run(conn: aiosqlite.Connection) -> None:
        if window_end is not None:
            await security.record(conn, action=action, now=now, window_end=window_end, actor=actor,
                                  subject=subject, code=code, case_id=case_id, item_id=item_id)
            return
        await audit.append(conn, at=now, action=action, actor_person=actor.person, actor_device=actor.device,
                           subject=subject, code=code, case_id=case_id, item_id=item_id)

    await db.write(run)


async def people_sharing_a_case(db: Database, person_id: str, institution_id: str | None = None) -> list[dict[str, Any]]:
    """Directory entries a person may see: everyone in their cases (only the cases at
    ``institution_id``, when given: what a terminal there may show), plus every coordinator."""
    rows = await db.fetchall(
        f"""WITH mine AS (SELECT case_id FROM case_participants WHERE person_id = :person
                          UNION SELECT case_id FROM case_mediators WHERE person_id = :person),
                 visible AS (SELECT id FROM cases WHERE id IN mine
                             AND (:institution IS NULL OR institution_id = :institution))
            SELECT {PERSON_PUBLIC} FROM people WHERE role = 'coordinator' OR id IN (
                SELECT person_id FROM case_participants WHERE case_id IN visible
                UNION SELECT person_id FROM case_mediators WHERE case_id IN visible)""",
        {"person": person_id, "institution": institution_id},
    )
    return [dict(r) for r in rows]
