"""The coordinator's set-up work: institutions, enrollment, devices; and the key directory.

Enrollment is signed: the coordinator's own client signs each person's role and public keys
(``Domain.ENROLLMENT``), and every client checks that chain back to the first coordinator's
key it was provisioned with. So a relay operator who edits the directory cannot slip in a key
of their own: the sender would refuse to seal to it, the terminal to trust its release.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from policies.screening import side_of
from relay import ids
from relay.envelope import documents
from relay.server import tokens
from relay.server.context import Context
from relay.server.errors import BootstrapRefused, InvalidField, NotFound, RateLimited, SignatureInvalid
from relay.server.models import Bootstrap, EnrollmentDoc, NewDevice, NewPerson
from relay.server.principal import Principal
from relay.server.services import kiosk
from relay.server.services.sessions import SERVES, may_serve
from storage import accounts
from storage.clock import iso


def _check_enrollment(doc: dict[str, Any], sig: str, signer_pk: str, *, person_id: str, role: str,
                      relation: str | None, enrolled_by: str) -> EnrollmentDoc:
    try:
        documents.verify(documents.Domain.ENROLLMENT, doc, sig, documents.b64d(signer_pk))
    except documents.EnvelopeError:
        raise SignatureInvalid() from None
    parsed = EnrollmentDoc.model_validate(doc)
    for key in (parsed.sign_pk, parsed.box_pk):
        if len(documents.b64d(key)) != 32:
            raise InvalidField(errors=[{"field": "enrollment", "message": "keys are 32 bytes"}])
    expected = (person_id, role, side_of(relation) if role == "participant" else None, enrolled_by)
    if (parsed.person_id, parsed.role, parsed.side, parsed.enrolled_by) != expected:
        raise SignatureInvalid("the signed enrollment does not match the request")
    return parsed


# -- first coordinator ------------------------------------------------------------------------


async def ensure_bootstrap_code(ctx: Context) -> str | None:
    """At start, with nobody enrolled yet: a fresh single-use code for the first coordinator."""
    if await accounts.has_people(ctx.db):
        return None
    now = ctx.clock.now()
    code_id = ids.new("bootstrap")
    code, code_hash = tokens.issue(code_id)
    await accounts.create_bootstrap_code(
        ctx.db, id=code_id, code_hash=code_hash, now=iso(now),
        expires_at=iso(now + timedelta(hours=ctx.settings.bootstrap_code_hours)))
    return code


async def bootstrap(ctx: Context, body: Bootstrap) -> dict[str, Any]:
    parts = tokens.split(body.code)
    row = await accounts.get_bootstrap_code(ctx.db, parts[0], ctx.now_iso()) if parts else None
    if parts is None or row is None or not tokens.matches(parts[1], row["code_hash"]):
        raise BootstrapRefused()
    person_id = body.enrollment.get("person_id")
    if not ids.valid("person", person_id):
        raise InvalidField(errors=[{"field": "enrollment.person_id", "message": "not a person id"}])
    doc = EnrollmentDoc.model_validate(body.enrollment) if isinstance(body.enrollment, dict) else None
    if doc is None:
        raise InvalidField()
    # The first coordinator signs their own enrollment: they are the root every client pins.
    _check_enrollment(body.enrollment, body.enrollment_sig, doc.sign_pk, person_id=str(person_id),
                      role="coordinator", relation=None, enrolled_by=str(person_id))
    device_id = ids.new("device")
    token, token_hash = tokens.issue(device_id)
    await accounts.bootstrap_coordinator(
        ctx.db, code_id=row["id"], now=ctx.now_iso(),
        person=_person_row(str(person_id), body.label, "coordinator", None, None, doc, body),
        device={"id": device_id, "kind": "coordinator_console", "person_id": person_id,
                "institution_id": None, "label": body.device_label, "token_hash": token_hash})
    return {"person_id": person_id, "device_id": device_id, "device_token": token}


def _person_row(person_id: str, label: str, role: str, relation: str | None, institution_id: str | None,
                doc: EnrollmentDoc, body: NewPerson | Bootstrap) -> dict[str, Any]:
    return {
        "id": person_id, "role": role, "relation": relation, "label": label, "institution_id": institution_id,
        "sign_pk": doc.sign_pk, "box_pk": doc.box_pk,
        "enrollment": documents.canonical_json(body.enrollment).decode("utf-8"),
        "enrollment_sig": body.enrollment_sig,
        "key_bundle": documents.b64d(body.key_bundle) if body.key_bundle else None,
    }


# -- coordinator ------------------------------------------------------------------------------


async def create_institution(ctx: Context, who: Principal, name: str) -> dict[str, Any]:
    return await accounts.create_institution(ctx.db, id=ids.new("institution"), name=name,
                                             now=ctx.now_iso(), actor=who.actor)


async def enroll(ctx: Context, who: Principal, body: NewPerson) -> dict[str, Any]:
    assert who.person is not None
    role = body.enrollment.get("role")
    person_id = body.enrollment.get("person_id")
    if role not in ("coordinator", "mediator", "participant") or not ids.valid("person", person_id):
        raise InvalidField(errors=[{"field": "enrollment", "message": "role and person_id are required"}])
    if (role == "participant") != (body.relation is not None):
        raise InvalidField(errors=[{"field": "relation", "message": "participants, and only they, have a relation"}])
    doc = _check_enrollment(body.enrollment, body.enrollment_sig, who.person["sign_pk"], person_id=str(person_id),
                            role=str(role), relation=body.relation, enrolled_by=who.person_id)
    row = _person_row(str(person_id), body.label, str(role), body.relation, body.institution_id, doc, body)
    created = await accounts.create_person(ctx.db, row, now=ctx.now_iso(), actor=who.actor)
    if role == "participant" and body.institution_id is not None:
        # A kiosk user: the code they type at their institution's terminals, shown this once.
        return {**_public_person(created), "kiosk_code": (await kiosk.issue(ctx, who, str(person_id)))["kiosk_code"]}
    return _public_person(created)


def _public_person(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in ("id", "role", "relation", "label", "institution_id", "sign_pk", "box_pk",
                                "status", "created_at")}


async def list_people(ctx: Context) -> list[dict[str, Any]]:
    return [_public_person(p) for p in await accounts.list_people(ctx.db)]


async def register_device(ctx: Context, who: Principal, body: NewDevice) -> dict[str, Any]:
    if body.kind == "terminal":
        if body.institution_id is None or body.person_id is not None:
            raise InvalidField(errors=[{"field": "institution_id", "message": "a terminal is bound to one institution"}])
    elif body.person_id is None or body.institution_id is not None:
        raise InvalidField(errors=[{"field": "person_id", "message": "this kind of device is bound to one person"}])
    if body.person_id is not None:
        person = await accounts.get_person(ctx.db, body.person_id)
        if person is None or person["status"] != "active":
            raise NotFound()
        if SERVES[body.kind] != person["role"]:
            raise InvalidField(errors=[{"field": "kind", "message": f"a {body.kind} serves a {SERVES[body.kind]}"}])
    device_id = ids.new("device")
    token, token_hash = tokens.issue(device_id)
    device = await accounts.create_device(ctx.db, {
        "id": device_id, "kind": body.kind, "person_id": body.person_id, "institution_id": body.institution_id,
        "label": body.label, "token_hash": token_hash}, now=ctx.now_iso(), actor=who.actor)
    # The token is shown this once; only its hash is stored.
    return {**device, "device_token": token}


# -- directory and key bundles ----------------------------------------------------------------


async def directory_entry(ctx: Context, who: Principal, person_id: str) -> dict[str, Any]:
    """A person's signed enrollment, if the caller may see it (case members and coordinators)."""
    if who.role == "coordinator":
        person = await accounts.get_person(ctx.db, person_id)
    else:
        here = who.device["institution_id"] if who.device_kind == "terminal" else None
        visible = {p["id"]: p for p in await accounts.people_sharing_a_case(ctx.db, who.person_id, here)}
        person = visible.get(person_id) if person_id != who.person_id else await accounts.get_person(ctx.db, person_id)
    if person is None:
        raise NotFound()
    return {**_public_person(person), "enrollment": documents.b64e(person["enrollment"].encode("utf-8")),
            "enrollment_sig": person["enrollment_sig"]}


async def key_bundle(ctx: Context, device: dict[str, Any], person_id: str) -> str:
    """A participant's passphrase-sealed key bundle, for a terminal of their institution only."""
    person = await accounts.get_person(ctx.db, person_id) if ids.valid("person", person_id) else None
    if person is None or not await may_serve(ctx, device, person):
        raise NotFound()
    bundle = await accounts.get_key_bundle(ctx.db, person_id)
    if bundle is None:
        raise NotFound()
    now = ctx.clock.now()
    refused = await accounts.record_bundle_fetch(
        ctx.db, person_id=person_id, device_id=device["id"], now=iso(now),
        since=iso(now - timedelta(hours=1)), limit=ctx.settings.bundle_fetches_per_hour,
        terminal_limit=ctx.settings.bundle_fetches_per_terminal_per_hour,
        window_end=iso(now + timedelta(seconds=ctx.settings.security_event_window_seconds)))
    if refused:
        # 'person': this person's bundle was fetched too often without a sign-in following (the
        # coordinator can lift it); 'terminal': this terminal fetched too many bundles.
        raise RateLimited(limit=refused)
    return documents.b64e(bundle)


async def unlock_bundle(ctx: Context, who: Principal, person_id: str) -> dict[str, Any]:
    """The coordinator lifts the key-bundle limit of a person a stranger locked out (audited)."""
    if not ids.valid("person", person_id):
        raise NotFound()
    cleared = await accounts.unlock_bundle(ctx.db, person_id=person_id, now=ctx.now_iso(), actor=who.actor)
    return {"person_id": person_id, "fetches_cleared": cleared}



async def list_institutions(ctx: Context) -> list[dict[str, Any]]:
    return await accounts.list_institutions(ctx.db)


async def list_devices(ctx: Context) -> list[dict[str, Any]]:
    return await accounts.list_devices(ctx.db)


async def revoke_person(ctx: Context, who: Principal, person_id: str) -> None:
    if not ids.valid("person", person_id):
        raise NotFound()
    await accounts.revoke_person(ctx.db, person_id, now=ctx.now_iso(), actor=who.actor)


async def revoke_device(ctx: Context, who: Principal, device_id: str) -> None:
    if not ids.valid("device", device_id):
        raise NotFound()
    await accounts.revoke_device(ctx.db, device_id, now=ctx.now_iso(), actor=who.actor)
