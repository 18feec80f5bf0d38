"""The national unit's console: institutions, enrollment, devices, cases, consent, status."""

from __future__ import annotations

from aiohttp import web

from relay import ids
from relay.server.auth import guard, principal_of
from relay.server.bodies import json_body
from relay.server.context import CONTEXT
from relay.server.errors import InvalidField, NotFound
from relay.server.handlers.common import ok
from relay.server.models import (
    CaseMember,
    CasePause,
    CaseStatus,
    ConditionAmendment,
    Consent,
    LegalHold,
    NewApproval,
    NewCase,
    NewCondition,
    NewDevice,
    NewInstitution,
    NewPerson,
    RetentionOverride,
)
from relay.server.services import accounts, cases, conditions, items, kiosk, retention

coordinator = guard(devices={"coordinator_console"}, roles={"coordinator"})
staff = guard(devices={"coordinator_console", "mediator_desk"}, roles={"coordinator", "mediator"})


@coordinator
async def create_institution(request: web.Request) -> web.Response:
    body = await json_body(request, NewInstitution)
    return ok(await accounts.create_institution(request.app[CONTEXT], principal_of(request), body.name), 201)


@coordinator
async def list_institutions(request: web.Request) -> web.Response:
    return ok(await accounts.list_institutions(request.app[CONTEXT]))


@coordinator
async def enroll(request: web.Request) -> web.Response:
    body = await json_body(request, NewPerson)
    return ok(await accounts.enroll(request.app[CONTEXT], principal_of(request), body), 201)


@coordinator
async def list_people(request: web.Request) -> web.Response:
    return ok(await accounts.list_people(request.app[CONTEXT]))


@coordinator
async def revoke_person(request: web.Request) -> web.Response:
    await accounts.revoke_person(request.app[CONTEXT], principal_of(request), request.match_info["person_id"])
    return web.Response(status=204)


@coordinator
async def register_device(request: web.Request) -> web.Response:
    body = await json_body(request, NewDevice)
    return ok(await accounts.register_device(request.app[CONTEXT], principal_of(request), body), 201)


@coordinator
async def list_devices(request: web.Request) -> web.Response:
    return ok(await accounts.list_devices(request.app[CONTEXT]))


@coordinator
async def revoke_device(request: web.Request) -> web.Response:
    await accounts.revoke_device(request.app[CONTEXT], principal_of(request), request.match_info["device_id"])
    return web.Response(status=204)


@coordinator
async def open_case(request: web.Request) -> web.Response:
    body = await json_body(request, NewCase)
    return ok(await cases.open_case(request.app[CONTEXT], principal_of(request), body.referral_source,
                                    body.institution_id, body.label), 201)


@coordinator
async def add_participant(request: web.Request) -> web.Response:
    body = await json_body(request, CaseMember)
    return ok(await cases.add_member(request.app[CONTEXT], principal_of(request), _id(request, "case", "case_id"),
                                     body.person_id, "participant"))


@coordinator
async def assign_mediator(request: web.Request) -> web.Response:
    body = await json_body(request, CaseMember)
    return ok(await cases.add_member(request.app[CONTEXT], principal_of(request), _id(request, "case", "case_id"),
                                     body.person_id, "mediator"))


@coordinator
async def set_consent(request: web.Request) -> web.Response:
    body = await json_body(request, Consent)
    return ok(await cases.set_consent(request.app[CONTEXT], principal_of(request), _id(request, "case", "case_id"),
                                      _id(request, "person", "person_id"), body.consent))


@coordinator
async def set_status(request: web.Request) -> web.Response:
    body = await json_body(request, CaseStatus)
    return ok(await cases.set_status(request.app[CONTEXT], principal_of(request), _id(request, "case", "case_id"),
                                     body.status))


@guard()
async def list_cases(request: web.Request) -> web.Response:
    return ok(await cases.list_for(request.app[CONTEXT], principal_of(request)))


@guard()
async def view_case(request: web.Request) -> web.Response:
    return ok(await cases.view(request.app[CONTEXT], principal_of(request), _id(request, "case", "case_id")))


@staff
async def case_items(request: web.Request) -> web.Response:
    return ok(await items.of_case(request.app[CONTEXT], principal_of(request), _id(request, "case", "case_id")))


# -- retention: legal hold, per-case overrides, withdrawal erasure, status ----------------------


@coordinator
async def set_legal_hold(request: web.Request) -> web.Response:
    body = await json_body(request, LegalHold)
    return ok(await retention.set_legal_hold(request.app[CONTEXT], principal_of(request),
                                             _id(request, "case", "case_id"), body.hold))


@coordinator
async def set_retention_override(request: web.Request) -> web.Response:
    body = await json_body(request, RetentionOverride)
    return ok(await retention.set_override(request.app[CONTEXT], principal_of(request),
                                           _id(request, "case", "case_id"), body.rule, body.days))


@coordinator
async def erase_withdrawn(request: web.Request) -> web.Response:
    return ok(await retention.erase_withdrawn(request.app[CONTEXT], principal_of(request),
                                              _id(request, "case", "case_id"), _id(request, "person", "person_id")))


@coordinator
async def retention_status(request: web.Request) -> web.Response:
    return ok(await retention.status(request.app[CONTEXT]))


@coordinator
async def retention_due(request: web.Request) -> web.Response:
    due = await retention.due_now(request.app[CONTEXT], limit=1000)
    return ok([vars(d) for d in due])


def _id(request: web.Request, kind: str, name: str) -> str:
    value = request.match_info[name]
    if not ids.valid(kind, value):
        raise NotFound()
    return value


# -- no-contact conditions and the national unit's approvals -----------------------------------


@coordinator
async def add_condition(request: web.Request) -> web.Response:
    body = await json_body(request, NewCondition)
    return ok(await conditions.add(request.app[CONTEXT], principal_of(request), body), 201)


@coordinator
async def list_conditions(request: web.Request) -> web.Response:
    return ok(await conditions.list_conditions(request.app[CONTEXT]))


@coordinator
async def show_condition(request: web.Request) -> web.Response:
    return ok(await conditions.show(request.app[CONTEXT], request.match_info["condition_id"]))


@coordinator
async def amend_condition(request: web.Request) -> web.Response:
    body = await json_body(request, ConditionAmendment)
    return ok(await conditions.amend(request.app[CONTEXT], principal_of(request), request.match_info["condition_id"],
                                     body))


@coordinator
async def lift_condition(request: web.Request) -> web.Response:
    return ok(await conditions.lift(request.app[CONTEXT], principal_of(request), request.match_info["condition_id"]))


@coordinator
async def add_approval(request: web.Request) -> web.Response:
    body = await json_body(request, NewApproval)
    return ok(await conditions.approve(request.app[CONTEXT], principal_of(request), body), 201)


@coordinator
async def list_approvals(request: web.Request) -> web.Response:
    return ok(await conditions.list_approvals(request.app[CONTEXT]))


@coordinator
async def revoke_approval(request: web.Request) -> web.Response:
    await conditions.revoke_approval(request.app[CONTEXT], principal_of(request), request.match_info["approval_id"])
    return web.Response(status=204)



# -- limits and the mediator desk ---------------------------------------------------------------


@staff
async def pause_case(request: web.Request) -> web.Response:
    body = await json_body(request, CasePause)
    return ok(await cases.pause(request.app[CONTEXT], principal_of(request), request.match_info["case_id"],
                                body.paused, body.reason))


@staff
async def case_timeline(request: web.Request) -> web.Response:
    after = request.query.get("after", "0")
    limit = request.query.get("limit", "200")
    if not (after.isascii() and after.isdigit() and len(after) < 12 and limit.isascii() and limit.isdigit()
            and 1 <= int(limit) <= 1000):
        raise InvalidField(errors=[{"field": "after/limit", "message": "after: a sequence number; limit: 1 to 1000"}])
    return ok(await cases.timeline(request.app[CONTEXT], principal_of(request), request.match_info["case_id"],
                                   after=int(after), limit=int(limit)))


@coordinator
async def issue_kiosk_code(request: web.Request) -> web.Response:
    return ok(await kiosk.issue(request.app[CONTEXT], principal_of(request), request.match_info["person_id"]), 201)


@coordinator
async def unlock_key_bundle(request: web.Request) -> web.Response:
    return ok(await accounts.unlock_bundle(request.app[CONTEXT], principal_of(request),
                                           request.match_info["person_id"]))
