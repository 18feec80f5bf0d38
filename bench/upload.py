"""Uploading ciphertext through the relay's resumable path (one tus PATCH: owner check, streamed
to the upload file, fsynced, offset recorded) against a bare aiohttp handler streaming the same
bytes to a new file, alternately in one run, plus the relay server's memory growth.

    .venv/bin/python bench/upload.py [--rounds 5] [--mib 1024]

Goal: at least 0.8 of the bare throughput; server peak memory growth under 64 MiB. The relay
fsyncs before it acknowledges an offset (an acknowledged upload survives kill -9 and power loss);
the bare handler does not, unless --bare-fsync asks it to, which compares like with like. The client
sends one reused 1 MiB buffer over and over, so the client costs the same on both sides.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from relay.demo import local_relay  # noqa: E402
from relay.scenario import TEST_KDF, build_world  # noqa: E402

BARE = """
import os, sys
from aiohttp import web

async def put(request):
    with open(sys.argv[2], "wb") as out:
        async for chunk in request.content.iter_chunked(256 * 1024):
            out.write(chunk)
        if sys.argv[3] == "fsync":
            out.flush()
            os.fsync(out.fileno())
    return web.Response(status=204)

app = web.Application(client_max_size=0)
app.router.add_put("/upload", put)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=lambda m: print(m, file=sys.stderr, flush=True))
"""


def rss_mib(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def body(total: int, block: bytes) -> AsyncIterator[bytes]:
    for _ in range(total // len(block)):
        yield block


async def main(rounds: int, mib: int, fsync: bool) -> None:
    total, block = mib << 20, bytes(1 << 20)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        (root / "bare.py").write_text(BARE)
        bare = await asyncio.create_subprocess_exec(sys.executable, str(root / "bare.py"), str(port),
                                                    str(root / "bare.bin"), "fsync" if fsync else "no-fsync",
                                                    stderr=asyncio.subprocess.PIPE)
        assert bare.stderr
        while b"Running on" not in (await bare.stderr.readline() or b"Running on"):
            pass
        async with local_relay(root / "relay-data") as running, aiohttp.ClientSession() as http:
            assert running.code
            world = await build_world(running.url, running.code, kdf=TEST_KDF, http=http)
            victim = await world.session(world.victim, http=http)
            before = rss_mib(running.process.pid, "VmRSS")
            ours, baseline = [], []
            tus = {"Tus-Resumable": "1.0.0"}
            for _ in range(rounds):
                start = time.perf_counter()
                async with http.put(f"http://127.0.0.1:{port}/upload", data=body(total, block)) as answer:
                    assert answer.status == 204
                baseline.append(mib / (time.perf_counter() - start))

                created = await victim._raw("POST", "/v1/uploads", headers={**tus, "Upload-Length": str(total)})
                location = created.headers["Location"]
                start = time.perf_counter()
                await victim._raw("PATCH", location, data=body(total, block), headers={
                    **tus, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"})
                ours.append(mib / (time.perf_counter() - start))
                await victim._raw("DELETE", location, headers=tus)
            growth = rss_mib(running.process.pid, "VmHWM") - before
            await victim.close()
        bare.terminate()
        await bare.wait()
    ratio = statistics.median(ours) / statistics.median(baseline)
    print(f"upload of {mib} MiB of ciphertext, {rounds} rounds each, alternating")
    print(f"  bare aiohttp to disk: {statistics.median(baseline):8.1f} MiB/s"
          f"  ({'with' if fsync else 'without'} an fsync before answering)")
    print(f"  relay (tus PATCH):    {statistics.median(ours):8.1f} MiB/s")
    print(f"  ratio:                {ratio:8.3f}  (goal: at least 0.8)")
    print(f"  relay server peak memory growth during the uploads: {growth:.1f} MiB (goal: under 64)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--bare-fsync", action="store_true",
                        help="make the baseline durable too (the relay always fsyncs before acknowledging)")
    options = parser.parse_args()
    asyncio.run(main(options.rounds, options.mib, options.bare_fsync))
