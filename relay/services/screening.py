"""Gather the facts screening needs, as they are at this moment, and ask ``policies``."""

from __future__ import annotations

from typing import Any

from policies.screening import CaseFacts, Decision, Exchange, Member, screen
from storage import cases

from ..context import Context


def facts_of(case: dict[str, Any] | None) -> CaseFacts | None:
    if case is None:
        return None
    members: dict[str, Member] = {}
    for p in case["participants"]:
        members[p["id"]] = Member(p["id"], "participant", p["status"] == "active", p["relation"], p["consent"])
    for m in case["mediators"]:
        members[m["id"]] = Member(m["id"], "mediator", m["status"] == "active")
    return CaseFacts(case_id=case["id"], status=case["status"], members=members)


async def check(ctx: Context, *, moment: str, case_id: str, kind: str, sender_id: str,
                recipient_id: str | None) -> Decision:
    case = await cases.get_case(ctx.db, case_id)
    return screen(facts_of(case), Exchange(moment, kind, sender_id, recipient_id), ctx.clock.now())
