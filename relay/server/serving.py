"""Running the relay: the HTTP server around the application, and what a server-side command
sets up before it touches the data directory.

- Every file the relay creates is private (umask 077): the database, its ``-wal`` and ``-shm``,
  blobs, the first-start code file.
- Requests that aiohttp's own parser refuses (a header over 8 KiB, too many headers, a broken
  request line) get a problem document like every other error, and are logged with the
  exception's type only: no client address, no header, no token.
- A connection whose request headers have not all arrived within ``header_timeout_seconds`` is
  closed (aiohttp's keep-alive timer runs from the moment a connection opens and between
  requests; a request still being read counts as idle). Bodies are bounded in ``bodies``.
- The access log names the route's template, the status and the time: never the path as sent,
  a query, an address or a user agent.
- The ``Server`` header names the relay, never a version.
- At most ``max_connections`` connections are open at once: past it, a new one is answered
  ``503 too-busy`` and closed before its request is read, so a flood of connections cannot take
  the file descriptors the database and the blobs need (the open-file limit is raised to fit).
  Over the relay's own TLS a connection counts from its accept, handshake included
  (``TLSAdmission``); past the limit it is closed before its handshake, without words.
- The first-start code goes to the terminal only: stderr if it is a terminal, else a 0600 file
  in the data directory, and the log says only that the file exists.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import resource
import signal
import ssl
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.http_exceptions import LineTooLong
from aiohttp.web_protocol import RequestHandler

from relay import i18n
from relay.i18n.catalogs import LANGUAGES
from relay.i18n.cli import say
from relay.server import errors, logs
from relay.server.metrics import METRICS, Metrics
from relay.server.problems import (
    CONTENT_TYPE,
    SECURITY_HEADERS,
    before_middlewares,
    document,
    for_status,
    headers_for,
    route_of,
)
from relay.server.settings import Settings

log = logging.getLogger(__name__)
http_log = logging.getLogger("relay.server.http")

CODE_FILE = "first-start-code"  # in the data directory, 0600, when no terminal is there to show it
PRIVATE_UMASK = 0o077


def restrict_file_modes() -> None:
    """Make every file this process creates readable by its owner only (0600, directories 0700).

    Call it first thing in ``relay serve`` and in every server-side command: SQLite creates the
    ``-wal`` and ``-shm`` files itself, with the process's umask, so an explicit mode on our own
    files is not enough."""
    os.umask(PRIVATE_UMASK)


def tighten_existing(data_dir: Path) -> None:
    """Files an older relay (or a copy) left readable by others are made private at start."""
    for name in ("relay.sqlite3", "relay.sqlite3-wal", "relay.sqlite3-shm", CODE_FILE):
        path = data_dir / name
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_mode & 0o077:
                path.chmod(0o600)


# -- the first-start code -----------------------------------------------------------------------


def _code_text(code: str, url: str) -> str:
    """Both languages: the relay does not know the language of whoever reads its terminal."""
    return "\n".join(say("first-start", lang, code=code, url=url) for lang in LANGUAGES)


def bootstrap_printer(settings: Settings, *, terminal: Any = None,
                      text: Callable[[str], str] | None = None) -> Callable[[str], None]:
    """Show the first-start code to whoever started the relay, never to a log.

    On an interactive start (stderr is a terminal) it is printed there. Otherwise stderr is
    likely a log sink (systemd, Docker, a file), so the code is written to ``CODE_FILE`` in the
    data directory, readable by the relay's user only, and the log says only where it is.
    """
    url = f"{'https' if settings.tls else 'http'}://{settings.host}:{settings.port}"
    words = text or (lambda code: _code_text(code, url))  # ``relay serve`` passes its own, in the user's language

    def show(code: str) -> None:
        stream = terminal if terminal is not None else sys.stderr
        if stream.isatty():
            print(words(code), file=stream, flush=True)
            return
        path = settings.data_dir / CODE_FILE
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as sink:
            sink.write(code + "\n")
            sink.flush()
            os.fsync(sink.fileno())
        log.warning("no coordinator is enrolled yet: the first-start code is in %s (readable by the relay's user"
                    " only); it is shown there once, not in this log", path)

    return show


def forget_code_file(data_dir: Path) -> None:
    """The code was used (or a coordinator exists): a stale code file goes."""
    with contextlib.suppress(FileNotFoundError):
        (data_dir / CODE_FILE).unlink()


# -- logging without request values -------------------------------------------------------------


class _TypeOnly(logging.Filter):
    """aiohttp's own messages about a request quote the client's address and, for a refused
    header, the header itself (a device token among them). Keep only what kind of failure it was."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        record.msg = "refused a request: %s" % (type(exc).__name__ if exc else "no details kept")
        record.args = ()
        record.exc_info = None
        record.exc_text = None
        record.stack_info = None
        return True


http_log.addFilter(_TypeOnly())


class RouteAccessLogger(AbstractAccessLogger):
    """One line per request: method, route template, status, bytes, milliseconds, and (from the
    context, like every line) the request id. Nothing else: no path, query, address or agent."""

    @property
    def enabled(self) -> bool:  # aiohttp skips even the timing when nobody would see the line
        return self.logger.isEnabledFor(logging.INFO)

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        route, ms = route_of(request), round(time * 1000, 1)
        self.logger.info("%s %s %s %s B %.1f ms", request.method, route, response.status, response.body_length, ms,
                         extra={"fields": {"method": request.method, "route": route, "status": response.status,
                                           "bytes": response.body_length, "duration_ms": ms}})


# -- answers aiohttp's parser gives ---------------------------------------------------------------


UNWIND_SECONDS = 1.0  # after the grace: how long a cut-off request gets to unwind once cancelled


# Open files the relay keeps for itself beyond its connections: the database and its journal, the
# blobs being written and read, the listening sockets, ffprobe's pipes, the log.
FILES_KEPT_FREE = 256
_REFUSAL_LOG_EVERY = 60.0  # seconds: a flood is one line a minute, not one a connection


class ConnectionLimit:
    """How many client connections are open, against ``max_connections``."""

    def __init__(self, most: int, metrics: Metrics | None = None) -> None:
        self.most = most
        self.open = 0
        self._metrics = metrics
        self._refused_unlogged = 0
        self._logged_at = float("-inf")

    def enter(self) -> bool:
        """Count a new connection in; False (and counted as refused) once ``most`` are open."""
        if self.open >= self.most:
            self._refused()
            return False
        self.open += 1
        if self._metrics is not None:
            self._metrics.open_connections.inc()
        return True

    def leave(self) -> None:
        self.open -= 1
        if self._metrics is not None:
            self._metrics.open_connections.dec()

    def _refused(self) -> None:
        if self._metrics is not None:
            self._metrics.connections_refused.inc()
        self._refused_unlogged += 1
        now = time.monotonic()
        if now - self._logged_at >= _REFUSAL_LOG_EVERY:
            log.warning("refused %d connection(s): %d open, the most max_connections allows",
                        self._refused_unlogged, self.most)
            self._refused_unlogged, self._logged_at = 0, now


@functools.cache
def _too_busy_answer() -> bytes:
    """The whole answer to a connection refused before its request was read (so no language was
    asked for: English; the type is what a client reads)."""
    error = errors.TooBusy()
    body = document(error, "en")
    head = [f"HTTP/1.1 {error.status} Service Unavailable", f"Content-Type: {CONTENT_TYPE}; charset=utf-8",
            f"Content-Length: {len(body)}", "Connection: close",
            *(f"{name}: {value}" for name, value in {**headers_for(error, "en"), **SECURITY_HEADERS}.items())]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


DEFAULT_MAX_CONNECTIONS = 2048


def connection_cap(settings: Settings) -> int:
    """How many connections may be open at once: ``max_connections`` as set (``relay config
    check`` refuses one the system cannot fit); unset, the default, or fewer if the open-file
    limit (raised as far as it goes) cannot fit it."""
    limit = raise_open_file_limit(settings.max_connections or DEFAULT_MAX_CONNECTIONS)
    if settings.max_connections is not None:
        return settings.max_connections
    return max(8, min(DEFAULT_MAX_CONNECTIONS, limit - FILES_KEPT_FREE))


def raise_open_file_limit(connections: int) -> int:
    """Raise this process's open-file limit to fit ``connections`` (up to the hard limit); the
    limit in force after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connections + FILES_KEPT_FREE
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class _HandshakeStandIn(asyncio.Protocol):
    """Holds a TLS connection's place while its handshake runs (``loop.start_tls``): what the
    connection brings between the handshake's end and the handler taking over is kept for it,
    and the end of the connection, whenever it comes, reaches the handler (asyncio schedules that
    call on the protocol it had when the connection was lost, which may be this one)."""

    def __init__(self) -> None:
        self.early: list[bytes] = []
        self.lost: list[Exception | None] = []
        self.handler: asyncio.Protocol | None = None

    def data_received(self, data: bytes) -> None:
        if self.handler is not None:
            self.handler.data_received(data)
        else:
            self.early.append(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.handler is not None:
            self.handler.connection_lost(exc)
        else:
            self.lost.append(exc)


class TLSAdmission(asyncio.Protocol):
    """A TLS connection counted against ``max_connections`` from its TCP accept, not from the end
    of its handshake (where asyncio's ``create_server(ssl=...)`` first calls the handler): a
    handshake holds a file descriptor as long as a request does, and a flood that never completes
    one would otherwise never be counted. Past the limit the connection is closed at once (no
    answer in words is possible before a handshake); a handshake that fails, or does not end
    within ``timeout`` seconds, gives its place back."""

    def __init__(self, limit: ConnectionLimit, handler: Callable[[], ProblemRequestHandler], tls: ssl.SSLContext,
                 timeout: float, admitting: set[asyncio.Task[None]]) -> None:
        self._limit, self._handler, self._tls, self._timeout = limit, handler, tls, timeout
        self._admitting = admitting

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        if not self._limit.enter():
            transport.abort()
            return
        transport.pause_reading()  # the ClientHello waits for start_tls, not for this protocol
        task = asyncio.get_running_loop().create_task(self._admit(transport))
        self._admitting.add(task)  # held until done: a task nobody references may be collected
        task.add_done_callback(self._admitting.discard)

    async def _admit(self, transport: asyncio.Transport) -> None:
        stand_in = _HandshakeStandIn()
        try:
            tls_transport = await asyncio.get_running_loop().start_tls(
                transport, stand_in, self._tls, server_side=True, ssl_handshake_timeout=self._timeout)
        except BaseException:
            transport.abort()
            self._limit.leave()
            return  # a failed or abandoned handshake: nothing to report (asyncio logs none either)
        assert tls_transport is not None
        handler = self._handler()
        handler.admitted()  # counted already: its connection_lost gives the place back
        tls_transport.set_protocol(handler)
        handler.connection_made(tls_transport)
        for data in stand_in.early:
            handler.data_received(data)
        if stand_in.lost:
            handler.connection_lost(stand_in.lost[0])
        else:
            stand_in.handler = handler


def _give_a_request_id() -> None:
    """An id for a request no middleware saw (set in the request's own task: its access line and
    its problem document carry it too)."""
    if logs.REQUEST_ID.get() is None:
        logs.REQUEST_ID.set(logs.new_id())


class ProblemRequestHandler(RequestHandler):
    """aiohttp's connection handler, answering the requests its parser refuses with a problem
    document (it would write ``text/plain`` quoting the offending line) and logging them by type.

    It also stops gracefully with the body still coming: aiohttp's own shutdown drops every byte
    that arrives after it begins, so an upload in flight could never finish. Here a connection
    busy with a request keeps reading it until the handler answers (with ``Connection: close``)
    or the grace ends; idle connections close at once."""

    __slots__ = ("_finishing", "_limit", "_counted")

    def __init__(self, *args: Any, limit: ConnectionLimit | None = None, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._finishing = False
        self._limit = limit
        self._counted = False

    def admitted(self) -> None:
        """Counted by ``TLSAdmission`` before its handshake: not to be counted again."""
        self._counted = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if self._limit is None or self._counted:
            return
        if not self._limit.enter():
            assert isinstance(transport, asyncio.WriteTransport)
            transport.write(_too_busy_answer())
            transport.close()  # flushes the answer, then closes; nothing of the request is read
            return
        self._counted = True

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._counted and self._limit is not None:
            self._counted = False
            self._limit.leave()
        super().connection_lost(exc)

    def close(self) -> None:
        if self._request_in_progress:  # its body may still be arriving: finish it, then close
            self._finishing = True
            return
        super().close()

    async def shutdown(self, timeout: float | None = 15.0) -> None:
        if self._request_in_progress:
            self._finishing = True
            self._handler_waiter = asyncio.get_running_loop().create_future()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._handler_waiter
            self._handler_waiter = None
            if self._request_in_progress:  # past the grace: aiohttp cancels it, briefly
                timeout = UNWIND_SECONDS
        await super().shutdown(timeout)

    async def finish_response(self, request: Any, resp: web.StreamResponse, start_time: float | None) -> Any:
        if isinstance(resp, web.HTTPException) and resp.status >= 400:
            # Raised before the middlewares (aiohttp's 417 for an unknown Expect, as text/plain
            # quoting the header): a problem document like every other answer, with a request id.
            _give_a_request_id()
            resp = before_middlewares(request, resp.status)
        if self._finishing:
            resp.force_close()  # the last response on this connection
        return await super().finish_response(request, resp, start_time)

    def handle_error(self, request: Any, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        _give_a_request_id()  # refused by the parser: no middleware gave it one
        http_log.info("refused", exc_info=(type(exc), exc, None) if exc else None)
        if request.writer.output_size > 0:
            raise ConnectionError("the response had begun; the connection is closed")
        error = errors.HeadersTooLarge() if isinstance(exc, LineTooLong) else for_status(status)
        if isinstance(exc, Exception) and "Too many headers" in str(getattr(exc, "message", "")):
            error = errors.HeadersTooLarge()
        lang = i18n.negotiate(_safe_header(request, "Accept-Language"))
        response = web.Response(status=error.status, body=document(error, lang),
                                content_type=CONTENT_TYPE, charset="utf-8",
                                headers={**headers_for(error, lang), logs.HEADER: logs.REQUEST_ID.get() or ""})
        response.force_close()
        return response

    def log_exception(self, *args: Any, **kw: Any) -> None:
        http_log.error(*args, **kw)


def _safe_header(request: Any, name: str) -> str | None:
    try:
        return request.headers.get(name)
    except Exception:  # the error request may carry no headers at all
        return None


def handler_options(settings: Settings) -> dict[str, Any]:
    """Connection-handler options, the same under ``relay serve`` and a test server."""
    return {"keepalive_timeout": settings.header_timeout_seconds, "logger": http_log,
            "access_log_class": RouteAccessLogger, "lingering_time": 2.0}


# -- serving --------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def running(app: web.Application, settings: Settings, *, host: str | None = None,
                  port: int | None = None) -> AsyncIterator[tuple[str, int]]:
    """Serve ``app`` on ``host:port`` until the block ends; yields the bound address."""
    tls = tls_context(settings)  # a certificate that cannot be used stops the start before anything opens
    # On stopping, aiohttp closes idle connections, waits up to the grace for handlers in flight,
    # then cancels those still running (ProblemRequestHandler lets their bodies finish arriving).
    runner = web.AppRunner(app, access_log_class=RouteAccessLogger, handle_signals=False,
                           shutdown_timeout=settings.shutdown_grace_seconds)
    await runner.setup()
    assert runner.server is not None
    server = runner.server
    options = handler_options(settings)
    loop = asyncio.get_running_loop()
    limit = ConnectionLimit(connection_cap(settings), app.get(METRICS))

    def handler() -> ProblemRequestHandler:
        return ProblemRequestHandler(server, loop=loop, access_log=logging.getLogger("aiohttp.access"),
                                     limit=limit, **options)

    admitting: set[asyncio.Task[None]] = set()
    protocol: Callable[[], asyncio.BaseProtocol] = handler
    if tls is not None:  # TLS is set up per connection (TLSAdmission), so that handshakes count
        protocol = functools.partial(TLSAdmission, limit, handler, tls, settings.header_timeout_seconds, admitting)
    try:
        listener = await loop.create_server(
            protocol, host if host is not None else settings.host, port if port is not None else settings.port,
            reuse_address=True)
    except BaseException:
        await runner.cleanup()  # the store and the workers close: nothing keeps the process alive
        raise
    try:
        sockname = listener.sockets[0].getsockname()
        yield sockname[0], sockname[1]
    finally:
        listener.close()  # new connections are refused from here on
        for task in list(admitting):  # handshakes under way end: they have no request to finish
            task.cancel()
        await listener.wait_closed()
        await runner.cleanup()


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The server's TLS context from its certificate chain and key (PEM), TLS 1.2 at least, with
    Python's default (modern) ciphers; None when the relay serves plain http (loopback, proxy)."""
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(settings.tls_cert, settings.tls_key)
    return context


async def serve(app: web.Application, settings: Settings) -> None:
    """``relay serve``: run until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with running(app, settings) as (host, port):
        scheme = "https" if settings.tls else "http"
        # A log line like the others (stderr carries the log: one JSON object a line).
        log.info("Running on %s://%s:%s", scheme, host, port)
        await stop.wait()
        log.info("stopping: no new connections; requests in flight have %.0f s to finish",
                 settings.shutdown_grace_seconds)
