"""The relay's log: one JSON object a line, each naming the request (or the background job) it
belongs to, and nothing a request carried.

- **Request ids.** :func:`request_ids` (the outermost middleware) gives every request an id: 16
  random hex characters, or, with ``trust_request_id`` only, the proxy's ``X-Request-Id`` when it matches
  ``INCOMING`` (so both logs correlate; anything else is replaced, never quoted). The id sits in the
  ``REQUEST_ID`` context variable, so every line logged while the request is served, in a handler,
  a service, a read or the problem mapping, carries it; it goes back in the ``X-Request-Id``
  header of every response (:func:`relay.server.problems.name_the_server`) and as ``request_id``
  in every problem document. aiohttp serves each request in a task of its own (a copy of the
  connection's context), so the variable is set without a reset: the access line, written after
  the response in that same task, still sees it, and the next request starts without it.
- **Job ids.** Background work (the purge, the scrub, the database writer, start-up) runs under
  :func:`job`, and its lines carry ``job_id`` (``purge-3fa9c2d1``) instead. The single database
  writer commits the writes of several requests together, so its own lines carry its job id; the
  request whose write failed logs the failure again under its request id.
- **No values.** What a line may say is decided where it is written (ids are never formatted in
  from a request; the access line names the route's template, never the path). Here, the
  formatter adds a safety net: an exception is logged as its type and where it was raised, never
  its message or a traceback's text, which can quote what the request carried; and aiosqlite's
  debug lines (each statement with its parameters) are kept off.

Formats: ``json`` (the default: one object a line, for a log collector) or ``text`` (one readable
line, for a developer's terminal), chosen with the ``log_format`` setting. Both come from the
standard library's ``logging``; see the README's design notes for why not structlog.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import secrets
import sys
import traceback
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, Any

from aiohttp import web

REQUEST_ID: ContextVar[str | None] = ContextVar("relay_request_id", default=None)
JOB_ID: ContextVar[str | None] = ContextVar("relay_job_id", default=None)
HEADER = "X-Request-Id"
INCOMING = re.compile(r"[A-Za-z0-9-]{8,64}")  # a caller's id is taken only if it is this tame
FORMATS = ("json", "text")
# Loggers that say more than the relay may log below a level: aiosqlite's debug lines quote every
# statement with its parameters (labels, names, hashes).
QUIETER = {"aiosqlite": logging.INFO}


def new_id() -> str:
    return secrets.token_hex(8)


def accept(incoming: str | None) -> str:
    """The caller's ``X-Request-Id`` if it is a tame id, else a new one (never an echo of junk)."""
    if incoming is not None and INCOMING.fullmatch(incoming):
        return incoming
    return new_id()


def request_ids(*, trust_incoming: bool) -> Any:
    """The outermost middleware. ``trust_incoming`` (the ``trust_request_id`` setting, for a relay
    behind a proxy that sets the header itself, e.g. nginx's ``proxy_set_header X-Request-Id
    $request_id``, replacing whatever a client sent): the proxy's ``X-Request-Id`` is taken when
    tame, so both logs correlate. Otherwise every id is the relay's own: a client cannot make its
    lines carry another request's id."""

    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        # Cheap on purpose (it runs for every request): one header lookup, a regex or 8 random
        # bytes, one ContextVar.set. The response header is added in on_response_prepare, which
        # every response passes through, streamed ones and the problems file responses write too.
        REQUEST_ID.set(accept(request.headers.get(HEADER)) if trust_incoming else new_id())
        response: web.StreamResponse = await handler(request)
        return response

    return middleware


@contextlib.contextmanager
def job(name: str) -> Iterator[str]:
    """Lines logged inside the block (and in tasks started from it) carry ``job_id`` ``name-xxxxxxxx``."""
    token = JOB_ID.set(f"{name}-{secrets.token_hex(4)}")
    try:
        yield JOB_ID.get() or name
    finally:
        JOB_ID.reset(token)


# -- formatting -----------------------------------------------------------------------------------


def _time(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _exception(record: logging.LogRecord) -> str | None:
    """An exception's type and the place it was raised (file:line in function): no message, no
    values. The same rule as ``relay.server.problems.where``, for whatever logs with exc_info."""
    if not record.exc_info or record.exc_info[1] is None:
        return None
    exc = record.exc_info[1]
    frames = traceback.extract_tb(exc.__traceback__)[-1:]
    place = "".join(f" at {f.filename.rsplit('/', 1)[-1]}:{f.lineno} in {f.name}" for f in frames)
    return f"{type(exc).__module__}.{type(exc).__qualname__}{place}"


_WARNING = re.compile(r"(?P<file>[^\n]*?):(?P<line>\d+): (?P<category>\w+): ")
# asyncio's own words, before the first repr it formats in ("Exception in callback <handle with
# its arguments>", "future: <Future finished exception=ValueError('...')>").
_ASYNCIO_WORDS = re.compile(r"[A-Za-z][A-Za-z ,!-]*")


def _message(record: logging.LogRecord) -> str:
    """The line's message. A Python warning (``captureWarnings``) says only its category and
    where it was raised: its text can quote a request (aiohttp's multipart warnings carry the
    client's Content-Disposition header). asyncio's reports keep their first plain words."""
    message = record.getMessage()
    if record.name == "py.warnings":
        found = _WARNING.match(message)
        if found is None:
            return "a warning (no details kept)"
        return f"{found['category']} at {found['file'].rsplit('/', 1)[-1]}:{found['line']}"
    if record.name == "asyncio" or record.name.startswith("asyncio."):
        # Its event loop's reports quote objects' reprs: a future's exception with its message, a
        # callback's arguments, a task's coroutine; the exception's type and place come apart.
        found = _ASYNCIO_WORDS.match(message)
        return found[0].strip() if found else "an event loop report (no details kept)"
    return message


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    """Ids and the structured fields a line was given (``extra={"fields": {...}}``, set only by
    the relay's own code with values it chose: a route template, a status, a count)."""
    out: dict[str, Any] = {}
    request_id = getattr(record, "request_id", None) or REQUEST_ID.get()
    if request_id:
        out["request_id"] = request_id
    elif job_id := JOB_ID.get():
        out["job_id"] = job_id
    extra = getattr(record, "fields", None)
    if isinstance(extra, dict):
        out.update(extra)
    return out


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, request_id or
    job_id, the line's own fields, and an exception's type and place when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {"time": _time(record), "level": record.levelname.lower(), "logger": record.name,
                                "message": _message(record)}
        line.update(_fields(record))
        if (exc := _exception(record)) is not None:
            line["exception"] = exc
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """One readable line for a developer's terminal, with the same content as the JSON."""

    def format(self, record: logging.LogRecord) -> str:
        fields = _fields(record)
        ident = fields.pop("request_id", None) or fields.pop("job_id", None) or "-"
        message = _message(record)
        text = f"{_time(record)} {record.levelname:<7} {record.name} [{ident}] {message}"
        said = [f"{k}={v}" for k, v in fields.items() if str(v) not in message]  # not twice on a line
        if said:
            text += " " + " ".join(said)
        if (exc := _exception(record)) is not None:
            text += f" ({exc})"
        return text


def formatter(kind: str) -> logging.Formatter:
    if kind not in FORMATS:
        raise ValueError(f"log format {kind!r}: one of {', '.join(FORMATS)}")
    return JsonFormatter() if kind == "json" else TextFormatter()


def configure(kind: str = "json", level: int | str = logging.INFO, stream: IO[str] | None = None,
              ) -> logging.Handler:
    """``relay serve``: the root logger writes ``kind`` lines to ``stream`` (stderr) from ``level``
    on, and nothing else does. Returns the handler (a test may remove it)."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(formatter(kind))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    # What the formatters never print is not gathered for every record either (the logging
    # HOWTO's "Optimization"): the caller's file and line (a walk up the stack), the thread's
    # and the process's names.
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    logging.captureWarnings(True)  # Python's warnings become log lines too, not bare text on stderr
    quiet()
    return handler


def quiet() -> None:
    for name, floor in QUIETER.items():
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < floor:
            logger.setLevel(floor)
