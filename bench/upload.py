"""Uploading ciphertext through the relay's resumable path (one tus PATCH: owner check, streamed
to the upload file, hashed with BLAKE2b-256, fsynced, offset recorded) against a bare aiohttp
handler streaming the same bytes to a new file, alternately in one run, plus the relay server's
memory growth and the ceiling the hash sets on this machine.

    .venv/bin/python bench/upload.py [--rounds 5] [--mib 1024]

Goal: at least 0.8 of the bare throughput; server peak memory growth under 64 MiB. The relay
fsyncs before it acknowledges an offset (an acknowledged upload survives kill -9 and power loss),
so the bare handler runs twice a round: leaving the bytes in the page cache (the stricter
baseline) and fsyncing them before it answers (like with like). Each side writes a new file every
round (old ones are removed between rounds, and every dirty page written out before each timed
upload, outside the timing), and the client sends one reused
1 MiB buffer over and over, so the client costs the same on every side.

The ceiling: the relay must do at least what the bare handler does plus one BLAKE2b-256 pass over
every byte (DESIGN.md: the server recomputes the manifest's ciphertext hash as the upload streams
in). This run measures the bare handler's CPU time (server and client), and one BLAKE2b-256 pass
over the same number of bytes; spread perfectly over every core, that work cannot take less than
(bare CPU + hash CPU) / cores, nor less than the hash alone, a sequential computation on one core.
Bare wall time over that lower bound is the best ratio any implementation of the design could
reach here.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path

import aiohttp
import nacl.hashlib

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from relay.client.demo import local_relay  # noqa: E402
from relay.client.kdf import TEST_KDF
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


def rss_mib(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process, from /proc (fields 14 and 15 of stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    now = os.times()
    return now.user + now.system


def blake2b_seconds(total: int, block: bytes) -> float:
    """One BLAKE2b-256 pass over ``total`` bytes with the faster of the two implementations at
    hand (libsodium's, which the relay uses, and the stdlib's), so the ceiling holds for both."""
    timings = []
    for hasher in (nacl.hashlib.blake2b(digest_size=32), hashlib.blake2b(digest_size=32)):
        start = time.thread_time()
        for _ in range(total // len(block)):
            hasher.update(block)
        timings.append(time.thread_time() - start)
    return min(timings)


async def body(total: int, block: bytes) -> AsyncIterator[bytes]:
    for _ in range(total // len(block)):
        yield block


async def timed(send: Awaitable[None], server_pid: int) -> tuple[float, float]:
    """Wall time of ``send``, and the CPU time the server and this client spent on it. Earlier
    rounds' dirty pages are written out first, so no side pays for another's writeback."""
    os.sync()
    server, client, start = cpu_seconds(server_pid), own_cpu_seconds(), time.perf_counter()
    await send
    wall = time.perf_counter() - start
    return wall, cpu_seconds(server_pid) - server + own_cpu_seconds() - client


async def main(rounds: int, mib: int) -> None:
    total, block = mib << 20, os.urandom(1 << 20)
    cores = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        bare_dir = root / "bare"
        bare_dir.mkdir()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        (root / "bare.py").write_text(BARE)
        bare = await asyncio.create_subprocess_exec(sys.executable, str(root / "bare.py"), str(port),
                                                    str(bare_dir), stderr=asyncio.subprocess.PIPE)
        assert bare.stderr
        while b"Running on" not in (await bare.stderr.readline() or b"Running on"):
            pass
        async with local_relay(root / "relay-data") as running, aiohttp.ClientSession() as http:
            assert running.code
            world = await build_world(running.url, running.code, kdf=TEST_KDF, http=http)
            victim = await world.session(world.victim, http=http)
            before = rss_mib(running.process.pid, "VmRSS")
            ours, baseline, durable, ceilings, hash_rates = [], [], [], [], []
            tus = {"Tus-Resumable": "1.0.0"}

            async def send_bare(fsync: bool) -> None:
                async with http.put(f"http://127.0.0.1:{port}/upload?fsync={int(fsync)}",
                                    data=body(total, block)) as answer:
                    assert answer.status == 204

            async def send_ours(location: str) -> None:
                answer = await victim._raw("PATCH", location, data=body(total, block), headers={
                    **tus, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"})
                assert int(answer.headers["Upload-Offset"]) == total

            for round_ in range(rounds):
                # The three sides take turns going first, so a drift in the machine's speed (or
                # the page cache's state) weighs on each alike.
                for side in range(round_ % 3, round_ % 3 + 3):
                    if side % 3 == 0:
                        bare_wall, bare_cpu = await timed(send_bare(False), bare.pid)
                        baseline.append(mib / bare_wall)
                    elif side % 3 == 1:
                        durable.append(mib / (await timed(send_bare(True), bare.pid))[0])
                    else:  # only the PATCH is timed, not the upload's creation or deletion
                        created = await victim._raw("POST", "/v1/uploads",
                                                    headers={**tus, "Upload-Length": str(total)})
                        location = created.headers["Location"]
                        ours.append(mib / (await timed(send_ours(location), running.process.pid))[0])
                        await victim._raw("DELETE", location, headers=tus)
                    for stale in bare_dir.iterdir():
                        stale.unlink()
                hashing = blake2b_seconds(total, block)
                hash_rates.append(mib / hashing)
                ceilings.append(bare_wall / max(bare_wall, hashing, (bare_cpu + hashing) / cores))
            growth = rss_mib(running.process.pid, "VmHWM") - before
            await victim.close()
        bare.terminate()
        await bare.wait()
    ratio = statistics.median(ours) / statistics.median(baseline)
    like_for_like = statistics.median(ours) / statistics.median(durable)
    print(f"upload of {mib} MiB of ciphertext, {rounds} rounds each, alternating, {cores} cores")
    print(f"  bare aiohttp to a new file:        {statistics.median(baseline):8.1f} MiB/s  (left in the page cache)")
    print(f"  bare aiohttp, fsync before answer: {statistics.median(durable):8.1f} MiB/s")
    print(f"  relay (tus PATCH, fsynced):        {statistics.median(ours):8.1f} MiB/s")
    print(f"  ratio to the bare handler:         {ratio:8.3f}  (goal: at least 0.8)")
    print(f"  ratio to the fsyncing handler:     {like_for_like:8.3f}  (like with like)")
    print(f"  BLAKE2b-256 alone:                 {statistics.median(hash_rates):8.1f} MiB/s on one core (the faster"
          " of libsodium's and hashlib's)")
    print(f"  ceiling against the bare handler:  {statistics.median(ceilings):8.3f}  (best ratio any server that hashes"
          " every byte with BLAKE2b-256 could reach here; see the docstring)")
    print(f"  relay server peak memory growth during the uploads: {growth:.1f} MiB (goal: under 64)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--mib", type=int, default=1024)
    options = parser.parse_args()
    asyncio.run(main(options.rounds, options.mib))
