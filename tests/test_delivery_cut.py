"""A delivery already being streamed stops when deliveries stop (services.deliveries).

Screening at fetch decides when a download starts; a video's can last minutes. A withdrawal of
consent, a paused case, the recipient's sign-out, a revoked terminal or an expired session
takes effect at once: the bytes still to come must not follow it. Each test starts a download
on a raw socket with a small receive buffer and reads only its beginning (so the relay has
most of the file still to send), makes the change, and reads on: a cut-off answer is shorter
than its Content-Length. With nothing changed, the same download arrives whole.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from relay.client.kdf import TEST_KDF
from relay.client.scenario import World, build_world
from relay.server.app import create_app
from relay.server.context import CONTEXT
from relay.server.settings import Settings
from tests.conftest import MovableClock, Relay, close, everyone

SIZE = 24 * 1024 * 1024  # far more than the socket buffers between the relay and the reader


@pytest.fixture
async def relay(tmp_path: Path, aiohttp_server) -> AsyncIterator[Relay]:  # type: ignore[no-untyped-def]
    data_dir = tmp_path / "relay-data"
    clock = MovableClock()
    codes: list[str] = []
    settings = Settings(data_dir=data_dir, max_letter_bytes=2 * SIZE, delivery_recheck_seconds=0.2)
    server = await aiohttp_server(create_app(settings, clock=clock, bootstrap_printer=codes.append))
    yield Relay(server, data_dir, clock, codes)


@pytest.fixture
async def world(relay: Relay) -> World:
    return await build_world(relay.url, relay.codes[0], kdf=TEST_KDF)


async def begin_download(host: str, port: int, path: str, headers: dict[str, str], *,
                         tls: ssl.SSLContext | None = None) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, int]:
    """GET ``path`` through a small receive buffer and read its head and the first 64 KiB; the
    length it announced."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)  # no autotuning: the relay must wait
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (host, port))
    reader, writer = await asyncio.open_connection(sock=sock, limit=32 * 1024, ssl=tls,
                                                   server_hostname="localhost" if tls else None)
    lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    writer.write(f"GET {path} HTTP/1.1\r\nHost: relay\r\n{lines}Connection: close\r\n\r\n".encode())
    head = (await reader.readuntil(b"\r\n\r\n")).decode()
    assert head.startswith("HTTP/1.1 200 "), head
    length = int(next(line.split(":", 1)[1] for line in head.split("\r\n") if line.lower().startswith("content-length:")))
    await reader.readexactly(64 * 1024)
    await asyncio.sleep(0.2)  # the relay fills the buffers between us and waits
    return reader, writer, length


async def read_rest(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> int:
    """Read to the end; how many bytes of the body came after the first 64 KiB."""
    got = 0
    try:
        while chunk := await asyncio.wait_for(reader.read(1024 * 1024), 20):
            got += len(chunk)
    except (ConnectionResetError, ssl.SSLError):
        pass  # the relay reset the connection: what was buffered on our side may be dropped
    writer.close()
    return got


async def _begin(relay: Relay, path: str, headers: dict[str, str]) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, int]:
    return await begin_download(relay.server.host, relay.server.port, path, headers)


CHANGES = ["nothing changes", "the sender withdraws consent", "the mediator pauses the case",
           "the recipient signs out", "the terminal is revoked", "the recipient's session expires"]


@pytest.mark.parametrize("change", CHANGES)
async def test_a_delivery_being_streamed_stops_when_deliveries_stop(relay: Relay, world: World, change: str,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    streaming = relay.server.app[CONTEXT].deliveries
    coordinator, victim, mediator, offender = await everyone(world)
    try:
        sent = await victim.send(case_id=world.case_id, recipient=world.offender.person_id,
                                 src=io.BytesIO(os.urandom(SIZE)))
        await mediator.release(sent["id"])
        headers = offender._headers()
        reader, writer, length = await _begin(relay, f"/v1/items/{sent['id']}/delivery/content", headers)
        assert length > SIZE
        if change == "the sender withdraws consent":
            await coordinator.call("POST", f"/v1/cases/{world.case_id}/participants/{world.victim.person_id}/consent",
                                   json_body={"consent": "withdrawn"})
        elif change == "the mediator pauses the case":
            await mediator.call("POST", f"/v1/cases/{world.case_id}/pause",
                                json_body={"paused": True, "reason": "safety-assessment"})
        elif change == "the recipient signs out":
            await offender.logout()
        elif change == "the terminal is revoked":
            await coordinator.call("POST", f"/v1/devices/{world.terminal_token.split('.')[0]}/revoke")
        elif change == "the recipient's session expires":
            relay.clock.advance(hours=24)  # no request: the periodic recheck finds it
            await asyncio.sleep(1)
        if change != "nothing changes":
            assert len(streaming) == 0  # cut off before the change was acknowledged
        received = 64 * 1024 + await read_rest(reader, writer)
        if change == "nothing changes":
            assert received == length
            assert len(streaming) == 0  # let go when it ended
        else:
            # Cut off: no more than the buffers held when the change was acknowledged.
            assert received < 4 * 1024 * 1024, (received, length)
        # Cutting a connection off is the relay's own doing: nothing to warn an operator about.
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    finally:
        offender.session_token = None if change in ("the recipient signs out", "the terminal is revoked",
                                                    "the recipient's session expires") else offender.session_token
        await close(coordinator, victim, mediator, offender)


async def test_a_change_accepted_while_a_delivery_was_being_screened_stops_it_too(
        tmp_path: Path, aiohttp_server, monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
        caplog: pytest.LogCaptureFixture) -> None:
    """The recheck after a change sees only the deliveries already streaming: one whose screening
    read the case before the change, and which begins streaming after the recheck, must be
    checked again before its first byte (else it went out whole, past the acknowledgement, until
    the periodic recheck). The screening is held just after its (real) reads, as a slow reader
    thread would; the periodic recheck is too far off to help."""
    from relay.server.handlers import items as item_handlers

    clock, codes = MovableClock(), list[str]()
    settings = Settings(data_dir=tmp_path / "relay-data", max_letter_bytes=2 * SIZE, delivery_recheck_seconds=60)
    server = await aiohttp_server(create_app(settings, clock=clock, bootstrap_printer=codes.append))
    relay = Relay(server, tmp_path / "relay-data", clock, codes)
    world = await build_world(relay.url, codes[0], kdf=TEST_KDF)
    coordinator, victim, mediator, offender = await everyone(world)
    screened, go_on = asyncio.Event(), asyncio.Event()
    real = item_handlers.items.delivery_path

    async def slow_screening(*args: object) -> Path:
        path = await real(*args)  # type: ignore[arg-type]
        screened.set()
        await go_on.wait()
        return path

    try:
        sent = await victim.send(case_id=world.case_id, recipient=world.offender.person_id,
                                 src=io.BytesIO(os.urandom(SIZE)))
        await mediator.release(sent["id"])
        monkeypatch.setattr(item_handlers.items, "delivery_path", slow_screening)
        reader, writer = await asyncio.open_connection(relay.server.host, relay.server.port)
        lines = "".join(f"{name}: {value}\r\n" for name, value in offender._headers().items())
        writer.write(f"GET /v1/items/{sent['id']}/delivery/content HTTP/1.1\r\nHost: relay\r\n{lines}"
                     "Connection: close\r\n\r\n".encode())
        await asyncio.wait_for(screened.wait(), 10)  # allowed: the consent still stands
        await coordinator.call("POST", f"/v1/cases/{world.case_id}/participants/{world.victim.person_id}/consent",
                               json_body={"consent": "withdrawn"})  # acknowledged
        go_on.set()
        received = 0
        try:
            while chunk := await asyncio.wait_for(reader.read(1024 * 1024), 20):
                received += len(chunk)
        except ConnectionResetError:
            pass
        writer.close()
        # Nothing of it, not even its head: it was stopped before its first byte.
        assert received == 0, received
    finally:
        go_on.set()
        monkeypatch.undo()
        await close(coordinator, victim, mediator, offender)
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
