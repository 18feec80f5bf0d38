"""``GET /openapi.json``: the relay's HTTP contract as an OpenAPI 3.1 document, generated.

Nothing here is written by hand about a route: each operation comes from the route table
(``relay.server.routes.ROUTES``), the guard's ``Access`` on the handler (who may call it) and
its ``@operation`` declaration (what it takes and answers, ``relay.server.api``). Schemas are
pydantic's own JSON Schema (2020-12, the dialect OpenAPI 3.1 uses) of the request models
(``relay.server.models``) and response models (``relay.server.schemas``), generated together so
that every model is one component. Problem responses list, per status, the ``type`` URIs the
route can answer with: those its guard, its input and its own declaration imply.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import cache
from typing import Any

from pydantic import BaseModel, TypeAdapter

from relay import i18n, ids
from relay.server import errors, models, schemas
from relay.server.api import BLOB, EMPTY, TEXT, Operation, operation_of
from relay.server.auth import Access
from relay.server.problems import CONTENT_TYPE as PROBLEM_JSON
from relay.server.problems import TYPE_PREFIX
from relay.wire import DEVICE_HEADER

REF = "#/components/schemas/{model}"
TITLE = "Mediation relay"
VERSION = "1"

# Which id each path parameter carries.
PATH_IDS = {"person_id": "person", "case_id": "case", "item_id": "item", "device_id": "device",
            "condition_id": "condition", "approval_id": "approval", "upload_id": "upload"}

# The signed documents a request or answer carries (envelope spec), each one component.
SIGNED_DOCUMENTS = (models.ItemManifest, models.DecisionManifest, models.Receipt, models.EnrollmentDoc)
# What any request can meet: its headers or body stop arriving, its headers are too large, an
# Expect other than 100-continue, a bug.
ANY_REQUEST = (errors.RequestTimeout, errors.HeadersTooLarge, errors.ExpectationFailed, errors.TooBusy,
               errors.RelayError)

# What a blob answer honours (aiohttp's FileResponse): byte ranges and conditional requests.
BLOB_HEADERS = {
    "Range": "`bytes=<first>-<last>`: part of the ciphertext (206), to resume a download",
    "If-Range": "the ETag or date the part must still match, else the whole (200)",
    "If-Match": "the ETag it must still have (else 412)",
    "If-None-Match": "an ETag the client holds (304 if unchanged)",
    "If-Modified-Since": "HTTP date (304 if unchanged since)",
    "If-Unmodified-Since": "HTTP date (412 if changed since)",
}

BODY_PROBLEMS = (errors.MalformedRequest, errors.BodyTooLarge, errors.InvalidField, errors.RequestTimeout)
UPLOAD_PROBLEMS = (*BODY_PROBLEMS, errors.InsufficientStorage)


def problem_types() -> list[type[errors.RelayError]]:
    """Every problem type the relay defines (every RelayError class in relay.server.errors)."""
    found = [errors.RelayError]
    for value in vars(errors).values():
        if isinstance(value, type) and issubclass(value, errors.RelayError) and value is not errors.RelayError:
            found.append(value)
    return found


def access_problems(access: Access) -> tuple[type[errors.RelayError], ...]:
    if access.public:
        return ()
    found: list[type[errors.RelayError]] = [errors.Unauthenticated]
    if access.devices is not None:
        found.append(errors.Forbidden)
    if access.session:
        found.append(errors.SessionRequired)
        if access.roles is not None:
            found.append(errors.Forbidden)
    return tuple(found)


def problems_of(method: str, path: str, spec: Operation, access: Access) -> list[type[errors.RelayError]]:
    """Every problem the route can answer with: its guard's, its input's, its own."""
    found: list[type[errors.RelayError]] = [*access_problems(access)]
    if spec.body is not None or spec.query is not None:
        found += BODY_PROBLEMS if spec.body is not None else (errors.InvalidField,)
    if spec.upload is not None:
        found += UPLOAD_PROBLEMS
    if "{" in path:
        found.append(errors.NotFound)  # an id that is malformed, unknown, or not the caller's to see
    found += spec.problems
    found += ANY_REQUEST
    if method not in ("GET", "HEAD", "OPTIONS"):
        found.append(errors.InsufficientStorage)  # any write can meet a full disk
    unique: list[type[errors.RelayError]] = []
    for problem in found:
        if problem not in unique:
            unique.append(problem)
    return unique


def _security(access: Access) -> list[dict[str, list[str]]]:
    if access.public:
        return []
    return [{"device": [], "session": []} if access.session else {"device": []}]


def _access_words(access: Access) -> str:
    if access.public:
        return "Public: no device needed."
    kinds = ", ".join(sorted(access.devices)) if access.devices is not None else "any approved device"
    text = f"Device (`{DEVICE_HEADER}`): {kinds}."
    if access.session:
        roles = ", ".join(sorted(access.roles)) if access.roles is not None else "any role"
        text += f" Session (`Authorization: Bearer`): {roles}."
    else:
        text += " No session."
    return text


def _inputs(routes: Iterable[tuple[str, str, Any]]) -> list[tuple[str, str, Operation, Access]]:
    found = []
    for method, path, handler in routes:
        spec = operation_of(handler)
        access = getattr(handler, "__relay_access__", None)
        if spec is None or not isinstance(access, Access):
            raise RuntimeError(f"{method} {path} has no @operation or no guard to describe")
        found.append((method, path, spec, access))
    return found


def _schemas(ops: list[tuple[str, str, Operation, Access]]) -> tuple[dict[Any, Any], dict[str, Any]]:
    """One JSON Schema generation over every model: (key -> schema, components)."""
    inputs: list[tuple[Any, Any, TypeAdapter[Any]]] = []
    for method, path, spec, _ in ops:
        for role, model in (("body", spec.body), ("upload", spec.upload)):
            if model is not None:
                inputs.append(((method, path, role), "validation", TypeAdapter(model)))
        if spec.adapter is not None:
            inputs.append(((method, path, "returns"), "serialization", spec.adapter))
    inputs.append(("problem", "serialization", TypeAdapter(schemas.Problem)))
    for document in SIGNED_DOCUMENTS:  # what models.Signed fields point to
        inputs.append((document.__name__, "validation", TypeAdapter(document)))
    keyed, defs = TypeAdapter.json_schemas(inputs, ref_template=REF)
    components = dict(sorted(defs.get("$defs", {}).items()))
    _link_documents(components, set(components))
    return {key: schema for (key, _), schema in keyed.items()}, components


def _link_documents(node: Any, names: set[str]) -> None:
    """Replace each ``models.Signed`` placeholder by a reference to its document's component."""
    if isinstance(node, dict):
        for key, value in list(node.items()):
            if isinstance(value, dict) and "x-relay-document" in value:
                name = value["x-relay-document"]
                if name not in names:
                    raise RuntimeError(f"no component for the signed document {name}")
                node[key] = {"$ref": REF.format(model=name)}
            else:
                _link_documents(value, names)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            if isinstance(value, dict) and "x-relay-document" in value:
                node[index] = {"$ref": REF.format(model=value["x-relay-document"])}
            else:
                _link_documents(value, names)


def _problem_responses(problems: list[type[errors.RelayError]], problem_ref: dict[str, Any]) -> dict[str, Any]:
    by_status: dict[int, list[type[errors.RelayError]]] = {}
    for problem in problems:
        by_status.setdefault(problem.status, []).append(problem)
    out = {}
    for status, kinds in sorted(by_status.items()):
        types = [TYPE_PREFIX + k.type for k in kinds]
        out[str(status)] = {
            # The English title a client shows (the problem's own words), not the class's docstring.
            "description": "; ".join(f"`{k.type}`: {i18n.text(k.type, 'en').rstrip('.')}" for k in kinds),
            "content": {PROBLEM_JSON: {"schema": {
                "allOf": [problem_ref, {"properties": {"type": {"enum": types}}}]}}},
        }
    return out


def _tus_headers(method: str) -> dict[str, Any]:
    number = {"type": "string", "pattern": "^[0-9]{1,18}$"}
    headers: dict[str, Any] = {}
    if method != "OPTIONS":
        headers["Tus-Resumable"] = {"required": True, "schema": {"type": "string", "const": "1.0.0"}}
    if method == "POST":
        headers["Upload-Length"] = {"required": True, "schema": number}
    if method == "PATCH":
        headers["Upload-Offset"] = {"required": True, "schema": number}
        headers["Upload-Checksum"] = {"required": False, "schema": {"type": "string", "maxLength": 200},
                                      "description": "`sha1 <base64>` or `sha256 <base64>` of this chunk"}
    return headers


def _operation(method: str, path: str, spec: Operation, access: Access, keyed: dict[Any, Any],
               problem_ref: dict[str, Any], links: dict[str, dict[str, Any]]) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": operation_id(method, path),
        "summary": spec.summary,
        "description": _access_words(access),
        "security": _security(access),
        "x-relay-access": {"public": access.public, "session": access.session,
                           "devices": sorted(access.devices) if access.devices is not None else None,
                           "roles": sorted(access.roles) if access.roles is not None else None},
    }
    parameters: list[dict[str, Any]] = []
    for name in PATH_IDS:
        if "{" + name + "}" in path:
            parameters.append({"name": name, "in": "path", "required": True,
                               "schema": {"type": "string", "pattern": ids.pattern(PATH_IDS[name])}})
    if spec.query is not None:  # one parameter per field of the query model, described inline
        query = spec.query.model_json_schema(ref_template=REF)
        op["x-relay-query-model"] = spec.query.__name__
        for name, fld in spec.query.model_fields.items():
            described = dict(query["properties"][name])
            parameters.append({"name": name, "in": "query", "required": fld.is_required(),
                               "description": described.pop("description", ""), "schema": described})
    if spec.tus:
        for name, header in _tus_headers(method).items():
            parameters.append({"name": name, "in": "header", **header})
    if spec.returns == BLOB:
        for name, words in BLOB_HEADERS.items():
            parameters.append({"name": name, "in": "header", "required": False, "description": words,
                               "schema": {"type": "string"}})  # a malformed one is ignored, as HTTP says
    parameters.append({"name": "Accept-Language", "in": "header", "required": False,
                       "description": "`fr` for French titles and words; English otherwise (any value is taken)",
                       "schema": {"type": "string"}})
    if parameters:
        op["parameters"] = parameters
    if spec.body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": keyed[(method, path, "body")]}}}
    elif spec.upload is not None:
        op["requestBody"] = {"required": True, "description": (
            "multipart/form-data: first a part named `meta` (JSON, this schema), then, unless `meta.upload_id` "
            "names a finished resumable upload, a part named `content` (the ciphertext, streamed)."),
            "content": {"multipart/form-data": {
                "schema": {"type": "object", "required": ["meta"], "properties": {
                    "meta": keyed[(method, path, "upload")],
                    "content": {"type": "string", "contentMediaType": "application/octet-stream"}}},
                "encoding": {"meta": {"contentType": "application/json"},
                             "content": {"contentType": "application/octet-stream"}}}}}
    elif spec.tus and method == "PATCH":
        op["requestBody"] = {"required": True, "content": {"application/offset+octet-stream": {
            "schema": {"type": "string", "contentMediaType": "application/octet-stream"}}}}

    responses: dict[str, Any] = {}
    for status in (spec.status, *spec.statuses):
        responses[str(status)] = _success(method, spec, status, keyed.get((method, path, "returns")))
    if spec.creates is not None and links.get(spec.creates):
        responses[str(spec.status)]["links"] = links[spec.creates]
    responses.update(_problem_responses(problems_of(method, path, spec, access), problem_ref))
    op["responses"] = responses
    return op


def _success(method: str, spec: Operation, status: int, schema: dict[str, Any] | None) -> dict[str, Any]:
    if spec.returns == BLOB:
        if status == 304:
            return {"description": "Not modified: the client's copy (If-None-Match, If-Modified-Since) is current."}
        return {"description": ("The ciphertext, streamed." if status == 200 else
                                "Part of the ciphertext, as the `Range` asked; `Content-Range` says which."),
                "headers": {"Accept-Ranges": {"schema": {"type": "string", "const": "bytes"}}},
                "content": {"application/octet-stream": {
                    "schema": {"type": "string", "contentMediaType": "application/octet-stream"}}}}
    if spec.returns == TEXT:
        return {"description": "Prometheus text exposition format.",
                "content": {"text/plain": {"schema": {"type": "string"}}}}
    if spec.returns == EMPTY:
        described: dict[str, Any] = {"description": "No content."}
        if spec.tus:
            described["description"] = "tus 1.0: the answer is in the headers."
            described["headers"] = {name: {"schema": {"type": "string"}} for name in (
                ("Tus-Resumable", "Tus-Version", "Tus-Extension", "Tus-Max-Size", "Tus-Checksum-Algorithm")
                if method == "OPTIONS" else ("Tus-Resumable", "Upload-Offset", "Upload-Length", "Upload-Expires")
                + (("Location",) if method == "POST" else ()) if method != "DELETE" else ("Tus-Resumable",))}
        return described
    assert schema is not None
    return {"description": "OK" if status == 200 else "Created",
            "content": {"application/json": {"schema": schema}}}


def operation_id(method: str, path: str) -> str:
    return f"{method.lower()}_{path.strip('/').replace('/', '_').replace('{', '').replace('}', '')}".replace("-", "_")


def _links(ops: list[tuple[str, str, Operation, Access]]) -> dict[str, dict[str, Any]]:
    """For each kind of object: a link to every operation whose path takes its id, filled from
    the `id` of the answer that created it (what a client, or a stateful fuzzer, does next)."""
    links: dict[str, dict[str, Any]] = {}
    for name, kind in PATH_IDS.items():
        for method, path, _, _ in ops:
            if "{" + name + "}" in path:
                links.setdefault(kind, {})[operation_id(method, path)] = {
                    "operationId": operation_id(method, path), "parameters": {name: "$response.body#/id"}}
    return links


def build(routes: Iterable[tuple[str, str, Any]]) -> dict[str, Any]:
    ops = _inputs(routes)
    keyed, components = _schemas(ops)
    problem_ref = keyed["problem"]
    links = _links(ops)
    paths: dict[str, dict[str, Any]] = {}
    for method, path, spec, access in ops:
        paths.setdefault(path, {})[method.lower()] = _operation(method, path, spec, access, keyed, problem_ref,
                                                                links)
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {"title": TITLE, "version": VERSION, "description": (
            "The relay's HTTP API, generated from its route table, guards and pydantic models. "
            "Prose (sign-in, device credentials, profiles and trust roots, the enrollment chain, "
            "revocation, a whole exchange): docs/http-api.md. Problem types: docs/problems.md.")},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "device": {"type": "apiKey", "in": "header", "name": DEVICE_HEADER,
                           "description": "An approved device's token (shown once when the coordinator approves it)."},
                "session": {"type": "http", "scheme": "bearer",
                            "description": "A session token from POST /v1/auth/session, on the same device."},
            },
        },
        "x-relay-problem-types": {TYPE_PREFIX + p.type: {"status": p.status} for p in problem_types()},
    }


@cache
def document() -> bytes:
    """The document for this relay's own route table, built once (it depends on code only)."""
    from relay.server.routes import ROUTES  # the table imports the handlers, which serve this

    return json.dumps(build(ROUTES), ensure_ascii=False).encode("utf-8")


def models_in(module: Any) -> list[type[BaseModel]]:
    """The pydantic models a module defines (for the test that each one is in the document)."""
    return [v for v in vars(module).values()
            if isinstance(v, type) and issubclass(v, BaseModel) and v.__module__ == module.__name__]
