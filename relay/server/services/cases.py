"""Cases: opened by the coordinator from a referral, never on an offender's own request."""

from __future__ import annotations

from typing import Any

from relay import ids
from relay.server.context import Context
from relay.server.errors import NotFound, OffenderRequestNotAccepted
from relay.server.principal import Principal
from relay.server.services import screening
from storage import cases

REFERRAL_SOURCES = ("victim", "institutional", "community")


async def open_case(ctx: Context, who: Principal, referral_source: str, institution_id: str) -> dict[str, Any]:
    # Program page: "requests made directly by an offender are not accepted" (only a staff,
    # victim or community referral opens a case).
    if referral_source not in REFERRAL_SOURCES:
        raise OffenderRequestNotAccepted(accepted=list(REFERRAL_SOURCES))
    return await cases.create_case(ctx.db, {
        "id": ids.new("case"), "institution_id": institution_id, "referral_source": referral_source,
    }, now=ctx.now_iso(), actor=who.actor)


async def add_member(ctx: Context, who: Principal, case_id: str, person_id: str, as_role: str) -> dict[str, Any]:
    await cases.add_member(ctx.db, case_id=case_id, person_id=person_id, as_role=as_role,
                           now=ctx.now_iso(), actor=who.actor)
    return await view(ctx, who, case_id)


async def set_consent(ctx: Context, who: Principal, case_id: str, person_id: str, consent: str) -> dict[str, Any]:
    change = await cases.set_consent(ctx.db, case_id=case_id, person_id=person_id, consent=consent,
                                     now=ctx.now_iso(), actor=who.actor)
    for blob_id in change.superseded_blobs:
        ctx.blobs.delete(blob_id)  # a rendition whose release no longer stands
    return {**await view(ctx, who, case_id), "items_held": len(change.held),
            "items_returned_to_review": len(change.returned_to_review)}


async def set_status(ctx: Context, who: Principal, case_id: str, status: str) -> dict[str, Any]:
    await cases.set_status(ctx.db, case_id=case_id, status=status, now=ctx.now_iso(), actor=who.actor)
    released = 0
    if status == "open":  # resuming: items the pause held at fetch are deliverable again if screening allows
        released = await screening.release_holds(ctx, who, [case_id], codes=("case-paused",))
    return {**await view(ctx, who, case_id), "items_released_from_hold": released}


async def view(ctx: Context, who: Principal, case_id: str) -> dict[str, Any]:
    """A case as the caller may see it; NotFound for a case they have no part in."""
    case = await cases.get_case(ctx.db, case_id) if ids.valid("case", case_id) else None
    if case is None or not visible_to(case, who):
        raise NotFound()
    if who.role == "participant":
        # A participant sees who they can write to, and their own consent; nothing about others'.
        return {
            "id": case["id"], "status": case["status"],
            "participants": [{"id": p["id"], "label": p["label"], "relation": p["relation"]}
                             for p in case["participants"]],
            "mediators": [{"id": m["id"], "label": m["label"]} for m in case["mediators"] if m["status"] == "active"],
            "my_consent": next(p["consent"] for p in case["participants"] if p["id"] == who.person_id),
        }
    return case


def visible_to(case: dict[str, Any], who: Principal) -> bool:
    if who.role == "coordinator":
        return True
    members = {p["id"] for p in case["participants"]} | {m["id"] for m in case["mediators"]}
    if who.person_id not in members:
        return False
    # A terminal serves only the cases held at its own institution.
    return who.device_kind != "terminal" or case["institution_id"] == who.device["institution_id"]


async def list_for(ctx: Context, who: Principal) -> list[dict[str, Any]]:
    if who.role == "coordinator":
        return await cases.list_cases(ctx.db)
    rows = await cases.list_cases(ctx.db, member=who.person_id)
    if who.device_kind == "terminal":
        rows = [c for c in rows if c["institution_id"] == who.device["institution_id"]]
    return [{k: c[k] for k in ("id", "status", "institution_id", "created_at")} for c in rows]
