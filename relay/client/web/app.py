"""The local web application: one factory for the desk, the kiosk and the app, and ``serve()``.

Each request passes the guard (host, binding, CSRF), the idle check (a key unlocked longer
than the idle time without a person's action is wiped before anything is answered), then a
view of the interface's kind. Expected failures (the relay refused, something did not verify,
the relay cannot be reached) become a page in the reader's language, never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import web

from media import MediaError
from relay.client.profile import Profile
from relay.client.sdk import InsecureTransport, OverLimit, ProblemError, VerificationError
from relay.client.web import common, desk, participant, render
from relay.client.web.config import WebConfig
from relay.client.web.guard import (
    COOKIE,
    HEADERS,
    START_PATH,
    Binding,
    Refused,
    allowed_host,
    csrf_token_of,
    same_origin,
)
from relay.client.web.state import CONFIG, STATE, State
from relay.i18n.catalogs import LANGUAGES

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
PASSIVE = "passive"  # a route that polls: it does not count as the person's activity


@web.middleware
async def guard(request: web.Request, handler: common.Handler) -> web.StreamResponse:
    state = request.app[STATE]
    config = request.app[CONFIG]
    chosen = request.cookies.get(render.LANG_COOKIE, config.lang)
    render.set_lang(chosen if chosen in LANGUAGES else config.lang)
    try:
        if not allowed_host(request.host, state.binding, state.port):
            raise Refused(400, "host")
        if not same_origin(request.headers.get("Sec-Fetch-Site")):
            raise Refused(403, "cross-site")
        if request.path.startswith(START_PATH) or request.path.startswith("/static/"):
            return await handler(request)
        if not state.binding.bound(request.cookies.get(COOKIE)):
            raise Refused(403, "unbound")
        if request.method not in ("GET", "HEAD") and not state.binding.csrf_ok(
                await csrf_token_of(request, state.binding)):
            raise Refused(403, "csrf")
        await state.check_idle()
        if state.person is not None:
            # The relay answers (problem details) in the language this page is read in.
            state.person.client.lang = render.lang()
            if not getattr(_route_handler(request), PASSIVE, False):
                state.person.touch()
        return await handler(request)
    except Refused as refused:
        return common.refusal(request, refused)
    except web.HTTPNotFound:
        return common.not_found(request)
    except (ProblemError, VerificationError, OverLimit, InsecureTransport, MediaError, aiohttp.ClientError,
            asyncio.TimeoutError) as failure:
        return common.failure_page(request, failure)


def _route_handler(request: web.Request) -> object:
    return getattr(request.match_info, "handler", None)


async def _headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in HEADERS.items():
        response.headers[name] = value
    response.headers.pop("Server", None)


MEMORY = Path("/dev/shm")
SCRATCH_PREFIX = "relay-ui-"


class NoMemoryScratch(Exception):
    """This machine has no memory-backed directory: decrypted letters and videos would touch a disk."""


def memory_scratch_parent(memory: Path = MEMORY) -> Path:
    """Where decrypted media may touch a file: a tmpfs, and nowhere else (fail closed)."""
    if memory.is_dir() and os.access(memory, os.W_OK | os.X_OK):
        return memory
    raise NoMemoryScratch()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_scratch(parent: Path) -> None:
    """Remove what an interface that was killed (no clean stop) left in memory: its scratch is
    named for its process, and that process is gone. Only this user's directories are touched."""
    with contextlib.suppress(OSError):
        for entry in parent.iterdir():
            name = entry.name
            if not name.startswith(SCRATCH_PREFIX):
                continue
            pid = name[len(SCRATCH_PREFIX):].split("-", 1)[0]
            with contextlib.suppress(OSError):
                if (pid.isdigit() and not _alive(int(pid)) and entry.is_dir() and not entry.is_symlink()
                        and entry.stat().st_uid == os.getuid()):
                    shutil.rmtree(entry, ignore_errors=True)


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    state = app[STATE]
    # Plaintext that must touch a file (ffmpeg sanitizing a video, the SDK's scratch files) goes
    # to a private directory in memory (tmpfs), and nowhere else.
    parent = memory_scratch_parent()
    sweep_scratch(parent)
    scratch = Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-", dir=parent))
    previous, tempfile.tempdir = tempfile.tempdir, str(scratch)
    state.scratch = scratch
    watcher = asyncio.create_task(state.watch_idle(), name="idle-watch")
    try:
        yield
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        await state.lock()
        tempfile.tempdir = previous
        shutil.rmtree(scratch, ignore_errors=True)


def create_web_app(config: WebConfig, *, port: int) -> web.Application:
    """The interface for ``config.kind``; ``port`` is the one it is reached on (for the Host check)."""
    profile = Profile.load(config.profile_dir)
    app = web.Application(middlewares=[guard], client_max_size=4 * 1024 * 1024)
    app[CONFIG] = config
    app[STATE] = State(config=config, profile=profile, binding=Binding(), port=port)
    render.setup(app)
    app.on_response_prepare.append(_headers)
    app.cleanup_ctx.append(_lifecycle)
    common.add_routes(app)
    if config.kind == "desk":
        desk.add_routes(app)
    else:
        participant.add_routes(app, config.kind)
    app.router.add_static("/static/", STATIC, append_version=False, show_index=False)
    return app


def start_link(app: web.Application) -> str:
    state = app[STATE]
    assert state.binding.start_token is not None
    return f"http://{state.binding.host_name}:{state.port}{START_PATH}{state.binding.start_token}"


@dataclass
class Running:
    """An interface listening on loopback."""

    runner: web.AppRunner
    app: web.Application
    port: int

    @property
    def link(self) -> str:
        return start_link(self.app)

    @property
    def url(self) -> str:
        return f"http://{self.app[STATE].binding.host_name}:{self.port}"

    async def stop(self) -> None:
        await self.runner.cleanup()


async def start(config: WebConfig, *, handle_signals: bool = False) -> Running:
    """Listen on 127.0.0.1 (never another address) at ``config.port`` (0: any free port)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", config.port))
    port = sock.getsockname()[1]
    app = create_web_app(config, port=port)
    runner = web.AppRunner(app, access_log=None, handle_signals=handle_signals)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    return Running(runner, app, port)


async def serve(config: WebConfig, announce: Callable[[str], None]) -> None:
    """Serve until interrupted; ``announce`` gets the one-time link (for the terminal only)."""
    running = await start(config, handle_signals=True)
    announce(running.link)
    try:
        await asyncio.Event().wait()
    finally:
        await running.stop()


__all__ = ["NoMemoryScratch", "Running", "create_web_app", "memory_scratch_parent", "serve", "start", "start_link"]
