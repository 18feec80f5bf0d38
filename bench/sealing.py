"""Client sealing (relay.client: secretstream in 64 KiB chunks, BLAKE2b-256 of the ciphertext,
written to the sealed file) against raw secretstream on the same data, alternately in one run.

    .venv/bin/python bench/sealing.py [--rounds 5] [--mib 256]

The baseline is the bare PyNaCl binding pushing the same 64 KiB chunks, writing nothing and
hashing nothing; the ratio (ours / raw throughput, goal at least 0.8) is what the envelope
format, the hash the manifest signs and the file write cost. Peak memory is printed too: it
stays flat whatever the size, since both stream.

The ceiling: sealing must at least encrypt (the baseline), write the sealed file (the client
keeps it to resume a send after a restart, and sends it after the signed manifest) and take one
BLAKE2b-256 pass over the ciphertext (the manifest signs it, DESIGN.md). This run times, on the
same bytes, the hash alone (CPU time, on bytes already in memory) and the encryption with the
write but without the hash (the write's cost is the difference from raw). Each of the three is
sequential, so no implementation can beat the slowest of them, nor their sum spread perfectly
over every core: raw time over that bound is an upper bound on the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nacl.hashlib
from nacl import bindings as b

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

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


def encrypt_and_write(path: Path, key: bytes, out: Path) -> float:
    """The client's encryption and sealed-file write, without the hash."""
    start = time.perf_counter()
    with open(path, "rb") as src, open(out, "wb") as sink:
        for chunk in envelope.encrypt_stream(key, src):
            sink.write(chunk)
    elapsed = time.perf_counter() - start
    out.unlink()
    return elapsed


def blake2b_alone(mib: int) -> float:
    """CPU time of one BLAKE2b-256 pass over ``mib`` MiB already in memory (a sealer could hash
    the ciphertext it has just made without reading anything back), with the faster of the two
    implementations at hand (libsodium's, which the client uses, and the stdlib's)."""
    block, timings = os.urandom(1 << 20), []
    for hasher in (nacl.hashlib.blake2b(digest_size=32), hashlib.blake2b(digest_size=32)):
        start = time.thread_time()
        for _ in range(mib):
            hasher.update(block)
        timings.append(time.thread_time() - start)
    return min(timings)


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
        raw_times, our_times, hash_times, ceilings = [], [], [], []
        cores = len(os.sched_getaffinity(0))
        for round_ in range(rounds):
            # Which side goes first alternates, so a drift in the machine's speed weighs on both.
            if round_ % 2:
                our_times.append(await ours(client, path, key))
                raw = raw_secretstream(path, key)
            else:
                raw = raw_secretstream(path, key)
                our_times.append(await ours(client, path, key))
            raw_times.append(raw)
            hashing = blake2b_alone(mib)
            hash_times.append(hashing)
            writing = max(0.0, encrypt_and_write(path, key, Path(scratch) / "written.bin") - raw)
            ceilings.append(raw / max(raw, hashing, writing, (raw + hashing + writing) / cores))
    raw_rate, our_rate = mib / statistics.median(raw_times), mib / statistics.median(our_times)
    print(f"sealing {mib} MiB in 64 KiB chunks, {rounds} rounds each, alternating")
    print(f"  raw secretstream: {raw_rate:8.1f} MiB/s")
    print(f"  client sealing:   {our_rate:8.1f} MiB/s  (secretstream + BLAKE2b-256 + write to the sealed file)")
    print(f"  ratio:            {our_rate / raw_rate:8.3f}  (goal: at least 0.8)")
    print(f"  BLAKE2b-256 alone: {mib / statistics.median(hash_times):7.1f} MiB/s on one core (the faster of"
          " libsodium's and hashlib's)")
    print(f"  ceiling:          {statistics.median(ceilings):8.3f}  (best ratio any sealing that encrypts, writes and"
          f" hashes every byte with BLAKE2b-256 could reach on these {cores} cores; see the docstring)")
    print(f"  peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f} MiB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--mib", type=int, default=256)
    options = parser.parse_args()
    asyncio.run(main(options.rounds, options.mib))
