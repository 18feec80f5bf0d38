"""The one place errors become HTTP: RFC 9457 ``application/problem+json`` responses.

Domain errors (``relay.errors``), storage errors and aiohttp's own HTTP errors all leave here
with a stable ``type`` URI, the status, a title in the language the client asked for
(``Accept-Language``: English or French) and, where useful, machine-readable extras. Anything
unexpected is a 500 whose body says nothing about the cause; the log gets the exception type
and traceback, never request bodies.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web

from relay import i18n
from relay.envelope.documents import EnvelopeError
from relay.server import errors
from relay.server.context import CONTEXT
from storage import errors as storage_errors

log = logging.getLogger(__name__)

TYPE_PREFIX = "urn:mediation-relay:problem:"

_STORAGE = {  # most specific first
    storage_errors.LegalHoldActive: errors.LegalHold,
    storage_errors.NotFound: errors.NotFound,
    storage_errors.Conflict: errors.Conflict,
    storage_errors.BlobTooLarge: errors.BodyTooLarge,
    storage_errors.BlobMismatch: errors.ContentMismatch,
    storage_errors.BlobPathError: errors.NotFound,
}
_HTTP = {
    400: errors.MalformedRequest,
    401: errors.Unauthenticated,
    403: errors.Forbidden,
    404: errors.NotFound,
    405: errors.NotFound,
    409: errors.Conflict,
    413: errors.BodyTooLarge,
}


def problem(error: errors.RelayError, lang: str, instance: str | None = None) -> web.Response:
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
    headers = {"Content-Language": lang}
    if error.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="relay"'
    return web.Response(
        status=error.status, text=json.dumps(body, ensure_ascii=False),
        content_type="application/problem+json", headers=headers,
    )


def as_relay_error(exc: BaseException) -> errors.RelayError | None:
    if isinstance(exc, errors.RelayError):
        return exc
    for storage_type, relay_type in _STORAGE.items():
        if isinstance(exc, storage_type):
            return relay_type()
    if isinstance(exc, EnvelopeError):
        return errors.SignatureInvalid()
    if isinstance(exc, web.HTTPException) and exc.status >= 400:
        return _HTTP.get(exc.status, errors.MalformedRequest)()
    return None


@web.middleware
async def problem_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    lang = i18n.negotiate(request.headers.get("Accept-Language"))
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except Exception as exc:
        error = as_relay_error(exc)
        if error is None:
            log.exception("unhandled %s on %s %s", type(exc).__name__, request.method, request.path)
            error = errors.RelayError()
        elif error.status >= 500:
            log.error("%s on %s %s", error.type, request.method, request.path)
        return problem(error, lang, instance=request.path)


@web.middleware
async def security_headers(request: web.Request, handler: Any) -> web.StreamResponse:
    response: web.StreamResponse = await handler(request)
    # Nothing the relay serves should be cached by a proxy or a kiosk's browser.
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    return response


__all__ = ["problem", "problem_middleware", "security_headers", "CONTEXT"]
