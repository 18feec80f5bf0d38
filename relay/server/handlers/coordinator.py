"""The national unit's console: institutions, enrollment, devices, cases, consent, status."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from relay import ids
from relay.server import schemas as s
from relay.server.api import operation
from relay.server.auth import guard, principal_of
from relay.server.context import CONTEXT
from relay.server.errors import (
    Conflict,
    InvalidField,
    LegalHold,
    NotFound,
    OffenderRequestNotAccepted,
    SignatureInvalid,
)
from relay.server.models import (
    CaseMember,
    CasePause,
    CaseStatus,
    ConditionAmendment,
    Consent,
    NewApproval,
    NewCase,
    NewCondition,
    NewDevice,
    NewInstitution,
    NewPerson,
    RetentionOverride,
    TimelinePage,
)
from relay.server.models import LegalHold as LegalHoldBody
from relay.server.services import accounts, cases, conditions, items, kiosk, retention

coordinator = guard(devices={"coordinator_console"}, roles={"coordinator"})
staff = guard(devices={"coordinator_console", "mediator_desk"}, roles={"coordinator", "mediator"})


@coordinator
@operation(s.Institution, status=201, body=NewInstitution, problems=(Conflict,))
async def create_institution(request: web.Request, body: NewInstitution) -> Any:
    """Add an institution (a place with terminals, holding cases)."""
    return await accounts.create_institution(request.app[CONTEXT], principal_of(request), body.name)


@coordinator
@operation(list[s.Institution])
async def list_institutions(request: web.Request) -> Any:
    """Every institution."""
    return await accounts.list_institutions(request.app[CONTEXT])


@coordinator
@operation(s.EnrolledPerson, status=201, body=NewPerson, creates="person", problems=(SignatureInvalid, Conflict, NotFound))
async def enroll(request: web.Request, body: NewPerson) -> Any:
    """Enroll a person: their public keys and role, signed by the coordinator (docs/http-api.md)."""
    return await accounts.enroll(request.app[CONTEXT], principal_of(request), body)


@coordinator
@operation(list[s.Person])
async def list_people(request: web.Request) -> Any:
    """Every enrolled person (public keys only)."""
    return await accounts.list_people(request.app[CONTEXT])


@coordinator
@operation(status=204)
async def revoke_person(request: web.Request) -> web.StreamResponse:
    """Revoke a person: their sessions end and no device serves them again."""
    await accounts.revoke_person(request.app[CONTEXT], principal_of(request), request.match_info["person_id"])
    return web.Response(status=204)


@coordinator
@operation(s.RegisteredDevice, status=201, body=NewDevice, creates="device", problems=(NotFound,))
async def register_device(request: web.Request, body: NewDevice) -> Any:
    """Approve a device; its token is in the answer, this once."""
    return await accounts.register_device(request.app[CONTEXT], principal_of(request), body)


@coordinator
@operation(list[s.Device])
async def list_devices(request: web.Request) -> Any:
    """Every approved device (never a token)."""
    return await accounts.list_devices(request.app[CONTEXT])


@coordinator
@operation(status=204)
async def revoke_device(request: web.Request) -> web.StreamResponse:
    """Revoke a device: its token and its sessions stop working at once."""
    await accounts.revoke_device(request.app[CONTEXT], principal_of(request), request.match_info["device_id"])
    return web.Response(status=204)


@coordinator
@operation(s.CaseRecord, status=201, body=NewCase, creates="case", problems=(OffenderRequestNotAccepted, NotFound))
async def open_case(request: web.Request, body: NewCase) -> Any:
    """Open a case from a referral (never on an offender's own request)."""
    return await cases.open_case(request.app[CONTEXT], principal_of(request), body.referral_source,
                                 body.institution_id, body.label)


@coordinator
@operation(s.CaseDetail, body=CaseMember, problems=(Conflict,))
async def add_participant(request: web.Request, body: CaseMember) -> Any:
    """Add a participant to a case."""
    return await cases.add_member(request.app[CONTEXT], principal_of(request), _id(request, "case", "case_id"),
                                  body.person_id, "participant")


@coordinator
@operation(s.CaseDetail, body=CaseMember, problems=(Conflict,))
async def assign_mediator(request: web.Request, body: CaseMember) -> Any:
    """Assign a mediator to a case."""
    return await cases.add_member(request.app[CONTEXT], principal_of(request), _id(request, "case", "case_id"),
                                  body.person_id, "mediator")


@coordinator
@operation(s.ConsentChange, body=Consent, problems=(Conflict,))
async def set_consent(request: web.Request, body: Consent) -> Any:
    """Record a participant's consent given or withdrawn (a withdrawal holds their items at once)."""
    return await cases.set_consent(request.app[CONTEXT], principal_of(request), _id(request, "case", "case_id"),
                                   _id(request, "person", "person_id"), body.consent)


@coordinator
@operation(s.StatusChange, body=CaseStatus, problems=(Conflict,))
async def set_status(request: web.Request, body: CaseStatus) -> Any:
    """Open, pause or close a case."""
    return await cases.set_status(request.app[CONTEXT], principal_of(request), _id(request, "case", "case_id"),
                                  body.status)


@guard()
@operation(list[s.CaseRecord] | list[s.CaseSummary])
async def list_cases(request: web.Request) -> Any:
    """Every case (coordinator: their records), or the caller's own cases."""
    return await cases.list_for(request.app[CONTEXT], principal_of(request))


@guard()
@operation(s.CaseDetail | s.ParticipantCase, problems=(NotFound,))
async def view_case(request: web.Request) -> Any:
    """A case as the caller may see it (staff: everything screening uses; a participant: whom they can write to)."""
    return await cases.view(request.app[CONTEXT], principal_of(request), _id(request, "case", "case_id"))


@staff
@operation(list[s.StaffItem])
async def case_items(request: web.Request) -> Any:
    """A case's items (metadata only), for the coordinator and the case's mediators."""
    return await items.of_case(request.app[CONTEXT], principal_of(request), _id(request, "case", "case_id"))


# -- retention: legal hold, per-case overrides, withdrawal erasure, status ----------------------


@coordinator
@operation(s.LegalHoldChange, body=LegalHoldBody)
async def set_legal_hold(request: web.Request, body: LegalHoldBody) -> Any:
    """Set or lift a case's legal hold (nothing of it is purged while set)."""
    return await retention.set_legal_hold(request.app[CONTEXT], principal_of(request),
                                          _id(request, "case", "case_id"), body.hold)


@coordinator
@operation(s.RetentionOverrides, body=RetentionOverride)
async def set_retention_override(request: web.Request, body: RetentionOverride) -> Any:
    """A case's own length for one retention rule, or back to the schedule's."""
    return await retention.set_override(request.app[CONTEXT], principal_of(request),
                                        _id(request, "case", "case_id"), body.rule, body.days)


@coordinator
@operation(s.Erasure, problems=(LegalHold, Conflict))
async def erase_withdrawn(request: web.Request) -> Any:
    """Erase now what a withdrawn participant sent and nobody opened."""
    return await retention.erase_withdrawn(request.app[CONTEXT], principal_of(request),
                                           _id(request, "case", "case_id"), _id(request, "person", "person_id"))


@coordinator
@operation(s.RetentionStatus)
async def retention_status(request: web.Request) -> Any:
    """Counts by state, purges by rule, legal holds, the last purge run and the schedule."""
    return await retention.status(request.app[CONTEXT])


@coordinator
@operation(list[s.RetentionDue])
async def retention_due(request: web.Request) -> Any:
    """The items retention would purge now (up to 1000)."""
    due = await retention.due_now(request.app[CONTEXT], limit=1000)
    return [vars(d) for d in due]


def _id(request: web.Request, kind: str, name: str) -> str:
    value = request.match_info[name]
    if not ids.valid(kind, value):
        raise NotFound()
    return value


# -- no-contact conditions and the national unit's approvals -----------------------------------


@coordinator
@operation(s.Condition, status=201, body=NewCondition, creates="condition", problems=(NotFound,))
async def add_condition(request: web.Request, body: NewCondition) -> Any:
    """Record a no-contact condition (screening applies it at once)."""
    return await conditions.add(request.app[CONTEXT], principal_of(request), body)


@coordinator
@operation(list[s.Condition])
async def list_conditions(request: web.Request) -> Any:
    """Every condition in the register."""
    return await conditions.list_conditions(request.app[CONTEXT])


@coordinator
@operation(s.ConditionWithHistory)
async def show_condition(request: web.Request) -> Any:
    """A condition with every version of it."""
    return await conditions.show(request.app[CONTEXT], request.match_info["condition_id"])


@coordinator
@operation(s.Condition, body=ConditionAmendment, problems=(Conflict,))
async def amend_condition(request: web.Request, body: ConditionAmendment) -> Any:
    """Amend a condition (a new version; the old ones are kept)."""
    return await conditions.amend(request.app[CONTEXT], principal_of(request), request.match_info["condition_id"],
                                  body)


@coordinator
@operation(s.LiftedCondition, problems=(Conflict,))
async def lift_condition(request: web.Request) -> Any:
    """Lift a condition; items it held become deliverable again if screening allows."""
    return await conditions.lift(request.app[CONTEXT], principal_of(request), request.match_info["condition_id"])


@coordinator
@operation(s.RecordedApproval, status=201, body=NewApproval, creates="approval", problems=(NotFound, Conflict))
async def add_approval(request: web.Request, body: NewApproval) -> Any:
    """Record the national unit's approval of a facilitated exchange under a condition."""
    return await conditions.approve(request.app[CONTEXT], principal_of(request), body)


@coordinator
@operation(list[s.Approval])
async def list_approvals(request: web.Request) -> Any:
    """Every approval, revoked ones included."""
    return await conditions.list_approvals(request.app[CONTEXT])


@coordinator
@operation(status=204)
async def revoke_approval(request: web.Request) -> web.StreamResponse:
    """Revoke an approval (released items it allowed are held at their next fetch)."""
    await conditions.revoke_approval(request.app[CONTEXT], principal_of(request), request.match_info["approval_id"])
    return web.Response(status=204)


# -- limits and the mediator desk ---------------------------------------------------------------


@staff
@operation(s.PauseChange, body=CasePause, problems=(Conflict,))
async def pause_case(request: web.Request, body: CasePause) -> Any:
    """A case's mediator (or the coordinator) pauses or resumes it, with a reason code."""
    return await cases.pause(request.app[CONTEXT], principal_of(request), request.match_info["case_id"],
                             body.paused, body.reason)


@staff
@operation(s.Timeline, query=TimelinePage)
async def case_timeline(request: web.Request, query: TimelinePage) -> Any:
    """What happened in a case, from the audit chain (never what was said), a page at a time."""
    return await cases.timeline(request.app[CONTEXT], principal_of(request), request.match_info["case_id"],
                                after=int(query.after), limit=int(query.limit))


@coordinator
@operation(s.IssuedKioskCode, status=201, problems=(InvalidField,))
async def issue_kiosk_code(request: web.Request) -> Any:
    """A new kiosk code for a participant (the old one stops working), shown this once."""
    return await kiosk.issue(request.app[CONTEXT], principal_of(request), request.match_info["person_id"])


@coordinator
@operation(s.BundleUnlock)
async def unlock_key_bundle(request: web.Request) -> Any:
    """Lift the key-bundle fetch limit of a person a stranger locked out (audited)."""
    return await accounts.unlock_bundle(request.app[CONTEXT], principal_of(request),
                                        request.match_info["person_id"])
