"""Cases: opened by the coordinator from a referral, never on an offender's own request."""

from __future__ import annotations

from typing import Any

from relay import i18n, ids
from relay.server.context import Context
from relay.server.errors import Conflict, InvalidField, NotFound, OffenderRequestNotAccepted
from relay.server.principal import Principal
from relay.server.services import screening
from relay.wire import PAUSE_REASONS, REFERRAL_SOURCES, REFERRAL_STORED, RESUME_REASONS
from storage import accounts, audit, cases, items
from storage import errors as storage_errors

# Words that mean the offender asked on their own: refused with the program's own sentence.
OFFENDER_REQUEST = ("offender", "offender-request", "offender_request", "self", "self-referral")


async def open_case(ctx: Context, who: Principal, referral_source: str, institution_id: str,
                    label: str | None = None) -> dict[str, Any]:
    # Program page: "requests made directly by an offender are not accepted" (only a staff,
    # victim or community referral opens a case). "staff" is the program's word for what is
    # stored as "institutional"; any other word is a mistake, not an offender's request.
    source = referral_source.strip().lower()
    if source in OFFENDER_REQUEST:
        raise OffenderRequestNotAccepted(accepted=list(REFERRAL_SOURCES))
    if source not in REFERRAL_SOURCES:
        raise InvalidField(errors=[{"field": "referral_source",
                                    "message": f"one of {', '.join(REFERRAL_SOURCES)}"}], accepted=list(REFERRAL_SOURCES))
    return await cases.create_case(ctx.db, {
        "id": ids.new("case"), "institution_id": institution_id,
        "referral_source": REFERRAL_STORED.get(source, source), "label": label,
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
    return [{k: c[k] for k in ("id", "label", "status", "institution_id", "created_at")} for c in rows]


# -- a case's mediators: pause and resume, the timeline -----------------------------------------


def _case_mediator(case: dict[str, Any] | None, who: Principal) -> bool:
    return case is not None and who.role == "mediator" and who.person_id in {
        m["id"] for m in case["mediators"] if m["status"] == "active"}


async def _staff_case(ctx: Context, who: Principal, case_id: str) -> dict[str, Any]:
    """The case, for the coordinator or one of its active mediators; NotFound for anyone else."""
    case = await cases.get_case(ctx.db, case_id) if ids.valid("case", case_id) else None
    if case is None or not (who.role == "coordinator" or _case_mediator(case, who)):
        raise NotFound()
    return case


async def pause(ctx: Context, who: Principal, case_id: str, paused: bool, reason: str) -> dict[str, Any]:
    """The program asks its mediators for an ongoing assessment of safety: a case's mediator may
    pause it, and resume it, at any moment, with a reason code (audited). While paused nothing
    passes between the participants; both may still write to the mediators."""
    await _staff_case(ctx, who, case_id)
    allowed = PAUSE_REASONS if paused else RESUME_REASONS
    if reason not in allowed:
        raise InvalidField(errors=[{"field": "reason", "message": f"one of {', '.join(allowed)}"}],
                           accepted=list(allowed))
    try:
        changed = await cases.set_pause(ctx.db, case_id=case_id, paused=paused, reason=reason, now=ctx.now_iso(),
                                        actor=who.actor, coordinator=who.role == "coordinator")
    except storage_errors.PausedByCoordinator:
        raise Conflict("the national unit paused this case: ask the coordinator to resume it") from None
    released = 0
    if changed and not paused:  # items the pause held at fetch are deliverable again if screening allows
        released = await screening.release_holds(ctx, who, [case_id], codes=("case-paused",))
    case = await cases.get_case(ctx.db, case_id)
    assert case is not None
    return {"case_id": case_id, "status": case["status"], "paused": case["status"] == "paused",
            "pause_reason": case["pause_reason"], "paused_at": case["paused_at"], "changed": changed,
            "items_released_from_hold": released}


# What a case's timeline shows: what happened, never what was said. Security refusals and
# retention's bookkeeping are left out.
TIMELINE = {
    "case.opened": "case-opened", "case.participant_added": "participant-added",
    "case.mediator_added": "mediator-assigned", "case.paused": "case-paused", "case.resumed": "case-resumed",
    "case.open": "case-resumed", "case.closed": "case-closed",
    "case.consent_withdrawn": "consent-withdrawn", "case.consent_given": "consent-given",
    "item.submitted": "submitted", "item.referred": "referred-to-national-unit", "item.release": "released",
    "item.return": "returned", "item.withhold": "withheld", "item.delivered": "opened", "item.held": "held",
    "item.hold_released": "hold-lifted", "item.returned_to_review": "back-to-review", "item.damaged": "damaged",
    "item.purged": "purged", "approval.recorded": "approval-recorded", "approval.revoked": "approval-revoked",
    "case.legal_hold_set": "legal-hold-set", "case.legal_hold_lifted": "legal-hold-lifted",
}


async def timeline(ctx: Context, who: Principal, case_id: str, *, after: int = 0, limit: int = 200) -> dict[str, Any]:
    """The case's history from the audit chain (the record that survives an item's purge),
    with people's labels and items' kinds; never content."""
    case = await _staff_case(ctx, who, case_id)
    entries = await audit.of_case(ctx.db, case_id, actions=tuple(TIMELINE), after_seq=after, limit=limit)
    labels = {p["id"]: p["label"] for p in (*case["participants"], *case["mediators"])}
    for entry in entries:  # coordinators and people no longer in the case
        for pid in (entry["actor_person"], entry["subject"]):
            if pid and pid.startswith("per_") and pid not in labels:
                person = await accounts.get_person(ctx.db, pid)
                labels[pid] = person["label"] if person else None
    kinds = {i["id"]: i for i in await _items_of(ctx, case_id)}
    events = []
    for entry in entries:
        item = kinds.get(entry["item_id"] or "")
        event = {
            "seq": entry["seq"], "at": entry["at"], "event": TIMELINE[entry["action"]], "action": entry["action"],
            "by": _who(entry["actor_person"], labels), "item_id": entry["item_id"],
            "item_kind": item["kind"] if item else None,
            "sender": _who(item["sender_id"], labels) if item else None,
            "recipient": (_who(item["recipient_id"], labels) if item["recipient_id"] else
                          {"id": None, "label": "mediators"}) if item else None,
            "person": _who(entry["subject"], labels) if (entry["subject"] or "").startswith("per_") else None,
            "code": entry["code"], "reason": _reason(entry),
        }
        events.append(event)
    return {"case_id": case_id, "case_label": case["label"], "events": events,
            "next_after": entries[-1]["seq"] if len(entries) == limit else None}


def _who(person_id: str | None, labels: dict[str, str | None]) -> dict[str, Any] | None:
    return None if not person_id else {"id": person_id, "label": labels.get(person_id)}


def _reason(entry: dict[str, Any]) -> dict[str, str] | None:
    """The words for a code, where the code is one of the fixed lists."""
    key = {"case.paused": "pause", "case.resumed": "resume", "item.withhold": "withhold", "item.held": "hold"}.get(
        entry["action"])
    code = entry["code"]
    if key is None or not code or f"{key}.{code}" not in i18n.MESSAGES:
        return None
    return i18n.both(f"{key}.{code}")


async def _items_of(ctx: Context, case_id: str) -> list[dict[str, Any]]:
    return await items.of_case(ctx.db, case_id)
