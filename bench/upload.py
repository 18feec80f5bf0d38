"""Uploading ciphertext through the relay's resumable path (one tus PATCH: owner check, streamed to
the upload file, hashed with BLAKE3-256 as it arrives, fsynced, offset recorded) against its
peers, alternately in one run, with the relay server's memory growth and the hash's own speed.

    .venv/bin/python bench/upload.py [--rounds 5] [--mib 1024] [--quick]

The peers, each sent the same bytes by the same client (one reused 1 MiB buffer, so the client
costs the same on every side):

* a bare aiohttp handler streaming the body to a new file and fsyncing it before it answers (like
  with like: the relay fsyncs before it acknowledges an offset). Goal: at least 0.9;
* the same handler without the fsync, leaving the bytes in the page cache. Goal: at least 0.75;
* the reference Node tus server, ``@tus/server`` with ``@tus/file-store`` from npm, which neither
  hashes nor fsyncs. Goal: at least 1.3. Install it once with
  ``npm ci --prefix bench/tus-node`` (node 20); without it the peer is skipped, and said so.

Each side writes a new file every round (old ones removed between rounds, and every dirty page
written out before each timed upload, outside the timing); the sides take turns going first.
Goal for memory: the relay server's peak RSS grows by less than 64 MiB during 1 GiB uploads.
``--quick`` (CI: tests/test_benchmarks_quick.py) sends 16 MiB once per side: it checks the
benchmark runs, not the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import blake3_mib_s, child, cores, free_port, rss_mib  # noqa: E402

from relay.client.demo import local_relay  # noqa: E402
from relay.client.kdf import TEST_KDF  # noqa: E402
from relay.client.scenario import build_world  # noqa: E402

BARE = """
import itertools, os, sys
from aiohttp import web

rounds = itertools.count()

async def put(request):
    with open(os.path.join(sys.argv[2], f"bare-{next(rounds)}.bin"), "wb") as out:
        async for chunk in request.content.iter_chunked(256 * 1024):
            out.write(chunk)
        if request.query.get("fsync") == "1":
            out.flush()
            os.fsync(out.fileno())
    return web.Response(status=204)

app = web.Application(client_max_size=0)
app.router.add_put("/upload", put)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=lambda m: print(m, file=sys.stderr, flush=True))
"""

TUS_NODE = Path(__file__).with_name("tus-node")
TUS = {"Tus-Resumable": "1.0.0"}


async def body(total: int, block: bytes) -> AsyncIterator[bytes]:
    for _ in range(total // len(block)):
        yield block


async def timed(send: Awaitable[None]) -> float:
    """Wall time of ``send``; earlier rounds' dirty pages are written out first, so no side pays
    for another's writeback."""
    os.sync()
    start = time.perf_counter()
    await send
    return time.perf_counter() - start


async def main(rounds: int, mib: int, quick: bool) -> None:
    total, block = mib << 20, os.urandom(1 << 20)
    node = shutil.which("node") if (TUS_NODE / "node_modules" / "@tus" / "server").is_dir() else None
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        bare_dir, tus_dir = root / "bare", root / "tus"
        bare_dir.mkdir()
        tus_dir.mkdir()
        (root / "bare.py").write_text(BARE)
        bare_port, tus_port = free_port(), free_port()
        async with (child(sys.executable, str(root / "bare.py"), str(bare_port), str(bare_dir)),
                    child(node, str(TUS_NODE / "server.mjs"), str(tus_port), str(tus_dir))
                    if node else contextlib.nullcontext(),
                    local_relay(root / "relay-data") as running, aiohttp.ClientSession() as http):
            assert running.code
            world = await build_world(running.url, running.code, kdf=TEST_KDF, http=http)
            victim = await world.session(world.victim, http=http)
            try:
                before = rss_mib(running.process.pid)

                async def bare(fsync: bool) -> float:
                    async def send() -> None:
                        async with http.put(f"http://127.0.0.1:{bare_port}/upload?fsync={int(fsync)}",
                                            data=body(total, block)) as answer:
                            assert answer.status == 204
                    return await timed(send())

                async def relay() -> float:  # only the PATCH is timed, not the upload's creation or deletion
                    created = await victim._raw("POST", "/v1/uploads", headers={**TUS, "Upload-Length": str(total)})
                    location = created.headers["Location"]

                    async def send() -> None:
                        answer = await victim._raw("PATCH", location, data=body(total, block), headers={
                            **TUS, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"})
                        assert int(answer.headers["Upload-Offset"]) == total
                    try:
                        return await timed(send())
                    finally:
                        await victim._raw("DELETE", location, headers=TUS)

                async def tus_node() -> float:
                    base = f"http://127.0.0.1:{tus_port}"
                    async with http.post(base + "/files", headers={**TUS, "Upload-Length": str(total)}) as created:
                        assert created.status == 201, created.status
                        location = created.headers["Location"]
                    location = location if location.startswith("http") else base + location

                    async def send() -> None:
                        async with http.patch(location, data=body(total, block), headers={
                                **TUS, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}) as answer:
                            assert answer.status == 204 and int(answer.headers["Upload-Offset"]) == total
                    return await timed(send())

                sides: dict[str, Callable[[], Awaitable[float]]] = {
                    "bare": lambda: bare(False), "bare_fsync": lambda: bare(True), "relay": relay}
                if node:
                    sides["tus_node"] = tus_node
                rates: dict[str, list[float]] = {name: [] for name in sides}
                names = list(sides)
                for round_ in range(rounds):
                    # The sides take turns going first, so a drift in the machine's speed (or the page
                    # cache's state) weighs on each alike.
                    for name in names[round_ % len(names):] + names[:round_ % len(names)]:
                        rates[name].append(mib / await sides[name]())
                        for directory in (bare_dir, tus_dir):
                            for stale in directory.iterdir():
                                stale.unlink()
                growth = rss_mib(running.process.pid, "VmHWM") - before
            finally:
                await victim.close()
    hash_rate = blake3_mib_s(min(mib, 1024))
    median = {name: statistics.median(values) for name, values in rates.items()}
    print(f"upload of {mib} MiB of ciphertext, {rounds} rounds each, alternating, {cores()} cores"
          + (" (quick: checks it runs, not the figures)" if quick else ""))
    print(f"  bare aiohttp, fsync before answer:  {median['bare_fsync']:8.1f} MiB/s")
    print(f"  bare aiohttp, no fsync:             {median['bare']:8.1f} MiB/s  (left in the page cache)")
    if node:
        print(f"  Node @tus/server + @tus/file-store: {median['tus_node']:8.1f} MiB/s  (no hash, no fsync)")
    print(f"  relay (tus PATCH, BLAKE3, fsynced): {median['relay']:8.1f} MiB/s")
    print(f"  ratio to the fsyncing handler:      {median['relay'] / median['bare_fsync']:8.3f}  (goal: at least 0.9)")
    print(f"  ratio to the bare handler:          {median['relay'] / median['bare']:8.3f}  (goal: at least 0.75)")
    if node:
        print(f"  ratio to the Node tus server:       {median['relay'] / median['tus_node']:8.3f}  (goal: at least 1.3)")
    else:
        print("  Node tus server: skipped (install it with: npm ci --prefix bench/tus-node)")
    print(f"  BLAKE3-256 alone:                   {hash_rate:8.1f} MiB/s on one thread")
    print(f"  relay server peak memory growth:    {growth:8.1f} MiB (goal: under 64)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--quick", action="store_true", help="16 MiB, one round: checks it runs (CI)")
    options = parser.parse_args()
    if options.quick:
        options.rounds, options.mib = 1, 16
    asyncio.run(main(options.rounds, options.mib, options.quick))
