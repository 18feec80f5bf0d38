"""The national unit's register of no-contact conditions and its approvals of facilitated exchange.

A change here can change what screening allows at once: adding a condition or letting an
approval lapse holds released items at their next fetch; lifting a condition or recording an
approval returns items it held to where they were (a released item, whose signed release is
still valid, becomes fetchable again; nothing else moves on its own).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from relay import ids
from relay.server.context import Context
from relay.server.errors import InvalidField, NotFound
from relay.server.models import ConditionAmendment, NewApproval, NewCondition
from relay.server.principal import Principal
from relay.server.services import screening
from storage import cases, conditions
from storage.clock import iso


def _normalized(values: dict[str, Any]) -> dict[str, Any]:
    """Times in storage form, and the rules a single field cannot check."""
    out = dict(values)
    for key in ("effective_from", "effective_until", "valid_until"):
        if out.get(key):
            out[key] = iso(parse_moment(out[key]))
    if out.get("effective_until") and out.get("effective_from") and out["effective_until"] <= out["effective_from"]:
        raise InvalidField(errors=[{"field": "effective_until", "message": "must be after effective_from"}])
    for person_id in out.get("protected_people") or ():
        if not ids.valid("person", person_id):
            raise InvalidField(errors=[{"field": "protected_people", "message": "not a person id"}])
    return out


def parse_moment(text: str) -> datetime:
    fmt = "%Y-%m-%dT%H:%M:%S.%fZ" if "." in text else "%Y-%m-%dT%H:%M:%SZ"
    return datetime.strptime(text, fmt).replace(tzinfo=UTC)


async def add(ctx: Context, who: Principal, body: NewCondition) -> dict[str, Any]:
    values = _normalized(body.model_dump())
    if not values["protected_people"] and not values["protected_case_id"]:
        raise InvalidField(errors=[{"field": "protected_people",
                                    "message": "name the protected people, or a case and side"}])
    if (values["protected_case_id"] is None) != (values["protected_side"] is None):
        raise InvalidField(errors=[{"field": "protected_side", "message": "a case and a side go together"}])
    return await conditions.add(ctx.db, id=ids.new("condition"), values=values, now=ctx.now_iso(), actor=who.actor)


async def amend(ctx: Context, who: Principal, condition_id: str, body: ConditionAmendment) -> dict[str, Any]:
    _check_id("condition", condition_id)
    changes = _normalized({k: v for k, v in body.model_dump().items() if v is not None})
    if not changes:
        raise InvalidField(errors=[{"field": "", "message": "nothing to amend"}])
    current = await conditions.get(ctx.db, condition_id)
    if current is None:
        raise NotFound()
    merged = {**current, **changes}
    if merged["effective_until"] and merged["effective_until"] <= merged["effective_from"]:
        raise InvalidField(errors=[{"field": "effective_until", "message": "must be after effective_from"}])
    amended = await conditions.amend(ctx.db, id=condition_id, values=changes, now=ctx.now_iso(), actor=who.actor)
    await screening.release_holds(ctx, who, await _cases_touching(ctx, amended))
    return amended


async def lift(ctx: Context, who: Principal, condition_id: str) -> dict[str, Any]:
    _check_id("condition", condition_id)
    lifted = await conditions.lift(ctx.db, id=condition_id, now=ctx.now_iso(), actor=who.actor)
    released = await screening.release_holds(ctx, who, await _cases_touching(ctx, lifted))
    return {**lifted, "items_released_from_hold": released}


async def show(ctx: Context, condition_id: str) -> dict[str, Any]:
    _check_id("condition", condition_id)
    condition = await conditions.get(ctx.db, condition_id)
    if condition is None:
        raise NotFound()
    return {**condition, "history": await conditions.history(ctx.db, condition_id)}


async def list_conditions(ctx: Context) -> list[dict[str, Any]]:
    return await conditions.list_all(ctx.db)


async def approve(ctx: Context, who: Principal, body: NewApproval) -> dict[str, Any]:
    values = _normalized(body.model_dump())
    if values["valid_until"] <= ctx.now_iso():
        raise InvalidField(errors=[{"field": "valid_until", "message": "must be in the future"}])
    approval = await conditions.approve(ctx.db, row={"id": ids.new("approval"), **values}, now=ctx.now_iso(),
                                        actor=who.actor)
    released = await screening.release_holds(ctx, who, [body.case_id])
    return {**approval, "items_released_from_hold": released}


async def revoke_approval(ctx: Context, who: Principal, approval_id: str) -> None:
    _check_id("approval", approval_id)
    await conditions.revoke_approval(ctx.db, approval_id=approval_id, now=ctx.now_iso(), actor=who.actor)


async def list_approvals(ctx: Context) -> list[dict[str, Any]]:
    return await conditions.list_approvals(ctx.db)


async def _cases_touching(ctx: Context, condition: dict[str, Any]) -> list[str]:
    return [c["id"] for c in await cases.list_cases(ctx.db, member=condition["restricted_id"])]


def _check_id(kind: str, value: str) -> None:
    if not ids.valid(kind, value):
        raise NotFound()
