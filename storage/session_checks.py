"""The one check a write makes of the session its request came with (``still_signed_in``).

Kept apart from ``accounts`` so the item and upload writes can use it without importing what
``accounts`` imports (cases, which imports items)."""

from __future__ import annotations

import aiosqlite

from .errors import SignedOut
from .rows import one


async def still_signed_in(conn: aiosqlite.Connection, session_id: str | None) -> None:
    """Inside a write: the session a request came with is still open, on an active device, for an
    active person. A request's content arrives after its guard read them (a video's rendition or
    one tus PATCH can take minutes): a sign-out or a revocation acknowledged meanwhile must win
    (SignedOut), and the write is not made."""
    if session_id is None:
        return
    if await one(conn, "SELECT 1 FROM sessions s JOIN devices d ON d.id = s.device_id"
                       " JOIN people p ON p.id = s.person_id WHERE s.id = ? AND s.ended_at IS NULL"
                       " AND d.status = 'active' AND p.status = 'active'", (session_id,)) is None:
        raise SignedOut()
