"""The sanitizing transcode (media.sanitize) against the plain ffmpeg command line doing the same
encode on the same file, alternately, in one run.

    .venv/bin/python bench/transcode.py [--rounds 6] [--seconds 20] [--size 1920x1080] [--quick]

The baseline runs exactly the ffmpeg command `media.sanitize_args` builds, straight from a
shell-like subprocess, with no probing, progress parsing, rendition check or scratch directory;
so the ratio is the cost of everything `sanitize` adds around ffmpeg (goal: at most 1.05).
``--quick`` (CI: tests/test_benchmarks_quick.py) transcodes a 2 s 320x240 clip once: it checks
the benchmark runs, not the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import media  # noqa: E402


def make_source(path: Path, seconds: int, size: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=30",
                    "-f", "lavfi", "-i", "sine=frequency=440", "-t", str(seconds), "-c:v", "libx264",
                    "-preset", "ultrafast", "-c:a", "aac", "-metadata", "location=+45.4215-075.6972/",
                    str(path)], check=True)


async def main(rounds: int, seconds: int, size: str) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        src = root / "source.mp4"
        make_source(src, seconds, size)
        info = await media.probe(src)
        plain_args = media.sanitize_args(src, root / "plain.mp4", info)
        ours, plain = [], []

        def run_plain() -> float:
            start = time.perf_counter()
            subprocess.run(plain_args, check=True, stdout=subprocess.DEVNULL)
            elapsed = time.perf_counter() - start
            (root / "plain.mp4").unlink()
            return elapsed

        async def run_ours() -> float:
            start = time.perf_counter()
            await media.sanitize(src, root / "ours.mp4")
            elapsed = time.perf_counter() - start
            (root / "ours.mp4").unlink()
            return elapsed

        # One uncounted round of each first (the page cache, the CPU's clock), then the order
        # alternates every round, so a drift in the machine's speed weighs on both sides alike.
        run_plain()
        await run_ours()
        for round_ in range(rounds):
            if round_ % 2:
                ours.append(await run_ours())
                plain.append(run_plain())
            else:
                plain.append(run_plain())
                ours.append(await run_ours())
    ratio = statistics.median(ours) / statistics.median(plain)
    print(f"sanitizing transcode of a {seconds} s {size} clip, {rounds} rounds each, alternating,"
          f" {len(os.sched_getaffinity(0))} cores")
    print(f"  plain ffmpeg: {statistics.median(plain):6.2f} s  (rounds: {', '.join(f'{t:.2f}' for t in plain)})")
    print(f"  sanitize:     {statistics.median(ours):6.2f} s  (rounds: {', '.join(f'{t:.2f}' for t in ours)})")
    print(f"  ratio:        {ratio:6.3f}  (goal: at most 1.05)")
    print(f"  peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f} MiB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--quick", action="store_true", help="a 2 s 320x240 clip, one round: checks it runs (CI)")
    options = parser.parse_args()
    if options.quick:
        options.rounds, options.seconds, options.size = 1, 2, "320x240"
    asyncio.run(main(options.rounds, options.seconds, options.size))
