"""Approved devices and sessions: who may act through which device.

A person acts only through an approved device *and* a session won by signing a fresh,
single-use server challenge with their own Ed25519 key on that device. Sessions are short,
expire when idle, and end at sign-out, at revocation of the device or the person, and when the
device may no longer serve the person (a terminal whose institution no longer holds their case).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from relay import ids
from relay.envelope import documents
from relay.server import tokens
from relay.server.context import Context
from relay.server.errors import LoginRefused, SessionRequired, Unauthenticated
from relay.server.principal import Principal
from storage import accounts, cases
from storage.clock import iso, parse
from storage.rows import Actor

# Which enrolled role each kind of device serves. Terminals serve participants whose case is
# at the terminal's institution; every other device serves the one person it is bound to.
SERVES = {
    "coordinator_console": "coordinator",
    "mediator_desk": "mediator",
    "participant_device": "participant",
    "terminal": "participant",
}
_TOUCH_EVERY = timedelta(seconds=30)


def _window_end(ctx: Context) -> str:
    """Repeated refusals by one actor for one reason until then are counted, not appended
    (``storage.security``: an attacker cannot grow the audit chain at will)."""
    return iso(ctx.clock.now() + timedelta(seconds=ctx.settings.security_event_window_seconds))


@dataclass(frozen=True)
class Presented:
    """A request's tokens (split into id and secret) and the rows they name, read in one
    snapshot as the request arrives, nothing cached: not yet checked."""

    device_token: tuple[str, str] | None
    device: dict[str, Any] | None
    session_token: tuple[str, str] | None
    session: dict[str, Any] | None  # with its "person" and "institutions" (storage.accounts.credentials)


async def presented(ctx: Context, device_token: str | None, session_token: str | None) -> Presented:
    device_parts = tokens.split(device_token) if device_token else None
    session_parts = tokens.split(session_token) if session_token else None
    if device_parts is None:
        return Presented(None, None, session_parts, None)
    device, session = await accounts.credentials(ctx.db, device_parts[0], session_parts[0] if session_parts else None)
    return Presented(device_parts, device, session_parts, session)


async def authenticate_device(ctx: Context, presented: Presented) -> dict[str, Any]:
    """The approved, unrevoked device the device token belongs to, or Unauthenticated."""
    parts, device = presented.device_token, presented.device
    if parts is None or device is None or not tokens.matches(parts[1], device["token_hash"]):
        # Same answer for unknown, malformed and wrong: nothing to learn by probing.
        raise Unauthenticated()
    if device["status"] != "active":
        await accounts.record_security_event(
            ctx.db, action="device.refused", now=ctx.now_iso(),
            actor=Actor(person=None, device=device["id"]), code="revoked", window_end=_window_end(ctx))
        raise Unauthenticated()
    return {k: v for k, v in device.items() if k != "token_hash"}


async def may_serve(ctx: Context, device: dict[str, Any], person: dict[str, Any]) -> bool:
    institutions = await cases.institutions_of_person(ctx.db, person["id"]) if device["kind"] == "terminal" else set()
    return serves(device, person, institutions)


def serves(device: dict[str, Any], person: dict[str, Any], institutions: set[str]) -> bool:
    """Whether this device may serve this person now; ``institutions``: where the person has an
    open case (a terminal serves only people with a case at its institution)."""
    if person["status"] != "active" or SERVES.get(device["kind"]) != person["role"]:
        return False
    if device["kind"] == "terminal":
        return device["institution_id"] in institutions
    return bool(device["person_id"] == person["id"])


async def issue_challenge(ctx: Context, device: dict[str, Any], person_id: str) -> dict[str, Any]:
    person = await accounts.get_person(ctx.db, person_id) if ids.valid("person", person_id) else None
    if person is None or not await may_serve(ctx, device, person):
        await accounts.record_security_event(
            ctx.db, action="login.refused", now=ctx.now_iso(),
            actor=Actor(person=None, device=device["id"]), code="device-may-not-serve", window_end=_window_end(ctx))
        raise LoginRefused()
    now = ctx.clock.now()
    row = {
        "id": ids.new("challenge"),
        "device_id": device["id"],
        "person_id": person_id,
        "nonce": documents.b64e(secrets.token_bytes(32)),
        "created_at": iso(now),
        "expires_at": iso(now + timedelta(seconds=ctx.settings.challenge_seconds)),
    }
    await accounts.create_challenge(ctx.db, row)
    return {"challenge_id": row["id"], "challenge": row["nonce"], "expires_at": row["expires_at"]}


async def open_session(ctx: Context, device: dict[str, Any], challenge_id: str, signature: str) -> dict[str, Any]:
    now = ctx.clock.now()
    challenge = await accounts.consume_challenge(
        ctx.db, challenge_id=challenge_id, device_id=device["id"], now=iso(now))
    person = await accounts.get_person(ctx.db, challenge["person_id"]) if challenge else None
    actor = Actor(person=challenge["person_id"] if challenge else None, device=device["id"])
    try:
        if challenge is None or person is None or not await may_serve(ctx, device, person):
            raise documents.EnvelopeError()
        statement = documents.login_statement(
            challenge=challenge["nonce"], device_id=device["id"], person_id=person["id"])
        documents.verify(documents.Domain.LOGIN, statement, signature, documents.b64d(person["sign_pk"]))
    except (documents.EnvelopeError, ValueError):
        await accounts.record_security_event(ctx.db, action="login.failed", now=iso(now), actor=actor,
                                             window_end=_window_end(ctx))
        raise LoginRefused() from None
    assert person is not None
    lifetime = (ctx.settings.terminal_session_max_seconds if device["kind"] == "terminal"
                else ctx.settings.session_max_seconds)
    session_id = ids.new("session")
    token, secret_hash = tokens.issue(session_id)
    expires = iso(now + timedelta(seconds=lifetime))
    await accounts.create_session(ctx.db, {
        "id": session_id, "device_id": device["id"], "person_id": person["id"], "secret_hash": secret_hash,
        "created_at": iso(now), "last_seen_at": iso(now), "expires_at": expires,
    }, actor=actor, refund_since=iso(now - timedelta(seconds=ctx.settings.bundle_refund_seconds)))
    return {"session_token": token, "expires_at": expires, "idle_seconds": ctx.settings.session_idle_seconds,
            "person_id": person["id"], "role": person["role"]}


async def resume_session(ctx: Context, device: dict[str, Any], presented: Presented) -> Principal:
    """The principal for the session token presented with this device, or SessionRequired."""
    parts, session = presented.session_token, presented.session
    if parts is None or session is None or not tokens.matches(parts[1], session["secret_hash"]):
        raise SessionRequired()
    now = ctx.clock.now()
    idle_limit = parse(session["last_seen_at"]) + timedelta(seconds=ctx.settings.session_idle_seconds)
    if not _stands(session, device, now) or now >= idle_limit:
        raise SessionRequired()
    person = session["person"]  # read with the session, in the same snapshot
    if now - parse(session["last_seen_at"]) >= _TOUCH_EVERY:
        await accounts.touch_session(ctx.db, session["id"], iso(now))
    return Principal(device=device, person=person, session_id=session["id"])


async def still_signed_in(ctx: Context, who: Principal) -> bool:
    """Whether ``who``'s device and session still stand as the guard would find them if the same
    tokens came now (the tokens matched when ``who`` was made). Idleness aside: a delivery being
    streamed is the session in use."""
    device, session = await accounts.credentials(ctx.db, who.device_id, who.session_id)
    if device is None or device["status"] != "active":
        return False
    return who.session_id is None or (session is not None and _stands(session, device, ctx.clock.now()))


def _stands(session: dict[str, Any], device: dict[str, Any], now: datetime) -> bool:
    """A session (as ``accounts.credentials`` reads it, with its person) still stands on this
    device: not ended nor expired, and the device may still serve its person. The guard adds its
    token and idleness to this; the recheck of a delivery under way does not."""
    person = session["person"]
    return (session["device_id"] == device["id"] and session["ended_at"] is None
            and now < parse(session["expires_at"])
            and person is not None and serves(device, person, session["institutions"]))


async def end_session(ctx: Context, principal: Principal) -> None:
    assert principal.session_id is not None
    await accounts.end_session(ctx.db, principal.session_id, now=ctx.now_iso(), actor=principal.actor)
