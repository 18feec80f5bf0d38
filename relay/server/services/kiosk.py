"""Kiosk codes: how a participant tells an institution's terminal who they are, without the
kiosk ever listing who has a case.

The coordinator gives each kiosk user a short code (8 characters from an alphabet with no
look-alikes, shown as ``XXXX-XXXX``) at enrollment or on request; it is shown once and only its
hash is stored. A terminal resolves a typed code to the person's id, only for someone that
terminal may serve (a participant with a case at its institution), then fetches their key
bundle and signs them in with their passphrase. The code is an identifier, not a secret that
opens anything: the passphrase still protects the key. Wrong codes are counted per terminal
(a few per quarter of an hour, then 429) and audited in aggregate.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from relay import ids
from relay.server.context import Context
from relay.server.errors import InvalidField, NotFound, RateLimited
from relay.server.principal import Principal
from relay.server.services import limits
from relay.server.services.sessions import may_serve
from relay.wire import KIOSK_CODE_ALPHABET, KIOSK_CODE_LENGTH
from storage import accounts
from storage import errors as storage_errors
from storage.clock import iso
from storage.rows import Actor

WINDOW = timedelta(minutes=15)
_DOMAIN = b"mediation-relay kiosk code v1\x00"


def new_code() -> str:
    raw = "".join(secrets.choice(KIOSK_CODE_ALPHABET) for _ in range(KIOSK_CODE_LENGTH))
    return f"{raw[:4]}-{raw[4:]}"


def normalize(typed: str) -> str | None:
    """The code as stored, from what a person typed (any case, spaces and dashes), or None."""
    code = "".join(ch for ch in typed.upper() if ch not in " -")
    if len(code) != KIOSK_CODE_LENGTH or any(ch not in KIOSK_CODE_ALPHABET for ch in code):
        return None
    return code


def code_hash(code: str) -> str:
    return hashlib.sha256(_DOMAIN + code.encode("ascii")).hexdigest()


async def issue(ctx: Context, who: Principal, person_id: str) -> dict[str, Any]:
    """A new kiosk code for a participant (the old one stops working), shown this once."""
    if not ids.valid("person", person_id):
        raise NotFound()
    for _ in range(5):
        code = new_code()
        try:
            await accounts.set_kiosk_code(ctx.db, person_id=person_id, code_hash=code_hash(normalize(code) or ""),
                                          now=ctx.now_iso(), actor=who.actor)
        except storage_errors.NotFound:
            raise NotFound() from None
        except storage_errors.Conflict as exc:
            if str(exc) == "that code is taken":
                continue
            raise InvalidField(errors=[{"field": "person_id", "message": "only participants sign in at a kiosk"}]
                               ) from None
        return {"person_id": person_id, "kiosk_code": code}
    raise RuntimeError("no free kiosk code after five draws")  # 5 collisions in 6.5e11: something is wrong


async def identify(ctx: Context, device: dict[str, Any], typed: str) -> dict[str, Any]:
    """The person a typed code names, if this terminal may serve them; else 404 (and counted)."""
    now = ctx.clock.now()
    since = iso(now - WINDOW)
    limit = ctx.settings.kiosk_code_attempts_per_terminal
    actor = Actor(person=None, device=device["id"])
    # Counted before the code is looked up, in the same transaction as the check: codes typed all
    # at once would otherwise all find the count below the limit, and all be tried.
    attempt = await accounts.reserve_kiosk_attempt(ctx.db, device_id=device["id"], now=iso(now), since=since,
                                                   limit=limit)
    if attempt is None:
        await limits.security_event(ctx, action="kiosk_code.rate_limited", actor=actor)
        raise RateLimited(retry_after_seconds=int(WINDOW.total_seconds()))
    code = normalize(typed)
    person = await accounts.person_by_kiosk_code(ctx.db, code_hash(code)) if code else None
    if person is not None and await may_serve(ctx, device, person):
        await accounts.refund_kiosk_attempt(ctx.db, attempt)  # only wrong codes count
        return {"person_id": person["id"]}
    # Wrong, or someone this terminal does not serve: the same answer, counted and audited in aggregate.
    await limits.security_event(ctx, action="kiosk_code.refused", actor=actor)
    raise NotFound()
