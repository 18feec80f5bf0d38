"""Client sealing (relay.client: secretstream in 64 KiB chunks, BLAKE2b-256 of the ciphertext,
written to the sealed file) against raw secretstream on the same data, alternately in one run.

    .venv/bin/python bench/sealing.py [--rounds 5] [--mib 256]

The baseline is the bare PyNaCl binding pushing the same 64 KiB chunks, writing nothing and
hashing nothing; the ratio (ours / raw throughput, goal at least 0.8) is what the envelope
format, the hash the manifest signs and the file write cost. Peak memory is printed too: it
stays flat whatever the size, since both stream.
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

from relay import envelope  # noqa: E402
from relay.client import Client  # noqa: E402

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


async def main(rounds: int, mib: int) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "plain.bin"
        with open(path, "wb") as out:
            block = os.urandom(1 << 20)
            for _ in range(mib):
                out.write(block)
        key = envelope.new_content_key()
        client = Client("http://127.0.0.1:9")
        raw_times, our_times = [], []
        for _ in range(rounds):
            raw_times.append(raw_secretstream(path, key))
            our_times.append(await ours(client, path, key))
    raw_rate, our_rate = mib / statistics.median(raw_times), mib / statistics.median(our_times)
    print(f"sealing {mib} MiB in 64 KiB chunks, {rounds} rounds each, alternating")
    print(f"  raw secretstream: {raw_rate:8.1f} MiB/s")
    print(f"  client sealing:   {our_rate:8.1f} MiB/s  (secretstream + BLAKE2b-256 + write to the sealed file)")
    print(f"  ratio:            {our_rate / raw_rate:8.3f}  (goal: at least 0.8)")
    print(f"  peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f} MiB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--mib", type=int, default=256)
    options = parser.parse_args()
    asyncio.run(main(options.rounds, options.mib))
