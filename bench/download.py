"""Downloading a released delivery, against bare baselines, alternately in one run.

    .venv/bin/python bench/download.py [--rounds 5] [--mib 1024] [--quick]

Two measurements on the same released item (a mediator's own video message to a participant on
a terminal, so nothing is transcoded; its sealed delivery blob is ``--mib`` MiB):

* transfer: the delivery's ciphertext to the terminal through the relay (session, device and
  role checks, screening at fetch time, then the blob) against a bare aiohttp ``FileResponse``
  of the same file; the same client reads both into nothing. Goal: at least 0.9;
* opening: the recipient's verified fetch to disk (``Client.fetch``: the signed release
  verified, the ciphertext received, hashed with BLAKE3, decrypted and written to a file, the
  hash checked) against raw secretstream decryption of the same blob read from the page cache,
  writing nothing. Goal: at least 0.85.

The hash's own speed (BLAKE3 on one thread), the core count and peak memory are printed too.
``--quick`` (CI: tests/test_benchmarks_quick.py) uses 8 MiB once: it checks the benchmark runs,
not the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from nacl import bindings as b

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import blake3_mib_s, child, cores, free_port, new_file_write_mib_s, rss_mib  # noqa: E402

from relay import envelope  # noqa: E402
from relay.client.demo import local_relay  # noqa: E402
from relay.client.kdf import TEST_KDF  # noqa: E402
from relay.client.scenario import build_world  # noqa: E402

BARE = """
import sys
from aiohttp import web

async def get(request):
    return web.FileResponse(sys.argv[2])

app = web.Application()
app.router.add_get("/file", get)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=lambda m: print(m, file=sys.stderr, flush=True))
"""

READ = 1 << 20


def raw_decrypt(blob: Path, key: bytes) -> float:
    """secretstream decryption of the blob, read in whole chunks from the page cache."""
    start = time.perf_counter()
    state = b.crypto_secretstream_xchacha20poly1305_state()
    with open(blob, "rb") as src:
        header = src.read(envelope.HEADER_SIZE)
        b.crypto_secretstream_xchacha20poly1305_init_pull(state, header[len(envelope.MAGIC):], key)
        while chunk := src.read(envelope.ENCRYPTED_CHUNK_SIZE):
            b.crypto_secretstream_xchacha20poly1305_pull(state, chunk)
    return time.perf_counter() - start


async def main(rounds: int, mib: int, quick: bool) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        plain = root / "message.mp4"  # random bytes: the relay never sees inside, and nothing transcodes them
        with open(plain, "wb") as out:
            block = os.urandom(1 << 20)
            for _ in range(mib):
                out.write(block)
        async with local_relay(root / "relay-data") as running, aiohttp.ClientSession() as http:
            assert running.code
            world = await build_world(running.url, running.code, kdf=TEST_KDF, http=http)
            mediator = await world.session(world.mediator, http=http)
            terminal = await world.session(world.offender, on_terminal=True, http=http)
            try:
                # Opened by descriptor, so the client finds no path to probe: the bytes are not a video.
                with open(os.open(plain, os.O_RDONLY), "rb") as src:
                    sent = await mediator.send(case_id=world.case_id, recipient=world.offender.person_id, src=src,
                                               kind="video", content_type="video/mp4", already_sanitized=True)
                plain.unlink()
                item_id = sent["id"]
                db = sqlite3.connect(f"file:{root / 'relay-data' / 'relay.sqlite3'}?mode=ro", uri=True)
                try:
                    (blob_id,) = db.execute("SELECT delivery_blob_id FROM items WHERE id = ?", (item_id,)).fetchone()
                finally:
                    db.close()
                blob = root / "relay-data" / "blobs" / "objects" / blob_id[:2] / blob_id
                size = blob.stat().st_size
                view = await terminal.call("GET", f"/v1/items/{item_id}/delivery")
                key = envelope.open_key(view["decision"]["delivery"]["keys"][world.offender.person_id],
                                        world.offender.identity)
                port = free_port()
                (root / "bare.py").write_text(BARE)
                async with child(sys.executable, str(root / "bare.py"), str(port), str(blob)):

                    async def transfer_relay() -> float:
                        start, got = time.perf_counter(), 0
                        async with terminal._download(f"/v1/items/{item_id}/delivery/content") as response:
                            async for piece in response.content.iter_chunked(READ):
                                got += len(piece)
                        assert got == size
                        return time.perf_counter() - start

                    async def transfer_bare() -> float:
                        start, got = time.perf_counter(), 0
                        async with http.get(f"http://127.0.0.1:{port}/file") as response:
                            async for piece in response.content.iter_chunked(READ):
                                got += len(piece)
                        assert got == size
                        return time.perf_counter() - start

                    async def opening() -> float:
                        out = root / "opened.mp4"
                        start = time.perf_counter()
                        with open(out, "wb") as dst:
                            await terminal.fetch(item_id, dst, acknowledge=False)
                        elapsed = time.perf_counter() - start
                        out.unlink()
                        return elapsed

                    async def raw() -> float:
                        return await asyncio.to_thread(raw_decrypt, blob, key)

                    timings: dict[str, list[float]] = {"relay": [], "bare": [], "opening": [], "raw": []}
                    writes = []
                    for round_ in range(rounds):  # each pair alternates which goes first
                        pairs = [("relay", transfer_relay), ("bare", transfer_bare)], [("opening", opening),
                                                                                       ("raw", raw)]
                        for pair in pairs:
                            for name, run in (pair if round_ % 2 else pair[::-1]):
                                timings[name].append(await run())
                        writes.append(new_file_write_mib_s(root, mib))
                relay_peak = rss_mib(running.process.pid, "VmHWM")
            finally:
                await mediator.close()
                await terminal.close()
    rate = {name: (size / 2**20) / statistics.median(values) for name, values in timings.items()}
    print(f"download of a {size / 2**20:.0f} MiB sealed delivery, {rounds} rounds each, alternating, {cores()} cores"
          + (" (quick: checks it runs, not the figures)" if quick else ""))
    print(f"  bare aiohttp FileResponse:           {rate['bare']:8.1f} MiB/s")
    print(f"  relay delivery content (terminal):   {rate['relay']:8.1f} MiB/s  (authorization and screening at fetch)")
    print(f"  ratio:                               {rate['relay'] / rate['bare']:8.3f}  (goal: at least 0.9)")
    print(f"  raw secretstream decryption:         {rate['raw']:8.1f} MiB/s  (from the page cache, writing nothing)")
    print(f"  recipient's verified fetch to disk:  {rate['opening']:8.1f} MiB/s  (release verified, BLAKE3, decrypt,"
          " write)")
    print(f"  ratio of opening:                    {rate['opening'] / rate['raw']:8.3f}  (goal: at least 0.85)")
    print(f"  BLAKE3-256 alone:                    {blake3_mib_s(min(mib, 1024)):8.1f} MiB/s on one thread")
    print(f"  a new file's write alone:            {statistics.median(writes):8.1f} MiB/s (min {min(writes):.0f},"
          f" max {max(writes):.0f}): the opening's own write cannot beat it")
    print(f"  peak RSS: relay server {relay_peak:.1f} MiB, client {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f}"
          " MiB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--quick", action="store_true", help="8 MiB, one round: checks it runs (CI)")
    options = parser.parse_args()
    if options.quick:
        options.rounds, options.mib = 1, 8
    asyncio.run(main(options.rounds, options.mib, options.quick))
