"""A flood of connections cannot take the relay's file descriptors: past ``max_connections``
open at once, a new connection is answered ``503 too-busy`` and closed (relay.server.serving)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import ssl
import subprocess
import sys
from pathlib import Path

import aiohttp

from relay.server.app import create_app
from relay.server.configuration import check
from relay.server.serving import FILES_KEPT_FREE, running
from relay.server.settings import Settings
from tests.test_operations import make_certificate


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


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_over_tls_a_connection_still_in_its_handshake_counts_and_a_failed_one_is_let_go(tmp_path: Path) -> None:
    """A TLS handshake holds a file descriptor as long as a request does (asyncio calls the
    handler only once it has ended, up to a minute later): it counts against max_connections
    from its first byte, and one that fails or never completes leaves the count as it found it."""
    cert, key = make_certificate(tmp_path)
    settings = Settings(data_dir=tmp_path / "relay-data", max_connections=8, tls_cert=cert, tls_key=key)
    app = create_app(settings, bootstrap_printer=lambda _: None)
    trusted = ssl.create_default_context(cafile=str(cert))
    async with running(app, settings, host="127.0.0.1", port=0) as (host, port):
        # Plain http to the TLS port: each handshake fails; none may stay counted.
        for _ in range(12):
            with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
                assert not (await _answer(host, port)).startswith(b"HTTP/1.1 503")
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=trusted, force_close=True)) as http:
            for _ in range(10):  # more than max_connections, one after the other: each is served
                async with http.get(f"https://localhost:{port}/healthz") as response:
                    assert response.status == 200
            # A flood of connections that never begin their handshake: the relay holds no more
            # than max_connections of them open.
            before = _fds()
            silent = [await asyncio.open_connection(host, port) for _ in range(40)]
            try:
                await asyncio.sleep(0.3)
                held_by_the_relay = _fds() - before - len(silent)
                assert held_by_the_relay <= settings.max_connections, held_by_the_relay
            finally:
                for _, writer in silent:
                    writer.close()
            await asyncio.sleep(0.3)
            async with http.get(f"https://localhost:{port}/metrics") as response:
                assert response.status == 200
                metrics = await response.text()
            assert "relay_open_connections 1.0" in metrics, metrics  # this scrape, nothing left over


def test_unset_max_connections_fits_a_low_open_file_limit_instead_of_refusing_to_start(tmp_path: Path) -> None:
    # A host whose hard limit is 1024 open files: the default (2048) cannot fit, so the relay takes
    # what fits and starts; a max_connections set by hand that cannot fit is refused in words.
    data_dir = tmp_path / "relay-data"
    data_dir.mkdir(mode=0o700)
    script = f"""
import resource, sys
resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))
from relay.server.configuration import check
from relay.server.serving import connection_cap
from relay.server.settings import Settings
print(connection_cap(Settings(data_dir={str(data_dir)!r})))
print(check(None, {{"data_dir": {str(data_dir)!r}}}, "en").problems)
print(len(check(None, {{"data_dir": {str(data_dir)!r}, "max_connections": 2048}}, "en").problems))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:3] == [str(1024 - FILES_KEPT_FREE), "[]", "1"]
