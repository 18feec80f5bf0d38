"""Gather the facts screening needs, as they are at this moment, and ask ``policies``."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from policies.screening import Approval, CaseFacts, Condition, Decision, Exchange, Member, Outcome, screen
from relay.server.context import Context
from relay.server.principal import Principal
from storage import cases, items
from storage.clock import parse


def facts_of(case: dict[str, Any] | None) -> CaseFacts | None:
    if case is None:
        return None
    members: dict[str, Member] = {}
    for p in case["participants"]:
        members[p["id"]] = Member(p["id"], "participant", p["status"] == "active", p["relation"], p["consent"])
    for m in case["mediators"]:
        members[m["id"]] = Member(m["id"], "mediator", m["status"] == "active")
    return CaseFacts(case_id=case["id"], status=case["status"], members=members,
                     conditions=tuple(_condition(c) for c in case.get("conditions", ())),
                     approvals=tuple(_approval(a) for a in case.get("approvals", ())))


def _when(text: str | None) -> Any:
    return parse(text) if text else None


def _condition(row: dict[str, Any]) -> Condition:
    side = (row["protected_case_id"], row["protected_side"]) if row["protected_case_id"] else None
    return Condition(id=row["id"], kind=row["kind"], restricted=row["restricted_id"], direction=row["direction"],
                     effective_from=parse(row["effective_from"]), effective_until=_when(row["effective_until"]),
                     program_exception=row["program_exception"], protected=frozenset(row["protected_people"]),
                     protected_side=side, lifted_at=_when(row["lifted_at"]))


def _approval(row: dict[str, Any]) -> Approval:
    return Approval(id=row["id"], case_id=row["case_id"], condition_id=row["condition_id"],
                    directions=frozenset(row["directions"]), kinds=frozenset(row["kinds"]),
                    approved_at=parse(row["approved_at"]), valid_until=parse(row["valid_until"]),
                    revoked_at=_when(row["revoked_at"]))


def decide(case: dict[str, Any] | None, *, moment: str, kind: str, sender_id: str, recipient_id: str | None,
           now: datetime, facts: CaseFacts | None = None) -> Decision:
    """Screen against facts already loaded (one read serves a whole queue). A caller screening
    several items of one case passes its ``facts_of(case)`` once, built from that same ``case``."""
    return screen(facts if facts is not None else facts_of(case), Exchange(moment, kind, sender_id, recipient_id), now)


async def check(ctx: Context, *, moment: str, case_id: str, kind: str, sender_id: str,
                recipient_id: str | None) -> Decision:
    return decide(await cases.get_case(ctx.db, case_id), moment=moment, kind=kind, sender_id=sender_id,
                  recipient_id=recipient_id, now=ctx.clock.now())


async def release_holds(ctx: Context, who: Principal, case_ids: list[str],
                        codes: tuple[str, ...] = ("condition-requires-approval",)) -> int:
    """Return items held for ``codes`` to where they were, if screening allows them now."""
    released = 0
    now = ctx.clock.now()
    for case_id in case_ids:
        case = await cases.get_case(ctx.db, case_id)
        for item in await items.held_in_case(ctx.db, case_id):
            if item["hold_code"] not in codes:
                continue
            decision = decide(case, moment="fetch", kind=item["kind"], sender_id=item["sender_id"],
                              recipient_id=item["recipient_id"], now=now)
            if decision.allowed and await items.unhold(ctx.db, item_id=item["id"], code=item["hold_code"],
                                                       now=ctx.now_iso(),
                                                       actor=who.actor):
                released += 1
    return released


# The rule a referral names (policies.screening): the condition, its kind and the direction covered.
_REFERRAL_RULE = re.compile(r"^condition-(cnd_[0-9a-f]{16})-([a-z_]+)-(from_restricted|to_restricted)-needs-")


def approval_needed(case: dict[str, Any] | None, decision: Decision, kind: str) -> dict[str, Any] | None:
    """For staff: the condition that refers an exchange to the national unit, and exactly what an
    approval would have to allow for it to pass (``POST /v1/approvals`` takes these fields)."""
    match = _REFERRAL_RULE.match(decision.rule) if decision.outcome is Outcome.REFER else None
    if match is None or case is None:
        return None
    condition_id, condition_kind, direction = match.groups()
    condition = next((c for c in case.get("conditions", ()) if c["id"] == condition_id), None)
    return {
        "condition": {"id": condition_id, "kind": condition_kind,
                      "reference": condition["reference"] if condition else None},
        "approval_would_allow": {"case_id": case["id"], "condition_id": condition_id,
                                 "directions": [direction], "kinds": [kind]},
    }
