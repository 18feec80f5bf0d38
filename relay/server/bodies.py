"""Reading request bodies and headers: size-limited, time-limited, strictly parsed, validated
by pydantic, streamed where large.

JSON bodies are read up to ``max_json_bytes`` and validated into a model; anything else is a
problem response before any service runs, so a rejected request changes nothing. Uploads are
``multipart/form-data`` with a small JSON ``meta`` part first and the ciphertext ``content``
part second, which is never held in memory: it is handed on as an async iterator of chunks.

Every malformed input ends here as a 4xx problem, never as an exception from a parser deeper
down: JSON is parsed strictly (no duplicate keys, no NaN or Infinity, bounded nesting), the
multipart envelope is checked before aiohttp's reader sees it and the reader's own refusals are
caught, integer headers are ASCII digits of bounded length, and a body that stops arriving is
cut off after ``body_idle_seconds``.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

from aiohttp import BodyPartReader, web
from aiohttp.hdrs import CONTENT_DISPOSITION
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.multipart import content_disposition_filename, parse_content_disposition
from aiohttp.web_protocol import RequestPayloadError
from pydantic import BaseModel, ValidationError

from relay.server import disk
from relay.server.context import CONTEXT
from relay.server.errors import BodyTooLarge, InvalidField, MalformedRequest, RequestTimeout

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")
_CHUNK = 64 * 1024

# Deep enough for every document the relay takes (its deepest, a decision, nests 3 levels),
# shallow enough that nothing downstream (validation, canonical JSON) can recurse too far.
MAX_JSON_DEPTH = 32
# RFC 2046 section 5.1.1: 1 to 70 characters from this set, not ending in a space.
_BOUNDARY = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")
# What aiohttp's multipart reader and payload stream raise on a body they cannot parse.
_UNREADABLE = (ValueError, HttpProcessingError, RequestPayloadError, UnicodeDecodeError)
# Integer headers: plain ASCII decimal (str.isdigit() also takes "²" and "٣"), at most 18 digits,
# so the value fits SQLite's integer and int() never meets Python's 4,300-digit limit.
_WHOLE_NUMBER = re.compile(r"[0-9]{1,18}")


class DuplicateKey(ValueError):
    """A JSON object names the same key twice (the envelope spec says to refuse it)."""


class TooDeep(ValueError):
    """JSON nested beyond MAX_JSON_DEPTH."""


def _validate(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidField(errors=[
            {"field": ".".join(str(p) for p in err["loc"]), "message": err["msg"]}
            for err in exc.errors(include_url=False, include_input=False)
        ]) from None


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise DuplicateKey()
    return obj


def _no_constant(name: str) -> Any:
    raise ValueError("NaN and Infinity are not JSON")


def _depth_ok(value: Any) -> bool:
    """True if ``value`` nests at most MAX_JSON_DEPTH containers (iteratively: no recursion)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth > MAX_JSON_DEPTH:
                return False
            stack.extend((child, depth + 1) for child in (node.values() if isinstance(node, dict) else node))
    return True


def parse_json(raw: bytes) -> Any:
    """Strict JSON: UTF-8, no duplicate keys, no NaN/Infinity, nesting bounded; else MalformedRequest."""
    try:
        value = json.loads(raw, object_pairs_hook=_object, parse_constant=_no_constant)
        if not _depth_ok(value):
            raise TooDeep()
    except DuplicateKey:
        raise MalformedRequest("a JSON object repeats a key") from None
    except (TooDeep, RecursionError):
        raise MalformedRequest(f"JSON nested deeper than {MAX_JSON_DEPTH} levels") from None
    except (ValueError, UnicodeDecodeError):
        raise MalformedRequest() from None
    return value


async def within(request: web.Request, step: Awaitable[T]) -> T:
    """One read of the body, which must make progress within ``body_idle_seconds`` (slowloris)."""
    try:
        async with asyncio.timeout(request.app[CONTEXT].settings.body_idle_seconds):
            return await step
    except TimeoutError:
        raise RequestTimeout() from None


async def json_body(request: web.Request, model: type[M]) -> M:
    limit = request.app[CONTEXT].settings.max_json_bytes
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge()
    raw = bytearray()
    try:
        while chunk := await within(request, request.content.read(_CHUNK)):
            raw += chunk
            if len(raw) > limit:
                raise BodyTooLarge()
    except (HttpProcessingError, RequestPayloadError):  # a broken chunked encoding, a short body
        raise MalformedRequest() from None
    return _validate(model, parse_json(bytes(raw)))


def query(request: web.Request, model: type[M]) -> M:
    return _validate(model, dict(request.query))


def whole_number(request: web.Request, name: str) -> int:
    """A header that must be a non-negative integer: ASCII digits only, at most 18 of them."""
    value = request.headers.get(name, "")
    if not _WHOLE_NUMBER.fullmatch(value):
        raise InvalidField(errors=[{"field": name, "message": "a non-negative whole number is required"}])
    return int(value)


class Upload:
    """A multipart upload: validated ``meta`` now, ``content`` streamed on demand."""

    def __init__(self, request: web.Request, meta: Any, part: BodyPartReader | None) -> None:
        self.meta = meta
        self._request = request
        self._part = part

    @property
    def has_content(self) -> bool:
        return self._part is not None

    async def chunks(self) -> AsyncIterator[bytes]:
        if self._part is None:
            return
        # New bytes are about to go to disk: not below the reserve kept for the database.
        disk.check_reserve(self._request.app[CONTEXT])
        while True:
            try:
                chunk = await within(self._request, self._part.read_chunk(_CHUNK))
            except _UNREADABLE:
                raise MalformedRequest("the content part could not be read") from None
            if not chunk:
                return
            yield chunk


def media_type(request: web.Request) -> str:
    """The request's media type, lowercased, without parameters. (aiohttp's ``content_type`` runs
    the standard library's e-mail header parser: a fifth of a decision's time under load.)"""
    return request.headers.get("Content-Type", "").partition(";")[0].strip().lower()


def _multipart_form(request: web.Request) -> None:
    """Refuse, before aiohttp's reader sees it, a body that is not form-data with a valid boundary."""
    if media_type(request) != "multipart/form-data":
        raise MalformedRequest("expected multipart/form-data with a meta part and a content part")
    boundary = request.headers.get("Content-Type", "")
    parameters = dict(_parameters(boundary))
    if not _BOUNDARY.fullmatch(parameters.get("boundary", "")):
        raise MalformedRequest("the multipart boundary is missing or not valid (1 to 70 characters)")


def _parameters(content_type: str) -> list[tuple[str, str]]:
    found = []
    for piece in content_type.split(";")[1:]:
        name, _, value = piece.strip().partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        found.append((name.strip().lower(), value))
    return found


def part_name(part: BodyPartReader) -> str | None:
    """``part.name``, as aiohttp parses it, remembered for the few header values clients send
    (aiohttp's parser rebuilds an escaping regex from 128 characters on every call: a twelfth
    of a decision's time under load, bench/writes.py)."""
    disposition = part.headers.get(CONTENT_DISPOSITION)
    if disposition is None or len(disposition) > 200:
        return part.name
    return _name_in(disposition)


@functools.lru_cache(maxsize=64)
def _name_in(disposition: str) -> str | None:
    return content_disposition_filename(parse_content_disposition(disposition)[1], "name")


async def upload(request: web.Request, model: type[M]) -> tuple[M, Upload]:
    limit = request.app[CONTEXT].settings.max_json_bytes
    _multipart_form(request)
    try:
        reader = await request.multipart()
        meta_part = await within(request, reader.next())
        if not isinstance(meta_part, BodyPartReader) or part_name(meta_part) != "meta":
            raise MalformedRequest("the first part must be named meta")
        raw = bytearray()
        while chunk := await within(request, meta_part.read_chunk(_CHUNK)):
            raw += chunk
            if len(raw) > limit:
                raise BodyTooLarge()
        meta = _validate(model, parse_json(bytes(raw)))
        content = await within(request, reader.next())
    except _UNREADABLE:
        # aiohttp's reader refuses an empty body, a missing first boundary, too many part
        # headers: all malformed input. (Its messages quote the body, so they are not kept.)
        raise MalformedRequest("the multipart body could not be read") from None
    if content is not None and (not isinstance(content, BodyPartReader) or part_name(content) != "content"):
        raise MalformedRequest("the second part must be named content")
    return meta, Upload(request, meta, content)
