"""A flood of connections cannot take the relay's file descriptors: past ``max_connections``
open at once, a new connection is answered ``503 too-busy`` and closed (relay.server.serving)."""

from __future__ import annotations

import asyncio
import json
import resource
from pathlib import Path

import aiohttp

from relay.server.app import create_app
from relay.server.configuration import check
from relay.server.serving import FILES_KEPT_FREE, running
from relay.server.settings import Settings


async def _answer(host: str, port: int) -> bytes:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n\r\n")
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return answer


async def test_past_max_connections_a_new_connection_is_told_too_busy_and_closed(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "relay-data", max_connections=8)
    app = create_app(settings, bootstrap_printer=lambda _: None)
    async with running(app, settings, host="127.0.0.1", port=0) as (host, port):
        idle = [await asyncio.open_connection(host, port) for _ in range(8)]
        await asyncio.sleep(0.1)
        refused = await _answer(host, port)
        head, _, body = refused.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 503 "), head
        assert b"Retry-After: 5" in head and b"Connection: close" in head
        problem = json.loads(body)
        assert problem["type"] == "urn:mediation-relay:problem:too-busy" and problem["status"] == 503
        # The connections already open are served as before.
        reader, writer = idle[0]
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: relay\r\n\r\n")
        assert (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)).startswith(b"HTTP/1.1 200 ")
        # Once some close, new ones are served again, and the refusals are counted.
        for _, w in idle[:3]:
            w.close()
        await asyncio.sleep(0.1)
        assert (await _answer(host, port)).startswith(b"HTTP/1.1 200 ")
        async with aiohttp.ClientSession() as http, http.get(f"http://{host}:{port}/metrics") as response:
            metrics = await response.text()
        assert "relay_connections_refused_total 1.0" in metrics
        assert "relay_open_connections 6.0" in metrics  # five idle left, and this scrape
        for _, w in idle[3:]:
            w.close()


def test_config_check_says_when_max_connections_does_not_fit_the_open_file_limit(tmp_path: Path) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    data_dir = tmp_path / "relay-data"
    data_dir.mkdir(mode=0o700)
    fits = check(None, {"data_dir": data_dir, "max_connections": 100}, "en")
    assert fits.problems == []
    if hard == resource.RLIM_INFINITY:
        return  # nothing can be too many here (not Linux's way for open files)
    too_many = check(None, {"data_dir": data_dir, "max_connections": hard}, "en")
    assert too_many.problems == [
        f"max_connections = {hard} needs {hard + FILES_KEPT_FREE} open files, and this process may open at most "
        f"{hard}: lower max_connections to {hard - FILES_KEPT_FREE} or less, or raise the limit (ulimit -n, "
        "or LimitNOFILE= in the systemd unit)."]
    assert "max_connections" in check(None, {"data_dir": data_dir, "max_connections": hard}, "fr").problems[0]
