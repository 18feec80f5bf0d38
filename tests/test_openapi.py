"""``GET /openapi.json``: a valid OpenAPI 3.1 document that names every route, every problem type
and every request and response model, and that the relay's real answers fit.

The document is generated (relay.server.openapi) from the route table, the guards and the
``@operation`` declarations, and every JSON answer is validated against its declared model before
it is sent (relay.server.api). The last tests drive a whole exchange through the SDK against a
real relay and check each JSON body it received against the document's schema for that route
and status, as a third-party client would read it.
"""

from __future__ import annotations

import copy
import io
import json
import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

from relay.client.kdf import TEST_KDF
from relay.client.scenario import build_world
from relay.client.sdk import ProblemError
from relay.server import errors, models, openapi, schemas
from relay.server.api import operation
from relay.server.app import create_app
from relay.server.auth import public
from relay.server.problems import TYPE_PREFIX, problem_middleware
from relay.server.routes import ROUTES
from relay.server.settings import Settings

from .conftest import MovableClock, Relay

ROOT = Path(__file__).resolve().parents[1]
# Base classes that only lend fields to models that are in the document (never a body themselves).
BASES = {"Strict", "Reply", "Enrollment", "SignedManifest", "SignedDecision", "ItemCommon"}


async def _document(relay: Relay) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http:  # no device, no session: the document is public
        async with http.get(relay.url + "/openapi.json") as response:
            assert response.status == 200
            assert response.content_type == "application/json"
            return dict(await response.json())


@pytest.fixture
def document() -> dict[str, Any]:
    return json.loads(openapi.document())


# -- the document itself ------------------------------------------------------------------------


async def test_served_document_is_valid_openapi_3_1(relay: Relay) -> None:
    served = await _document(relay)
    assert served["openapi"].startswith("3.1")
    validate(served)  # openapi-spec-validator picks the 3.1 schema from the version
    assert served == json.loads(openapi.document())


def test_validator_rejects_a_broken_document(document: dict[str, Any]) -> None:
    """The validity check above can fail: a response without a description is not OpenAPI."""
    broken = copy.deepcopy(document)
    del broken["paths"]["/v1/me"]["get"]["responses"]["200"]["description"]
    with pytest.raises(OpenAPIValidationError):
        validate(broken)


def missing_routes(document: dict[str, Any]) -> list[str]:
    return [f"{method} {path}" for method, path, _ in ROUTES
            if method.lower() not in document["paths"].get(path, {})]


def test_every_route_is_in_the_document(document: dict[str, Any]) -> None:
    assert missing_routes(document) == []
    described = {(m.upper(), p) for p, ops in document["paths"].items() for m in ops}
    assert described == {(m, p) for m, p, _ in ROUTES}
    pruned = copy.deepcopy(document)
    del pruned["paths"]["/v1/inbox"]["get"]
    assert missing_routes(pruned) == ["GET /v1/inbox"]


def test_every_route_says_who_may_call_it_from_its_guard(document: dict[str, Any]) -> None:
    """The security and access lines come from the guard's own record, not a copy."""
    for method, path, handler in ROUTES:
        op = document["paths"][path][method.lower()]
        access = handler.__relay_access__
        assert op["x-relay-access"]["public"] == access.public
        assert op["security"] == ([] if access.public else
                                  [{"device": [], "session": []} if access.session else {"device": []}])
        if access.devices is not None:
            assert op["x-relay-access"]["devices"] == sorted(access.devices)
            assert "401" in op["responses"] and "403" in op["responses"]
    inbox = document["paths"]["/v1/inbox"]["get"]
    assert inbox["x-relay-access"] == {"public": False, "session": True, "devices": ["participant_device", "terminal"],
                                       "roles": ["participant"]}
    assert document["paths"]["/v1/bootstrap"]["post"]["security"] == []


def problem_types_in(document: dict[str, Any]) -> set[str]:
    found: set[str] = set()
    for ops in document["paths"].values():
        for op in ops.values():
            for response in op["responses"].values():
                for media, content in response.get("content", {}).items():
                    if media == "application/problem+json":
                        found.update(content["schema"]["allOf"][1]["properties"]["type"]["enum"])
    return found


def test_every_problem_type_is_in_the_document(document: dict[str, Any]) -> None:
    defined = {TYPE_PREFIX + cls.type for cls in openapi.problem_types()}
    assert len(defined) == len(openapi.problem_types())  # one slug per class
    classes = {v for v in vars(errors).values() if isinstance(v, type) and issubclass(v, errors.RelayError)}
    assert classes == set(openapi.problem_types())
    assert problem_types_in(document) == defined
    table = (ROOT / "docs" / "problems.md").read_text(encoding="utf-8")
    for cls in classes:
        assert f"`{cls.type}`" in table, f"{cls.type} is not in docs/problems.md"


def test_problem_statuses_match_their_types(document: dict[str, Any]) -> None:
    status_of = {TYPE_PREFIX + cls.type: cls.status for cls in openapi.problem_types()}
    for ops in document["paths"].values():
        for op in ops.values():
            for status, response in op["responses"].items():
                content = response.get("content", {}).get("application/problem+json")
                if content:
                    for slug in content["schema"]["allOf"][1]["properties"]["type"]["enum"]:
                        assert str(status_of[slug]) == status


def _refs(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                found.add(value.rsplit("/", 1)[1])
            else:
                found |= _refs(value)
    elif isinstance(node, list):
        for value in node:
            found |= _refs(value)
    return found


def referenced_models(document: dict[str, Any]) -> set[str]:
    """Components reachable from the paths (through references inside components too), plus
    the query models whose fields are the operations' query parameters."""
    components = document["components"]["schemas"]
    reached = _refs(document["paths"])
    frontier = set(reached)
    while frontier:
        frontier = set().union(*(_refs(components[name]) for name in frontier)) - reached
        reached |= frontier
    queries = {op["x-relay-query-model"] for ops in document["paths"].values() for op in ops.values()
               if "x-relay-query-model" in op}
    return reached | queries


def test_every_request_and_response_model_is_referenced(document: dict[str, Any]) -> None:
    reached = referenced_models(document)
    declared = openapi.models_in(models) + openapi.models_in(schemas)
    bases = {m.__name__ for m in declared if m.__name__ in BASES}
    assert bases == BASES  # a listed base that no longer exists must leave the list
    for base in declared:
        if base.__name__ in BASES:  # a base only lends fields: some referenced model must extend it
            assert any(issubclass(m, base) and m is not base and m.__name__ in reached for m in declared), base
    unreferenced = sorted(m.__name__ for m in declared if m.__name__ not in BASES and m.__name__ not in reached)
    assert unreferenced == []
    assert set(document["components"]["schemas"]) <= reached  # and nothing in the document is orphaned
    # The check can fail: drop the route that answers with the timeline and its models go unreferenced.
    pruned = copy.deepcopy(document)
    del pruned["paths"]["/v1/cases/{case_id}/timeline"]
    assert {"Timeline", "TimelineEvent", "TimelinePage"} & referenced_models(pruned) == set()


def test_signed_documents_are_described_by_their_envelope_models(document: dict[str, Any]) -> None:
    submission = document["components"]["schemas"]["Submission"]["properties"]
    assert submission["manifest"] == {"$ref": "#/components/schemas/ItemManifest"}
    manifest = document["components"]["schemas"]["ItemManifest"]
    assert {"item_id", "case_id", "keys", "hash", "size"} <= set(manifest["required"])
    receipt = document["components"]["schemas"]["ReceiptRequest"]["properties"]["receipt"]
    assert receipt == {"$ref": "#/components/schemas/Receipt"}


def test_uploads_and_content_are_described_faithfully(document: dict[str, Any]) -> None:
    submit = document["paths"]["/v1/items"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert submit["schema"]["properties"]["meta"] == {"$ref": "#/components/schemas/Submission"}
    assert submit["encoding"]["meta"]["contentType"] == "application/json"
    decision = document["paths"]["/v1/items/{item_id}/decision"]["post"]["requestBody"]["content"]
    assert decision["multipart/form-data"]["schema"]["properties"]["meta"]["$ref"].endswith("/DecisionRequest")
    patch = document["paths"]["/v1/uploads/{upload_id}"]["patch"]
    assert "application/offset+octet-stream" in patch["requestBody"]["content"]
    assert {p["name"] for p in patch["parameters"]} >= {"Tus-Resumable", "Upload-Offset", "upload_id"}
    assert "460" in patch["responses"]  # checksum-mismatch
    content = document["paths"]["/v1/items/{item_id}/delivery/content"]["get"]["responses"]
    assert "application/octet-stream" in content["200"]["content"]
    assert {"404", "409", "412", "416"} <= set(content)
    timeline = document["paths"]["/v1/cases/{case_id}/timeline"]["get"]["parameters"]
    assert [p["name"] for p in timeline if p["in"] == "query"] == ["after", "limit"]


# -- the relay sends only what its models say ----------------------------------------------------


async def test_a_response_that_does_not_fit_its_model_is_not_sent(aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    """The declared model is enforced on the way out: a stray member is a 500, not a leak."""

    @public
    @operation(schemas.Health)
    async def leaky(request: web.Request) -> Any:
        return {"status": "ok", "token_hash": "…"}

    @public
    @operation(schemas.Health)
    async def retyped(request: web.Request) -> Any:
        return {"status": 1}

    @public
    @operation(schemas.Health)
    async def fitting(request: web.Request) -> Any:
        return {"status": "ok"}

    app = web.Application(middlewares=[problem_middleware])
    for path, handler in (("/leaky", leaky), ("/retyped", retyped), ("/fitting", fitting)):
        app.router.add_get(path, handler)
    client = await aiohttp_client(app)
    for path in ("/leaky", "/retyped"):
        async with client.get(path) as response:
            assert response.status == 500
            body = await response.text()
            assert json.loads(body)["type"] == TYPE_PREFIX + "internal-error" and "token_hash" not in body
    async with client.get("/fitting") as response:
        assert response.status == 200 and await response.json() == {"status": "ok"}


# -- real answers against the document -------------------------------------------------------------


class Recorder:
    """An outermost middleware of the test app: every answer the relay sent, with its route."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, int, str, bytes]] = []

    @web.middleware
    async def middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        response: web.StreamResponse = await handler(request)
        resource = request.match_info.route.resource
        if isinstance(response, web.Response) and resource is not None and response.body is not None:
            body = response.body if isinstance(response.body, bytes) else bytes(response.body._value)
            self.seen.append((request.method, resource.canonical, response.status, response.content_type, body))
        return response


class Checker:
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document

    def schema_for(self, method: str, path: str, status: int, content_type: str) -> dict[str, Any]:
        op = self.document["paths"][path][method.lower()]
        response = op["responses"].get(str(status))
        assert response is not None, f"{method} {path} answered {status}, which the document does not list"
        media = response.get("content", {}).get(content_type)
        assert media is not None, f"{method} {path} {status} answered {content_type}, not in the document"
        return dict(media["schema"])

    def check(self, method: str, path: str, status: int, content_type: str, body: bytes) -> None:
        schema = self.schema_for(method, path, status, content_type)
        rooted = {**schema, "components": self.document["components"]}  # "#/components/..." resolves here
        problems = sorted(Draft202012Validator(rooted).iter_errors(json.loads(body)), key=str)
        assert not problems, f"{method} {path} {status}: {problems[0].message} at {list(problems[0].path)}"


def test_checker_catches_a_body_that_breaks_the_document(document: dict[str, Any]) -> None:
    checker = Checker(document)
    good = {"person_id": "per_0123456789abcdef", "kiosk_code": "ABCD-EFGH"}
    checker.check("POST", "/v1/people/{person_id}/kiosk-code", 201, "application/json", json.dumps(good).encode())
    for bad in ({**good, "extra": 1}, {"person_id": "per_0123456789abcdef"}):
        with pytest.raises(AssertionError):
            checker.check("POST", "/v1/people/{person_id}/kiosk-code", 201, "application/json",
                          json.dumps(bad).encode())
    with pytest.raises(AssertionError):  # a status the route does not list
        checker.check("GET", "/v1/me", 418, "application/json", b"{}")


@pytest.fixture
async def recorded(tmp_path: Path, aiohttp_server) -> tuple[Relay, Recorder]:  # type: ignore[no-untyped-def]
    recorder = Recorder()
    codes: list[str] = []
    clock = MovableClock()
    app = create_app(Settings(data_dir=tmp_path / "relay-data"), clock=clock, bootstrap_printer=codes.append)
    app.middlewares.insert(0, recorder.middleware)
    server: TestServer = await aiohttp_server(app)
    return Relay(server, tmp_path / "relay-data", clock, codes), recorder


LETTER = b"I have thought about what happened every day since.\n"


async def test_a_whole_exchange_fits_the_document(recorded: tuple[Relay, Recorder]) -> None:
    relay, recorder = recorded
    world = await build_world(relay.url, relay.codes[0], kdf=TEST_KDF)
    coordinator = await world.session(world.coordinator)
    victim = await world.session(world.victim)
    mediator = await world.session(world.mediator)
    offender = await world.session(world.offender, on_terminal=True)
    case = world.case_id
    try:
        for client in (coordinator, victim, mediator, offender):
            await client.call("GET", "/v1/me")
            await client.call("GET", "/v1/cases")
            await client.call("GET", f"/v1/cases/{case}")
        for path in ("/healthz", "/readyz", "/v1/limits", "/v1/institutions", "/v1/people", "/v1/devices",
                     "/v1/retention", "/v1/retention/due", "/v1/conditions", "/v1/approvals"):
            await coordinator.call("GET", path)
        await coordinator.call("GET", f"/v1/directory/{world.victim.person_id}")
        await victim.call("GET", f"/v1/directory/{world.mediator.person_id}")

        # A letter released with a redaction, fetched at the kiosk, acknowledged.
        sent = await victim.send(case_id=case, recipient=world.offender.person_id, src=io.BytesIO(LETTER))
        await mediator.call("GET", "/v1/review/queue")
        await mediator.call("GET", f"/v1/items/{sent['id']}")
        await victim.call("GET", f"/v1/items/{sent['id']}")
        await mediator.open_item(sent["id"], io.BytesIO())
        await mediator.release(sent["id"], rendition=io.BytesIO(LETTER.replace(b"what happened", b"[removed]")))
        with pytest.raises(ProblemError):
            await mediator.release(sent["id"])  # already decided: a 409 problem
        await offender.call("GET", "/v1/inbox")
        await offender.call("GET", f"/v1/items/{sent['id']}/delivery")
        await offender.fetch(sent["id"], io.BytesIO())  # the receipt, too
        with pytest.raises(ProblemError):
            await victim.call("GET", f"/v1/items/{sent['id']}/delivery")  # not the recipient: 404

        # A return with a note, a withhold, a letter to the mediators, a mediator's own message.
        back = await offender.send(case_id=case, recipient=world.victim.person_id, src=io.BytesIO(LETTER))
        await mediator.return_to_sender(back["id"], "Could we talk first?")
        await offender.read_note(back["id"], io.BytesIO())
        held = await victim.send(case_id=case, recipient=world.offender.person_id, src=io.BytesIO(LETTER))
        await mediator.withhold(held["id"], "not-ready")
        note = await victim.send(case_id=case, recipient="mediators", src=io.BytesIO(b"Can we meet?"))
        await mediator.call("GET", "/v1/review/inbox")
        await mediator.call("POST", f"/v1/items/{note['id']}/read")
        await mediator.send(case_id=case, recipient=world.victim.person_id, src=io.BytesIO(b"Noted."))
        await victim.call("GET", "/v1/items/sent")
        await victim.call("GET", "/v1/inbox")

        # The desk and the national unit: pause, timeline, a condition and its approval, retention.
        await mediator.call("POST", f"/v1/cases/{case}/pause", json_body={"paused": True,
                                                                           "reason": "safety-assessment"})
        await mediator.call("POST", f"/v1/cases/{case}/pause", json_body={"paused": False,
                                                                           "reason": "assessment-complete"})
        await mediator.call("GET", f"/v1/cases/{case}/timeline?limit=5")
        await coordinator.call("GET", f"/v1/cases/{case}/items")
        condition = await coordinator.call("POST", "/v1/conditions", json_body={
            "kind": "court_order", "reference": "ONCJ 2024-1187", "restricted_id": world.offender.person_id,
            "protected_people": [world.victim.person_id], "direction": "both",
            "effective_from": "2026-01-01T00:00:00Z", "program_exception": False})
        with pytest.raises(ProblemError) as unknown:  # found by the fuzz: a 404 the document did not list
            await coordinator.call("POST", "/v1/conditions", json_body={
                "kind": "court_order", "reference": "X", "restricted_id": "per_0000000000000000",
                "protected_people": [world.victim.person_id], "direction": "both",
                "effective_from": "2026-01-01T00:00:00Z", "program_exception": False})
        assert unknown.value.status == 404
        referred = await offender.send(case_id=case, recipient=world.victim.person_id, src=io.BytesIO(LETTER))
        await mediator.call("GET", "/v1/review/queue")  # flagged, with what an approval would allow
        with pytest.raises(ProblemError):
            await mediator.release(referred["id"])  # approval-required
        await coordinator.call("POST", "/v1/approvals", json_body={
            "case_id": case, "condition_id": condition["id"], "directions": ["from_restricted"],
            "kinds": ["letter"], "valid_until": "2099-01-01T00:00:00Z"})
        await coordinator.call("POST", f"/v1/conditions/{condition['id']}/amend", json_body={"reference": "ONCJ 2"})
        await coordinator.call("GET", f"/v1/conditions/{condition['id']}")
        await coordinator.call("POST", f"/v1/conditions/{condition['id']}/lift")
        await coordinator.call("POST", f"/v1/cases/{case}/legal-hold", json_body={"hold": True})
        await coordinator.call("POST", f"/v1/cases/{case}/retention", json_body={"rule": "review_wait", "days": 30})
        await coordinator.call("GET", f"/v1/cases/{case}")
        await coordinator.call("POST", f"/v1/people/{world.offender.person_id}/kiosk-code")
        await coordinator.call("POST", f"/v1/people/{world.offender.person_id}/key-bundle/unlock")
        with pytest.raises(ProblemError):
            await coordinator.call("POST", "/v1/cases", json_body={"referral_source": "offender",
                                                                     "institution_id": world.institution_id})
        with pytest.raises(ProblemError):
            await coordinator.call("POST", "/v1/institutions", json_body={"name": 7})  # invalid-field
    finally:
        for client in (coordinator, victim, mediator, offender):
            await client.close()

    checker = Checker(json.loads(openapi.document()))
    json_answers = [s for s in recorder.seen if s[3] in ("application/json", "application/problem+json")]
    for method, path, status, content_type, body in json_answers:
        checker.check(method, path, status, content_type, body)
    routes = {(m, p) for m, p, s, c, _ in json_answers if s < 400 and c == "application/json"}
    problems = {json.loads(b)["type"] for *_, c, b in json_answers if c == "application/problem+json"}
    # Not vacuous: most JSON routes answered, and the problems above were among the answers.
    assert len(routes) >= 45, sorted(routes)
    assert {TYPE_PREFIX + t for t in ("already-decided", "not-found", "approval-required",
                                      "offender-request-not-accepted", "invalid-field")} <= problems
    assert all(re.fullmatch(r"urn:mediation-relay:problem:[a-z-]+", t) for t in problems)


def test_links_lead_from_what_creates_an_object_to_what_takes_its_id(document: dict[str, Any]) -> None:
    links = document["paths"]["/v1/cases"]["post"]["responses"]["201"]["links"]
    takes_case = {op["operationId"] for path, ops in document["paths"].items() if "{case_id}" in path
                  for op in ops.values()}
    assert set(links) == takes_case and len(takes_case) >= 10
    assert all(link["parameters"] == {"case_id": "$response.body#/id"} for link in links.values())
    condition = document["paths"]["/v1/conditions"]["post"]["responses"]["201"]["links"]
    assert "post_v1_conditions_condition_id_lift" in condition
