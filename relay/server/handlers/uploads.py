"""tus 1.0 resumable uploads (core, creation, expiration, termination, checksum) and the limits."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from relay.server.api import EMPTY, operation
from relay.server.auth import guard, principal_of, public
from relay.server.bodies import media_type, whole_number, within
from relay.server.context import CONTEXT
from relay.server.errors import (
    BodyTooLarge,
    ChecksumMismatch,
    Conflict,
    InsufficientStorage,
    InvalidField,
    MalformedRequest,
    NotFound,
    RateLimited,
    RequestTimeout,
    TusVersionUnsupported,
    UnsupportedMediaType,
    UploadExpired,
)
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
@operation(EMPTY, status=204, tus=True)
async def options(request: web.Request) -> web.StreamResponse:
    """What this tus server supports: version, extensions, largest upload, checksum algorithms."""
    ctx = request.app[CONTEXT]
    return web.Response(status=204, headers={
        **TUS, "Tus-Version": "1.0.0", "Tus-Extension": "creation,expiration,termination,checksum",
        "Tus-Max-Size": str(uploads.largest_upload(ctx)),
        "Tus-Checksum-Algorithm": ",".join(sorted(uploads.CHECKSUM_ALGORITHMS))})


@sender
@operation(EMPTY, status=201, tus=True,
           problems=(TusVersionUnsupported, InvalidField, BodyTooLarge, RateLimited, InsufficientStorage))
async def create(request: web.Request) -> web.StreamResponse:
    """Start a resumable upload of ``Upload-Length`` bytes of ciphertext; ``Location`` names it."""
    _tus(request)
    row = await uploads.create(request.app[CONTEXT], principal_of(request), whole_number(request, "Upload-Length"))
    return web.Response(status=201, headers={**_headers(row), "Location": f"/v1/uploads/{row['id']}"})


@sender
@operation(EMPTY, tus=True, problems=(TusVersionUnsupported, NotFound, UploadExpired))
async def head(request: web.Request) -> web.StreamResponse:
    """How much of an upload the relay holds (``Upload-Offset``), to resume from there."""
    _tus(request)
    row = await uploads.owned(request.app[CONTEXT], principal_of(request), request.match_info["upload_id"])
    return web.Response(status=200, headers=_headers(row))


@sender
@operation(EMPTY, status=204, tus=True,
           problems=(TusVersionUnsupported, UnsupportedMediaType, InvalidField, NotFound, UploadExpired, Conflict,
                     ChecksumMismatch, BodyTooLarge, MalformedRequest, RequestTimeout, InsufficientStorage))
async def patch(request: web.Request) -> web.StreamResponse:
    """Append bytes (``application/offset+octet-stream``) at ``Upload-Offset``."""
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
@operation(EMPTY, status=204, tus=True, problems=(TusVersionUnsupported, NotFound, Conflict))
async def delete(request: web.Request) -> web.StreamResponse:
    """Cancel an upload; its bytes are deleted."""
    _tus(request)
    await uploads.terminate(request.app[CONTEXT], principal_of(request), request.match_info["upload_id"])
    return web.Response(status=204, headers=TUS)
