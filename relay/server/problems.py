"""The one place errors become HTTP: RFC 9457 ``application/problem+json`` responses.

Domain errors (``relay.server.errors``), storage errors and aiohttp's own HTTP errors all leave
here with a stable ``type`` URI, the status, a title in the language the client asked for
(``Accept-Language``: English or French) and, where useful, machine-readable extras. So do the
answers aiohttp would otherwise write itself: a request its parser refused (see
``relay.server.serving``) and a file response's own 404, 412 or 416 (see :class:`ProblemStatuses`).

Anything unexpected is a 500 whose body says nothing about the cause. The log gets the
exception's type and where it was raised (file and line), never its message or a traceback's
values, because both can quote what the request carried.
"""

from __future__ import annotations

import json
import logging
import traceback
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong
from aiohttp.web_protocol import RequestPayloadError

from relay import i18n
from relay.envelope.documents import EnvelopeError
from relay.server import disk, errors
from relay.server.context import CONTEXT
from relay.server.logs import HEADER as REQUEST_ID_HEADER
from relay.server.logs import REQUEST_ID
from relay.server.metrics import METRICS
from storage import errors as storage_errors

log = logging.getLogger(__name__)

TYPE_PREFIX = "urn:mediation-relay:problem:"
CONTENT_TYPE = "application/problem+json"
SERVER_NAME = "mediation-relay"  # what the Server header says: a name, never a version

_STORAGE = {  # most specific first
    storage_errors.LegalHoldActive: errors.LegalHold,
    storage_errors.SignedOut: errors.SessionRequired,  # ended or revoked while the request arrived
    storage_errors.NotFound: errors.NotFound,
    storage_errors.Conflict: errors.Conflict,
    storage_errors.BlobTooLarge: errors.BodyTooLarge,
    storage_errors.BlobMismatch: errors.ContentMismatch,
    storage_errors.BlobPathError: errors.NotFound,
}
_HTTP: dict[int, type[errors.RelayError]] = {
    400: errors.MalformedRequest,
    401: errors.Unauthenticated,
    403: errors.Forbidden,
    404: errors.NotFound,
    405: errors.NotFound,
    408: errors.RequestTimeout,
    409: errors.Conflict,
    412: errors.PreconditionFailed,
    413: errors.BodyTooLarge,
    415: errors.UnsupportedMediaType,
    416: errors.RangeNotSatisfiable,
    417: errors.ExpectationFailed,
    431: errors.HeadersTooLarge,
    507: errors.InsufficientStorage,
}


def for_status(status: int) -> errors.RelayError:
    """The problem for an HTTP status aiohttp chose itself (a 5xx stays an internal error)."""
    if status >= 500 and status not in _HTTP:
        return errors.RelayError()
    return _HTTP.get(status, errors.MalformedRequest)()


def document(error: errors.RelayError, lang: str, instance: str | None = None) -> bytes:
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + error.type,
        "title": i18n.text(error.type, lang),
        "status": error.status,
    }
    if error.detail:
        body["detail"] = error.detail
    if instance:
        body["instance"] = instance
    body.update(error.extra)
    if (request_id := REQUEST_ID.get()) is not None:
        # The id the log lines of this request carry (and the X-Request-Id header): what a
        # person quotes to an operator, who finds the request's lines by it.
        body["request_id"] = request_id
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


def headers_for(error: errors.RelayError, lang: str) -> dict[str, str]:
    headers = {"Content-Language": lang, "Server": SERVER_NAME}
    if error.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="relay"'
    if error.status == 429 and error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    if error.status == 503:
        headers["Retry-After"] = str(error.retry_after or 30)
    if error.status == 507:
        headers["Retry-After"] = "300"
    return headers


def problem(error: errors.RelayError, lang: str, instance: str | None = None) -> web.Response:
    response = web.Response(status=error.status, body=document(error, lang, instance),
                            content_type=CONTENT_TYPE, charset="utf-8", headers=headers_for(error, lang))
    if error.status == 408:  # a client that stalls gets no second chance on this connection
        response.force_close()
    return response


def as_relay_error(exc: BaseException) -> errors.RelayError | None:
    if isinstance(exc, errors.RelayError):
        return exc
    if disk.is_full(exc):
        return errors.InsufficientStorage()
    for storage_type, relay_type in _STORAGE.items():
        if isinstance(exc, storage_type):
            return relay_type()
    if isinstance(exc, EnvelopeError):
        return errors.SignatureInvalid()
    if isinstance(exc, web.HTTPException) and exc.status >= 400:
        return for_status(exc.status)
    if isinstance(exc, LineTooLong):
        return errors.HeadersTooLarge()
    if isinstance(exc, HttpProcessingError | RequestPayloadError):
        # The body broke off or its framing (chunked encoding, Content-Length) is wrong.
        return errors.MalformedRequest()
    return None


def where(exc: BaseException) -> str:
    """The exception's type and the frames it passed through (file:line in function), with no
    message and no values: enough to find the bug, nothing a request carried."""
    frames = traceback.extract_tb(exc.__traceback__)[-6:]
    path = " <- ".join(f"{_short(f.filename)}:{f.lineno} in {f.name}" for f in reversed(frames))
    return f"{type(exc).__module__}.{type(exc).__qualname__} at {path or '?'}"


def _short(filename: str) -> str:
    for marker in ("/relay/", "/storage/", "/policies/", "/media/", "/site-packages/"):
        if marker in filename:
            return marker.strip("/") + "/" + filename.rsplit(marker, 1)[1]
    return filename.rsplit("/", 1)[-1]


def route_of(request: web.BaseRequest) -> str:
    """The route's template (``/v1/items/{item_id}``), never the path as sent: ids and
    whatever else a client put in a path stay out of the log."""
    try:
        info = request.match_info  # type: ignore[attr-defined]
    except (AttributeError, AssertionError):  # a request aiohttp's parser refused was never routed
        return "(not routed)"
    route = getattr(info, "route", None)
    resource = getattr(route, "resource", None)
    return resource.canonical if resource is not None else "(no route)"


@web.middleware
async def problem_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    lang = i18n.negotiate(request.headers.get("Accept-Language"))
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except Exception as exc:
        error = as_relay_error(exc)
        if error is None:
            log.error("unhandled %s on %s %s", where(exc), request.method, route_of(request))
            error = errors.RelayError()
        elif error.status >= 500:
            log.error("%s on %s %s", error.type, request.method, route_of(request))
        elif log.isEnabledFor(logging.DEBUG):  # a client's mistake: worth a line when debugging only
            log.debug("%s on %s %s", error.type, request.method, route_of(request),
                      extra={"fields": {"problem": error.type, "status": error.status}})
        counted = request.app.get(METRICS)
        if counted is not None:
            counted.problem(error.type)
        return problem(error, lang, instance=request.path)


class ProblemStatuses(web.StreamResponse):
    """Placed between a response class and ``StreamResponse`` in the MRO (see
    ``handlers.common.BlobResponse``): when that class answers an error status on its own
    (FileResponse's 404 for a missing file, 412 for a failed If-Match, 416 for a Range past the
    end), the answer becomes a problem document like every other instead of an empty body."""

    async def prepare(self, request: web.BaseRequest) -> Any:
        if self.status < 400 or self.prepared:
            return await super().prepare(request)
        lang = i18n.negotiate(request.headers.get("Accept-Language"))
        error = for_status(self.status)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s on %s %s", error.type, request.method, route_of(request),
                      extra={"fields": {"problem": error.type, "status": error.status}})
        body = document(error, lang, request.path)
        self.content_type = CONTENT_TYPE
        self.charset = "utf-8"
        self.content_length = len(body)
        for name, value in headers_for(error, lang).items():
            self.headers[name] = value
        for name in ("ETag", "Last-Modified", "Accept-Ranges"):
            self.headers.pop(name, None)
        writer = await super().prepare(request)
        if request.method != "HEAD":
            await self.write(body)
        return writer


# Nothing the relay serves should be cached by a proxy or a kiosk's browser.
SECURITY_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


@web.middleware
async def security_headers(request: web.Request, handler: Any) -> web.StreamResponse:
    response: web.StreamResponse = await handler(request)
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def before_middlewares(request: web.BaseRequest, status: int) -> web.Response:
    """The problem for an HTTP error aiohttp raised before any middleware ran (its answer to an
    ``Expect`` other than ``100-continue``, ``417 Unknown Expect: <the header>``), with the
    headers every answer has."""
    error = for_status(status)
    response = problem(error, i18n.negotiate(request.headers.get("Accept-Language")), instance=request.path)
    response.headers.update(SECURITY_HEADERS)
    return response


async def name_the_server(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: aiohttp would send ``Server: Python/3.x aiohttp/3.y``; say only a name.
    And every response names its request (``relay.server.logs``), streamed ones and problems too."""
    response.headers["Server"] = SERVER_NAME
    if (request_id := REQUEST_ID.get()) is not None:
        response.headers[REQUEST_ID_HEADER] = request_id


__all__ = ["problem", "problem_middleware", "security_headers", "before_middlewares", "name_the_server", "CONTEXT"]
