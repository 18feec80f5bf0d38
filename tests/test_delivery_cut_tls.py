"""Over the relay's own TLS (no sendfile there: the body is copied through the SSL transport),
a delivery being streamed is cut off as over plain http (services.deliveries, streaming.py), and
a connection lost mid-file, cut by the relay or by the recipient, is no ERROR with a traceback
(asyncio 3.11's loop.sendfile over TLS fails in its cleanup: handlers.common.BlobResponse)."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import socket
import ssl
import struct
from pathlib import Path

import aiohttp
import pytest

from relay.client.kdf import TEST_KDF
from relay.client.scenario import build_world
from relay.server.app import create_app
from relay.server.context import CONTEXT
from relay.server.serving import running
from relay.server.settings import Settings
from tests.conftest import MovableClock, close
from tests.test_delivery_cut import begin_download, read_rest
from tests.test_operations import make_certificate

SIZE = 24 * 1024 * 1024


async def _begin(host: str, port: int, trusted: ssl.SSLContext, path: str,
                 headers: dict[str, str]) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, int]:
    return await begin_download(host, port, path, headers, tls=trusted)


@pytest.mark.parametrize("change", ["nothing changes", "the sender withdraws consent", "the recipient hangs up"])
async def test_over_tls_a_delivery_being_streamed_stops_when_deliveries_stop(
        tmp_path: Path, change: str, caplog: pytest.LogCaptureFixture) -> None:
    cert, key = make_certificate(tmp_path)
    clock, codes = MovableClock(), list[str]()
    settings = Settings(data_dir=tmp_path / "relay-data", max_letter_bytes=2 * SIZE, delivery_recheck_seconds=0.2,
                        tls_cert=cert, tls_key=key)
    app = create_app(settings, clock=clock, bootstrap_printer=codes.append)
    trusted = ssl.create_default_context(cafile=str(cert))
    async with running(app, settings, host="127.0.0.1", port=0) as (host, port):
        url = f"https://localhost:{port}"
        streaming = app[CONTEXT].deliveries
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=trusted)) as http:
            world = await build_world(url, codes[0], kdf=TEST_KDF, http=http)
            coordinator, victim = await world.session(world.coordinator, http=http), await world.session(world.victim, http=http)
            mediator = await world.session(world.mediator, http=http)
            offender = await world.session(world.offender, on_terminal=True, http=http)
            try:
                sent = await victim.send(case_id=world.case_id, recipient=world.offender.person_id,
                                         src=io.BytesIO(os.urandom(SIZE)))
                await mediator.release(sent["id"])
                reader, writer, length = await _begin(host, port, trusted, f"/v1/items/{sent['id']}/delivery/content",
                                                      offender._headers())
                assert len(streaming) == 1
                if change == "the sender withdraws consent":
                    await coordinator.call("POST", f"/v1/cases/{world.case_id}/participants/{world.victim.person_id}/consent",
                                           json_body={"consent": "withdrawn"})
                    assert len(streaming) == 0
                if change == "the recipient hangs up":  # on its own: a reset, mid-file
                    raw = writer.get_extra_info("socket")
                    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    writer.transport.abort()
                    await asyncio.sleep(0.5)
                else:
                    received = 64 * 1024 + await read_rest(reader, writer)
                    if change == "nothing changes":
                        assert received == length
                    else:
                        assert received < 4 * 1024 * 1024, (received, length)
                await asyncio.sleep(0.3)
                assert len(streaming) == 0
            finally:
                await close(coordinator, victim, mediator, offender)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
