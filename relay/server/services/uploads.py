"""Resumable uploads of ciphertext, following tus 1.0 (core, creation, expiration, termination,
checksum), so that a video can survive a lost connection or a restarted client.

The relay only ever sees ciphertext here. An upload is a private scratch file owned by one
person on one device; it becomes an item only when that person submits a signed manifest whose
size and hash match it (``items.submit`` with ``upload_id``). Until then it is never listed,
and an abandoned one is reclaimed once it expires.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterable
from datetime import datetime
from typing import Any

from relay import ids
from relay.server import disk
from relay.server.context import Context
from relay.server.errors import (
    BodyTooLarge,
    ChecksumMismatch,
    Conflict,
    InvalidField,
    MalformedRequest,
    NotFound,
    RateLimited,
    UploadExpired,
)
from relay.server.principal import Principal
from storage import uploads
from storage.clock import iso, parse
from storage.errors import BlobMismatch, SignedOut

CHECKSUM_ALGORITHMS = {"sha1": "sha1", "sha256": "sha256"}
MAX_OPEN_PER_PERSON = 5  # unfinished uploads at once: a person cannot fill the relay's disk


def largest_upload(ctx: Context) -> int:
    """The largest upload that could ever become an item: what Tus-Max-Size and the limits announce."""
    return min(ctx.settings.max_upload_bytes, max(ctx.settings.max_video_bytes, ctx.settings.max_letter_bytes))


def limits(ctx: Context) -> dict[str, Any]:
    """What a client checks before it starts (and the relay checks again)."""
    hours = ctx.schedule.abandoned_upload.total_seconds() / 3600
    return {"max_upload_bytes": largest_upload(ctx), "max_letter_bytes": ctx.settings.max_letter_bytes,
            "max_video_bytes": ctx.settings.max_video_bytes, "max_video_seconds": 20 * 60,
            "video_containers": ["mp4", "mov", "webm", "mkv"], "delivery_profile": "H.264/AAC MP4, at most 1280x720,"
            " 30 fps, metadata stripped", "upload_expiry_hours": int(hours) if hours.is_integer() else hours,
            "kinds": ["letter", "video"],
            "chunk_size": 64 * 1024, "checksum_algorithms": sorted(CHECKSUM_ALGORITHMS)}


def _expiry(ctx: Context) -> str:
    return iso(ctx.clock.now() + ctx.schedule.abandoned_upload)


async def create(ctx: Context, who: Principal, length: int) -> dict[str, Any]:
    if length <= 0:
        raise InvalidField(errors=[{"field": "Upload-Length", "message": "a positive number of bytes"}])
    largest = largest_upload(ctx)
    if length > largest:  # nothing bigger could ever become an item
        raise BodyTooLarge(limit=largest)
    disk.check_reserve(ctx)  # a new upload is refused early while the disk is nearly full
    await reclaim_expired(ctx)
    row = {"id": ids.new("upload"), "person_id": who.person_id, "device_id": who.device_id, "length": length,
           "offset": 0, "created_at": ctx.now_iso(), "expires_at": _expiry(ctx)}
    # The count and the insert are one transaction of the single writer: parallel creations
    # cannot all see room for one more.
    if not await uploads.create_within(ctx.db, row, max_open=MAX_OPEN_PER_PERSON):
        raise RateLimited(detail="too many unfinished uploads; finish or cancel one first")
    ctx.blobs.start_upload(row["id"])
    return row


async def owned(ctx: Context, who: Principal, upload_id: str) -> dict[str, Any]:
    """The caller's own upload on this device; NotFound for anyone else's; Gone if expired."""
    row = await uploads.get(ctx.db, upload_id) if ids.valid("upload", upload_id) else None
    if row is None or row["person_id"] != who.person_id or row["device_id"] != who.device_id:
        raise NotFound()
    if parse(row["expires_at"]) <= ctx.clock.now():
        if not ctx.blobs.upload_busy(upload_id):  # else the PATCH under way fails and it goes later
            await _drop(ctx, upload_id)
        raise UploadExpired()
    return row


async def append(ctx: Context, who: Principal, upload_id: str, offset: int, checksum_header: str | None,
                 body: AsyncIterable[bytes]) -> dict[str, Any]:
    await owned(ctx, who, upload_id)  # before waiting on the lock: strangers learn nothing
    async with ctx.blobs.upload_lock(upload_id):
        return await _append_locked(ctx, who, upload_id, offset, checksum_header, body)


async def _append_locked(ctx: Context, who: Principal, upload_id: str, offset: int, checksum_header: str | None,
                         body: AsyncIterable[bytes]) -> dict[str, Any]:
    row = await owned(ctx, who, upload_id)
    if offset != row["offset"]:
        raise Conflict("Upload-Offset differs from the acknowledged offset", offset=row["offset"])
    checksum = _parse_checksum(checksum_header)
    disk.check_reserve(ctx)  # more bytes: not while the disk is nearly full (the client retries later)
    try:
        end = await ctx.blobs.append(upload_id, body, offset=offset, limit=row["length"], checksum=checksum)
    except BlobMismatch:
        raise ChecksumMismatch() from None
    expires = _expiry(ctx)
    try:
        await uploads.advance(ctx.db, upload_id=upload_id, from_offset=offset, to_offset=end, expires_at=expires,
                              session=who.session_id)
    except SignedOut:  # signed out or revoked while these bytes arrived: not acknowledged, not kept
        ctx.blobs.cut_upload(upload_id, offset)
        raise
    return {**row, "offset": end, "expires_at": expires}


async def terminate(ctx: Context, who: Principal, upload_id: str) -> None:
    await owned(ctx, who, upload_id)
    async with ctx.blobs.upload_lock(upload_id):
        await _drop(ctx, upload_id)


async def take(ctx: Context, who: Principal, upload_id: str) -> dict[str, Any]:
    """A complete upload of the caller's, to be promoted into an item's blob."""
    row = await owned(ctx, who, upload_id)
    if row["offset"] != row["length"]:
        raise Conflict("the upload is not complete", offset=row["offset"], length=row["length"])
    if not ctx.blobs.upload_path(upload_id).is_file():  # promoted once already, then the submit failed
        await _drop(ctx, upload_id)
        raise Conflict("the upload is gone; send it again")
    return row


async def forget(ctx: Context, upload_id: str) -> None:
    """After promotion: the row goes (the file was renamed into the blob store)."""
    await uploads.remove(ctx.db, upload_id)


async def reclaim_expired(ctx: Context) -> int:
    """Drop expired uploads, except one a PATCH is writing to right now (a PATCH that began
    before the expiry): its file is not pulled from under it, and it goes at the next sweep
    unless that PATCH renewed it."""
    gone = [upload_id for upload_id in await uploads.expired(ctx.db, ctx.now_iso())
            if not ctx.blobs.upload_busy(upload_id)]
    for upload_id in gone:
        await _drop(ctx, upload_id)
    return len(gone)


async def _drop(ctx: Context, upload_id: str) -> None:
    ctx.blobs.discard_upload(upload_id)
    try:
        await uploads.remove(ctx.db, upload_id)
    except Exception:  # already gone: dropping is idempotent
        pass


def _parse_checksum(header: str | None) -> tuple[str, bytes] | None:
    if not header:
        return None
    algorithm, _, encoded = header.strip().partition(" ")
    if algorithm not in CHECKSUM_ALGORITHMS:
        raise MalformedRequest("Upload-Checksum algorithm not supported (sha1, sha256)")
    try:
        return CHECKSUM_ALGORITHMS[algorithm], base64.b64decode(encoded, validate=True)
    except binascii.Error:
        raise MalformedRequest("Upload-Checksum is not base64") from None


def http_date(text: str) -> str:
    moment: datetime = parse(text)
    return moment.strftime("%a, %d %b %Y %H:%M:%S GMT")
