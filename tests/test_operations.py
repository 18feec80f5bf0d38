"""Running the relay: stopping on SIGTERM (requests in flight finish within the grace, cut-off
uploads resume, background workers stop between steps) and serving TLS itself. Real ``relay
serve`` processes on loopback, real files, a certificate made with the system's openssl."""

from __future__ import annotations

import asyncio
import contextlib
import io
import shutil
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from relay import envelope
from relay.client.demo import local_relay
from relay.client.kdf import TEST_KDF
from relay.client.scenario import World, build_world
from relay.server.services import retention, scrub
from tests.conftest import Relay
from tests.test_retention import DAY, ctx_of, one_of_each, open_copy
from tests.test_uploads import tus

OCTETS = "application/offset+octet-stream"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def refused(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except ConnectionRefusedError:
        return True
    writer.close()
    return False


# -- SIGTERM --------------------------------------------------------------------------------------


async def test_sigterm_finishes_requests_in_flight_refuses_new_ones_and_cut_uploads_resume(tmp_path: Path) -> None:
    data_dir, grace = tmp_path / "data", 2.0
    whole = envelope.encrypt_bytes(envelope.new_content_key(), b"x" * 300_000)
    async with local_relay(data_dir, serve_args=("--shutdown-grace", str(grace))) as running:
        assert running.code
        port = int(running.url.rsplit(":", 1)[1])
        world = await build_world(running.url, running.code, kdf=TEST_KDF)
        victim = await world.session(world.victim)
        uploads = []
        for _ in range(2):
            _, headers, _ = await tus(victim, "POST", "/v1/uploads", headers={"Upload-Length": str(len(whole))})
            uploads.append(headers["Location"])
        finishing, cut_off = uploads
        first = 100_000
        await tus(victim, "PATCH", cut_off, data=whole[:first], headers={"Upload-Offset": "0", "Content-Type": OCTETS})

        started = [asyncio.Event(), asyncio.Event()]
        carry_on = asyncio.Event()

        async def slow() -> AsyncIterator[bytes]:  # finishes within the grace
            yield whole[:150_000]
            started[0].set()
            await carry_on.wait()
            yield whole[150_000:]

        async def stalls() -> AsyncIterator[bytes]:  # never finishes: cut off after the grace
            yield whole[first:first + 50_000]
            started[1].set()
            await asyncio.sleep(3600)

        in_flight = asyncio.create_task(tus(victim, "PATCH", finishing, data=slow(), headers={
            "Upload-Offset": "0", "Content-Type": OCTETS}))
        stalled = asyncio.create_task(tus(victim, "PATCH", cut_off, data=stalls(), headers={
            "Upload-Offset": str(first), "Content-Type": OCTETS}))
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in started)), 10)
        await asyncio.sleep(0.2)
        began = time.monotonic()
        running.process.send_signal(signal.SIGTERM)

        # New connections are refused at once, while the requests in flight go on.
        for _ in range(100):
            if await refused(port):
                break
            await asyncio.sleep(0.02)
        assert await refused(port)
        assert running.process.returncode is None

        carry_on.set()
        status, headers, _ = await asyncio.wait_for(in_flight, 10)
        assert (status, headers["Upload-Offset"]) == (204, str(len(whole)))  # finished and acknowledged

        # The stalled one is cut off after the grace (aiohttp waits it once more to unwind).
        assert await asyncio.wait_for(running.process.wait(), 4 * grace + 5) == 0
        assert time.monotonic() - began >= grace - 0.2
        with contextlib.suppress(aiohttp.ClientError):
            await asyncio.wait_for(stalled, 5)
        victim.session_token = None
        await victim.close()

    async with local_relay(data_dir, port):
        victim = await world.session(world.victim)
        try:
            status, headers, _ = await tus(victim, "HEAD", cut_off)
            assert (status, headers["Upload-Offset"]) == (200, str(first))  # the acknowledged part, no more
            status, headers, _ = await tus(victim, "PATCH", cut_off, data=whole[first:], headers={
                "Upload-Offset": str(first), "Content-Type": OCTETS})
            assert (status, headers["Upload-Offset"]) == (204, str(len(whole)))
            assert (await tus(victim, "HEAD", finishing))[1]["Upload-Offset"] == str(len(whole))
        finally:
            await victim.close()


async def test_a_purge_stops_between_two_batches_and_the_next_run_carries_on(relay: Relay, world: World,
                                                                              tmp_path: Path) -> None:
    await one_of_each(world)
    await one_of_each(world)  # twelve items, in batches of two
    assert await ctx_of(relay).db.checkpoint()
    copy = tmp_path / "copy"
    shutil.copytree(relay.data_dir, copy)
    ctx = await open_copy(copy, relay.clock.now() + 120 * DAY)
    try:
        stop = asyncio.Event()

        def step(name: str) -> None:
            if name == "finished":  # one batch committed whole: now the relay is told to stop
                stop.set()

        report = await retention.purge(ctx, step=step, stop=stop)
        assert report.items == 2
        conn = sqlite3.connect(copy / "relay.sqlite3")
        left = conn.execute("SELECT COUNT(*) FROM items").fetchone()[0]
        unfinished = conn.execute("SELECT finished_at FROM retention_runs ORDER BY id DESC LIMIT 1").fetchone()[0]
        conn.close()
        assert left == 10 and unfinished is None  # the run says it did not finish

        assert (await retention.purge(ctx)).items == 10
        assert (await scrub.scrub(ctx, stop=stop)).items == 0  # a set stop: the scrub ends before an item
    finally:
        await ctx.db.close()


async def test_the_workers_end_at_once_when_the_relay_stops_while_they_rest(relay: Relay) -> None:
    ctx, stop = ctx_of(relay), asyncio.Event()
    workers = [asyncio.create_task(retention.worker(ctx, stop)), asyncio.create_task(scrub.worker(ctx, stop))]
    await asyncio.sleep(0.1)
    stop.set()
    done, _ = await asyncio.wait(workers, timeout=2)
    assert len(done) == 2 and all(t.exception() is None for t in done)


# -- TLS --------------------------------------------------------------------------------------------


def make_certificate(where: Path, name: str = "relay") -> tuple[Path, Path]:
    cert, key = where / f"{name}.crt", where / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def serve_command(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "relay", "--lang", "en", "serve", *args], capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)


async def test_the_relay_serves_https_itself_and_a_whole_case_is_set_up_over_it(tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path)
    data_dir = tmp_path / "data"
    async with local_relay(data_dir, serve_args=("--tls-cert", str(cert), "--tls-key", str(key))) as running:
        assert running.code
        url = running.url.replace("http://", "https://")
        trusted = ssl.create_default_context(cafile=str(cert))
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=trusted)) as http:
            async with http.get(url + "/healthz") as response:
                assert response.status == 200
            world = await build_world(url, running.code, kdf=TEST_KDF, http=http)
            victim = await world.session(world.victim, http=http)
            try:
                sent = await victim.send(case_id=world.case_id, recipient=world.offender.person_id,
                                         src=io.BytesIO(b"over TLS"))
                assert sent["state"] == "pending_review"
            finally:
                await victim.close()
        # Plain http to the same port gets no answer, and an untrusted certificate is refused.
        async with aiohttp.ClientSession() as http:
            with pytest.raises(aiohttp.ClientError):
                async with http.get(running.url + "/healthz"):
                    pass
            with pytest.raises(aiohttp.ClientConnectorCertificateError):
                async with http.get(url + "/healthz"):
                    pass


def test_off_loopback_without_tls_is_refused_unless_behind_a_proxy(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    done = serve_command("--data-dir", str(data_dir), "--host", "0.0.0.0", "--port", str(free_port()))
    assert done.returncode == 2
    assert "not a loopback address" in done.stderr and "--behind-proxy" in done.stderr
    assert not data_dir.exists()  # refused before anything was created
    french = subprocess.run([sys.executable, "-m", "relay", "--lang", "fr", "serve", "--data-dir", str(data_dir),
                             "--host", "192.0.2.1"], capture_output=True, text=True, timeout=60)
    assert french.returncode == 2 and "boucle locale" in french.stderr

    cert, key = make_certificate(tmp_path)
    only_cert = serve_command("--data-dir", str(data_dir), "--tls-cert", str(cert))
    assert only_cert.returncode == 2 and "go together" in only_cert.stderr
    other_cert, _ = make_certificate(tmp_path, "other")
    mismatched = serve_command("--data-dir", str(data_dir), "--port", str(free_port()), "--tls-cert", str(other_cert),
                               "--tls-key", str(key))
    assert mismatched.returncode == 2 and "cannot be used" in mismatched.stderr


async def test_behind_a_proxy_the_relay_serves_plain_http_off_loopback(tmp_path: Path) -> None:
    async with local_relay(tmp_path / "data", serve_args=("--host", "0.0.0.0", "--behind-proxy")) as running:
        async with aiohttp.ClientSession() as http, http.get(running.url + "/healthz") as response:
            assert response.status == 200
