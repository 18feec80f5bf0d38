"""Reading request bodies: size-limited, validated by pydantic, streamed where large.

JSON bodies are read up to ``max_json_bytes`` and validated into a model; anything else is a
problem response before any service runs, so a rejected request changes nothing. Uploads are
``multipart/form-data`` with a small JSON ``meta`` part first and the ciphertext ``content``
part second, which is never held in memory: it is handed on as an async iterator of chunks.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, TypeVar

from aiohttp import BodyPartReader, web
from pydantic import BaseModel, ValidationError

from relay.server.context import CONTEXT
from relay.server.errors import BodyTooLarge, InvalidField, MalformedRequest

M = TypeVar("M", bound=BaseModel)
_CHUNK = 64 * 1024


def _validate(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidField(errors=[
            {"field": ".".join(str(p) for p in err["loc"]), "message": err["msg"]}
            for err in exc.errors(include_url=False, include_input=False)
        ]) from None


def _parse_json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise MalformedRequest() from None


async def json_body(request: web.Request, model: type[M]) -> M:
    limit = request.app[CONTEXT].settings.max_json_bytes
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge()
    raw = bytearray()
    while chunk := await request.content.read(_CHUNK):
        raw += chunk
        if len(raw) > limit:
            raise BodyTooLarge()
    return _validate(model, _parse_json(bytes(raw)))


def query(request: web.Request, model: type[M]) -> M:
    return _validate(model, dict(request.query))


class Upload:
    """A multipart upload: validated ``meta`` now, ``content`` streamed on demand."""

    def __init__(self, meta: Any, part: BodyPartReader | None) -> None:
        self.meta = meta
        self._part = part

    @property
    def has_content(self) -> bool:
        return self._part is not None

    async def chunks(self) -> AsyncIterator[bytes]:
        if self._part is None:
            return
        while chunk := await self._part.read_chunk(_CHUNK):
            yield chunk


async def upload(request: web.Request, model: type[M]) -> tuple[M, Upload]:
    limit = request.app[CONTEXT].settings.max_json_bytes
    if not request.content_type.startswith("multipart/"):
        raise MalformedRequest("expected multipart/form-data with a meta part and a content part")
    reader = await request.multipart()
    meta_part = await reader.next()
    if not isinstance(meta_part, BodyPartReader) or meta_part.name != "meta":
        raise MalformedRequest("the first part must be named meta")
    raw = bytearray()
    while chunk := await meta_part.read_chunk(_CHUNK):
        raw += chunk
        if len(raw) > limit:
            raise BodyTooLarge()
    meta = _validate(model, _parse_json(bytes(raw)))
    content = await reader.next()
    if content is not None and (not isinstance(content, BodyPartReader) or content.name != "content"):
        raise MalformedRequest("the second part must be named content")
    return meta, Upload(meta, content)
