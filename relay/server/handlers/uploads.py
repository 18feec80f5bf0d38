"""tus 1.0 resumable uploads (core, creation, expiration, termination, checksum) and the limits."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from relay.server.auth import guard, principal_of, public
from relay.server.bodies import media_type, whole_number, within
from relay.server.context import CONTEXT
from relay.server.errors import MalformedRequest, TusVersionUnsupported, UnsupportedMediaType
from relay.server.handlers.common import ok
from relay.server.metrics import METRICS
from relay.server.services import uploads

TUS = {"Tus-Resumable": "1.0.0"}
sender = guard(devices={"participant_device", "terminal", "mediator_desk"}, roles={"participant", "mediator"})


def _tus(request: web.Request) -> None:
    if request.headers.get("Tus-Resumable") != "1.0.0":
        raise TusVersionUnsupported(tus_version="1.0.0")


def _headers(row: dict, **extra: str) -> dict[str, str]:  # type: ignore[type-arg]
    return {**TUS, "Upload-Offset": str(row["offset"]), "Upload-Length": str(row["length"]),
            "Upload-Expires": uploads.http_date(row["expires_at"]), "Cache-Control": "no-store", **extra}


@public
async def limits(request: web.Request) -> web.Response:
    return ok(uploads.limits(request.app[CONTEXT]))


@public
async def options(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    return web.Response(status=204, headers={
        **TUS, "Tus-Version": "1.0.0", "Tus-Extension": "creation,expiration,termination,checksum",
        "Tus-Max-Size": str(ctx.settings.max_upload_bytes),
        "Tus-Checksum-Algorithm": ",".join(sorted(uploads.CHECKSUM_ALGORITHMS))})


@sender
async def create(request: web.Request) -> web.Response:
    _tus(request)
    row = await uploads.create(request.app[CONTEXT], principal_of(request), whole_number(request, "Upload-Length"))
    return web.Response(status=201, headers={**_headers(row), "Location": f"/v1/uploads/{row['id']}"})


@sender
async def head(request: web.Request) -> web.Response:
    _tus(request)
    row = await uploads.owned(request.app[CONTEXT], principal_of(request), request.match_info["upload_id"])
    return web.Response(status=200, headers=_headers(row))


@sender
async def patch(request: web.Request) -> web.Response:
    _tus(request)
    if media_type(request) != "application/offset+octet-stream":
        raise UnsupportedMediaType()

    async def body() -> AsyncIterator[bytes]:
        while True:  # each read must make progress within body_idle_seconds
            try:
                chunk = await within(request, request.content.read(256 * 1024))
            except (HttpProcessingError, RequestPayloadError):  # broken framing: nothing of it is kept
                raise MalformedRequest() from None
            if not chunk:
                return
            request.app[METRICS].upload_bytes.inc(len(chunk))
            yield chunk

    row = await uploads.append(request.app[CONTEXT], principal_of(request), request.match_info["upload_id"],
                               whole_number(request, "Upload-Offset"), request.headers.get("Upload-Checksum"), body())
    return web.Response(status=204, headers=_headers(row))


@sender
async def delete(request: web.Request) -> web.Response:
    _tus(request)
    await uploads.terminate(request.app[CONTEXT], principal_of(request), request.match_info["upload_id"])
    return web.Response(status=204, headers=TUS)
