"""Security events without an unbounded chain, and the counters limits read.

A refusal (a failed sign-in, a refused challenge, a revoked device's request, a wrong kiosk
code) is worth recording, but an attacker must not be able to grow the seven-year audit chain
at will by repeating one. So the first refusal of a kind by one actor in a window is an audit
entry as before, and its repeats in that window only count up a row of ``security_tallies``.
When the window has closed, the count goes into the chain as one ``security.repeated`` entry
(its ``code`` names the action and reason, its ``subject`` the number of repeats): by the next
refusal with the same key, or by :func:`flush` (which the purge worker runs). However many
refusals arrive, each actor and reason costs at most two entries per window.
"""

from __future__ import annotations

from typing import Any

import aiosqlite

from . import audit
from .db import Database
from .rows import Actor, one

_KEY = ("action", "actor_person", "actor_device", "case_id", "item_id", "subject", "code")
REPEATED = "security.repeated"


def _key(action: str, actor: Actor, *, case_id: str | None, item_id: str | None, subject: str | None,
         code: str | None) -> dict[str, str]:
    return {"action": action, "actor_person": actor.person or "", "actor_device": actor.device or "",
            "case_id": case_id or "", "item_id": item_id or "", "subject": subject or "", "code": code or ""}


async def _close(conn: aiosqlite.Connection, tally: dict[str, Any], now: str) -> None:
    """Write a closed window's repeats as one entry and forget the window."""
    if tally["repeats"]:
        reason = tally["action"] + (f":{tally['code']}" if tally["code"] else "")
        await audit.append(conn, at=now, action=REPEATED, actor_person=tally["actor_person"] or None,
                           actor_device=tally["actor_device"] or None, case_id=tally["case_id"] or None,
                           item_id=tally["item_id"] or None, subject=str(tally["repeats"]), code=reason)
    await conn.execute(f"DELETE FROM security_tallies WHERE {' AND '.join(f'{k} = ?' for k in _KEY)}",
                       tuple(tally[k] for k in _KEY))


async def record(conn: aiosqlite.Connection, *, action: str, now: str, window_end: str, actor: Actor,
                 case_id: str | None = None, item_id: str | None = None, subject: str | None = None,
                 code: str | None = None) -> bool:
    """Inside the caller's transaction: audit this refusal, or count it as a repeat of one already
    audited in the current window. True if it became an entry of its own."""
    key = _key(action, actor, case_id=case_id, item_id=item_id, subject=subject, code=code)
    tally = await one(conn, f"SELECT * FROM security_tallies WHERE {' AND '.join(f'{k} = ?' for k in _KEY)}",
                      tuple(key.values()))
    if tally is not None and tally["window_end"] > now:
        await conn.execute(f"UPDATE security_tallies SET repeats = repeats + 1 WHERE"
                           f" {' AND '.join(f'{k} = ?' for k in _KEY)}", tuple(key.values()))
        return False
    if tally is not None:
        await _close(conn, tally, now)
    await audit.append(conn, at=now, action=action, actor_person=actor.person, actor_device=actor.device,
                       case_id=case_id, item_id=item_id, subject=subject, code=code)
    await conn.execute(
        f"INSERT INTO security_tallies ({', '.join(_KEY)}, window_start, window_end, repeats)"
        f" VALUES ({', '.join('?' for _ in _KEY)}, ?, ?, 0)", (*key.values(), now, window_end))
    return True


async def flush(db: Database, *, now: str, limit: int = 500) -> int:
    """Write the repeats of every window that has closed; returns how many windows were closed."""

    async def run(conn: aiosqlite.Connection) -> int:
        async with conn.execute("SELECT * FROM security_tallies WHERE window_end <= ? ORDER BY window_end LIMIT ?",
                                (now, limit)) as cur:
            closed = [dict(r) for r in await cur.fetchall()]
        for tally in closed:
            await _close(conn, tally, now)
        return len(closed)

    return await db.write(run)


async def pending_repeats(db: Database) -> int:
    """Repeats counted in windows not yet written to the chain (for tests and the operator)."""
    row = await db.fetchone("SELECT COALESCE(SUM(repeats), 0) FROM security_tallies")
    return int(row[0]) if row else 0


# -- counters of attempts, for limits that are not about one person --------------------------


async def count_events(conn: aiosqlite.Connection, *, kind: str, key: str, since: str) -> int:
    row = await one(conn, "SELECT COUNT(*) AS n FROM limit_events WHERE kind = ? AND key = ? AND at > ?",
                    (kind, key, since))
    return int(row["n"]) if row else 0


async def add_event(conn: aiosqlite.Connection, *, kind: str, key: str, now: str, forget_before: str) -> int:
    """Count one attempt; attempts older than ``forget_before`` no longer matter and go. The
    attempt's row id (to take it back with :func:`remove_event`)."""
    await conn.execute("DELETE FROM limit_events WHERE kind = ? AND key = ? AND at <= ?", (kind, key, forget_before))
    cursor = await conn.execute("INSERT INTO limit_events (kind, key, at) VALUES (?, ?, ?)", (kind, key, now))
    return int(cursor.lastrowid or 0)


async def remove_event(conn: aiosqlite.Connection, event: int) -> None:
    await conn.execute("DELETE FROM limit_events WHERE rowid = ?", (event,))
