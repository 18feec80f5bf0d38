"""Each handler's contract, declared once next to it and enforced on every request.

``@operation(...)`` says what a route takes (a JSON body, a multipart upload, a query, tus
headers) and what it answers (a response model from ``relay.server.schemas``, a blob, nothing),
and which problems it can give beyond those its guard and its body already imply. The wrapper
does the work the declaration names: it parses and validates the input with the declared
pydantic model and hands it to the handler, and it validates the handler's answer against the
declared response model, strictly, before sending it. ``relay.server.openapi`` writes
``/openapi.json`` from the same declarations (and from the guard's ``Access``), so the document
and the behaviour are one source.

A handler returns plain data (what its service returned) for a JSON answer, or a ready
``web.StreamResponse`` for a blob, a tus answer or 204; the status of the latter must be one it
declared.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any

from aiohttp import web
from pydantic import BaseModel, TypeAdapter
from pydantic_core import to_json

from relay.server import bodies
from relay.server.errors import RelayError

# What a route answers besides JSON. BLOB: application/octet-stream from the blob store, with
# Range and conditional requests (handlers.common.blob). EMPTY: no body (204, tus answers).
BLOB = "blob"
EMPTY = "empty"
TEXT = "text"


@dataclass(frozen=True)
class Operation:
    summary: str
    status: int
    returns: Any  # a response model, list[...] or a union of them; or BLOB, EMPTY, TEXT
    body: type[BaseModel] | None = None  # a JSON request body
    upload: type[BaseModel] | None = None  # multipart/form-data: this model as `meta`, then `content`
    query: type[BaseModel] | None = None
    tus: bool = False  # a tus 1.0 request: Tus-Resumable and the Upload-* headers
    problems: tuple[type[RelayError], ...] = ()
    statuses: tuple[int, ...] = field(default=())  # other success statuses (tus HEAD answers 200, PATCH 204)
    creates: str | None = None  # the answer's `id` names a new object of this kind (an OpenAPI link)
    adapter: TypeAdapter[Any] | None = None

    @property
    def json(self) -> bool:
        return self.returns not in (BLOB, EMPTY, TEXT)


Handler = Callable[..., Awaitable[Any]]


def operation(returns: Any = EMPTY, *, status: int = 200, body: type[BaseModel] | None = None,
              upload: type[BaseModel] | None = None, query: type[BaseModel] | None = None, tus: bool = False,
              problems: tuple[type[RelayError], ...] = (), statuses: tuple[int, ...] = (),
              creates: str | None = None) -> Callable[[Handler], Callable[[web.Request], Awaitable[web.StreamResponse]]]:
    def wrap(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        spec = Operation(
            summary=(handler.__doc__ or handler.__name__.replace("_", " ")).strip().split("\n")[0],
            status=status, returns=returns, body=body, upload=upload, query=query, tus=tus, problems=problems,
            statuses=statuses, creates=creates, adapter=TypeAdapter(returns) if returns not in (BLOB, EMPTY, TEXT) else None)
        allowed = {status, *statuses}

        @wraps(handler)
        async def run(request: web.Request) -> web.StreamResponse:
            given: dict[str, Any] = {}
            if body is not None:
                given["body"] = await bodies.json_body(request, body)
            elif upload is not None:
                given["body"] = await bodies.upload(request, upload)
            if query is not None:
                given["query"] = bodies.query(request, query)
            result = await handler(request, **given)
            if isinstance(result, web.StreamResponse):
                if result.status not in allowed:
                    raise RuntimeError(f"{handler.__qualname__} answered {result.status}, not one it declares")
                return result
            if spec.adapter is None:
                raise RuntimeError(f"{handler.__qualname__} returned data but declares no JSON answer")
            # Strict: no coercion, so what is sent is exactly what was checked.
            spec.adapter.validate_python(result, strict=True)
            # pydantic-core's serializer (already here for the check): a third of json.dumps's time.
            return web.Response(body=to_json(result), status=status, content_type="application/json",
                                charset="utf-8")

        run.__relay_operation__ = spec  # type: ignore[attr-defined]
        return run

    return wrap


def operation_of(handler: Any) -> Operation | None:
    spec = getattr(handler, "__relay_operation__", None)
    return spec if isinstance(spec, Operation) else None
