"""Client sealing (relay.client: secretstream in 64 KiB chunks, BLAKE3-256 of the ciphertext,
written to the sealed file, as a pipeline on two threads) against raw secretstream on the same
data, alternately in one run.

    .venv/bin/python bench/sealing.py [--rounds 5] [--mib 256] [--quick]

The baseline is the bare PyNaCl binding reading the same file and pushing the same 64 KiB
chunks, writing nothing and hashing nothing (printed beside it: writing a file of the same size
alone, measured in the same rounds, since the sealed file's write is the one cost sealing cannot
overlap away when the page cache's fresh pages are slow); the ratio (ours / raw throughput) is what the
envelope format, the hash the manifest signs and the sealed file's write cost. Goal: at least
0.85. Peak memory is printed too: it stays flat whatever the size, since both stream. The
hash's own speed (BLAKE3 on one thread) is printed beside it. ``--quick`` (CI:
tests/test_benchmarks_quick.py) seals 8 MiB once: it checks the benchmark runs, not the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

from nacl import bindings as b

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import blake3_mib_s, cores, new_file_write_mib_s  # noqa: E402

from relay import envelope  # noqa: E402
from relay.client.sdk import Client  # noqa: E402

CHUNK = 64 * 1024


def raw_secretstream(path: Path, key: bytes) -> float:
    start = time.perf_counter()
    state = b.crypto_secretstream_xchacha20poly1305_state()
    b.crypto_secretstream_xchacha20poly1305_init_push(state, key)
    with open(path, "rb") as src:
        chunk = src.read(CHUNK)
        while chunk:
            following = src.read(CHUNK)
            tag = (b.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE if following
                   else b.crypto_secretstream_xchacha20poly1305_TAG_FINAL)
            b.crypto_secretstream_xchacha20poly1305_push(state, chunk, tag=tag)
            chunk = following
    return time.perf_counter() - start


async def ours(client: Client, path: Path, key: bytes) -> float:
    start = time.perf_counter()
    with open(path, "rb") as src:
        sealed = await client._seal_file(key, src)
    elapsed = time.perf_counter() - start
    sealed.path.unlink()
    return elapsed


async def main(rounds: int, mib: int, quick: bool) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "plain.bin"
        with open(path, "wb") as out:
            block = os.urandom(1 << 20)
            for _ in range(mib):
                out.write(block)
        key = envelope.new_content_key()
        client = Client("http://127.0.0.1:9")
        raw_times, our_times, writes = [], [], []
        for round_ in range(rounds):
            # Which side goes first alternates, so a drift in the machine's speed weighs on both.
            if round_ % 2:
                our_times.append(await ours(client, path, key))
                raw_times.append(raw_secretstream(path, key))
            else:
                raw_times.append(raw_secretstream(path, key))
                our_times.append(await ours(client, path, key))
            writes.append(new_file_write_mib_s(Path(scratch), mib))
    raw_rate, our_rate = mib / statistics.median(raw_times), mib / statistics.median(our_times)
    print(f"sealing {mib} MiB in 64 KiB chunks, {rounds} rounds each, alternating, {cores()} cores"
          + (" (quick: checks it runs, not the figures)" if quick else ""))
    print(f"  raw secretstream: {raw_rate:8.1f} MiB/s")
    print(f"  client sealing:   {our_rate:8.1f} MiB/s  (secretstream + BLAKE3-256 + write to the sealed file)")
    print(f"  ratio:            {our_rate / raw_rate:8.3f}  (goal: at least 0.85)")
    print(f"  BLAKE3-256 alone: {blake3_mib_s(min(mib, 1024)):8.1f} MiB/s on one thread")
    print(f"  a new file's write alone: {statistics.median(writes):8.1f} MiB/s (min {min(writes):.0f}, max"
          f" {max(writes):.0f}): the page cache's fresh pages, which sealing's own write cannot beat")
    print(f"  peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f} MiB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--quick", action="store_true", help="8 MiB, one round: checks it runs (CI)")
    options = parser.parse_args()
    if options.quick:
        options.rounds, options.mib = 1, 8
    asyncio.run(main(options.rounds, options.mib, options.quick))
