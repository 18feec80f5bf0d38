"""What the benchmarks share: child servers started and always stopped, /proc readings, the
hash's own speed, and the line every benchmark prints for CI (tests/test_benchmarks_quick.py)."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import blake3

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@asynccontextmanager
async def child(*argv: str, ready: bytes = b"Running on") -> AsyncIterator[asyncio.subprocess.Process]:
    """A child server, once it has said ``ready`` on stderr; terminated (then killed) on every
    path, so a failing benchmark never leaves a server behind or hangs at exit."""
    process = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.DEVNULL,
                                                   stderr=asyncio.subprocess.PIPE)
    assert process.stderr is not None
    drain: asyncio.Task[None] | None = None
    try:
        async with asyncio.timeout(30):
            while ready not in (line := await process.stderr.readline()):
                if not line:
                    raise RuntimeError(f"{argv[0]} stopped during start-up")
        drain = asyncio.create_task(_drain(process.stderr))
        yield process
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                async with asyncio.timeout(10):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()
        if drain is not None:
            drain.cancel()


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.readline():
        pass


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def rss_mib(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def blake3_mib_s(mib: int) -> float:
    """BLAKE3-256 on one thread over ``mib`` MiB in 64 KiB updates (how the relay and the client
    feed it), on bytes already in memory."""
    chunk, hasher = os.urandom(64 * 1024), blake3.blake3()
    start = time.thread_time()
    for _ in range(mib * 16):
        hasher.update(chunk)
    return mib / max(time.thread_time() - start, 1e-9)


def cores() -> int:
    return len(os.sched_getaffinity(0))


def python() -> str:
    return sys.executable


def new_file_write_mib_s(directory: Path, mib: int) -> float:
    """Writing ``mib`` MiB (one reused 1 MiB buffer) to a new file, no fsync: what any step that
    writes a file of that size pays for the page cache's fresh pages. On a virtual machine whose
    host has taken free memory back, first touches are slow and swing from run to run
    (shared/PERFORMANCE.md), and a sealing or an opening to disk cannot beat this."""
    block, path = os.urandom(1 << 20), directory / "new-file-write.bin"
    start = time.perf_counter()
    with open(path, "wb", buffering=0) as out:
        for _ in range(mib):
            out.write(block)
    elapsed = time.perf_counter() - start
    path.unlink()
    return mib / elapsed
