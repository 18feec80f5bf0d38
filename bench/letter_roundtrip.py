"""Letter round trips (submit, release, fetch + receipt) through a real relay process, against a
bare aiohttp handler doing one SQLite insert and one select, measured alternately in one run.

    .venv/bin/python bench/letter_roundtrip.py [--rounds 5] [--letters 40]

Prints items per second for each, the ratio (ours / bare), and peak memory (server RSS high-water
mark of each process, and this client's). Our round trip is many requests plus the client's
sealing, verification and decryption; the bare one is a single request: the ratio says what the
whole protocol costs against the cheapest possible store-and-read.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import resource
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from relay.client.demo import local_relay  # noqa: E402
from relay.client.kdf import TEST_KDF
from relay.client.scenario import build_world  # noqa: E402

LETTER = ("I have thought about what happened every day since. " * 40).encode()  # ~2 KiB


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def bare_server(tmp: Path) -> tuple[str, asyncio.subprocess.Process]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(Path(__file__).with_name("bare_server.py")), str(port), str(tmp / "bare.sqlite3"),
        stderr=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL)
    assert process.stderr
    while b"Running on" not in (line := await process.stderr.readline()):
        if not line:
            raise RuntimeError("the bare server did not start")
    return f"http://127.0.0.1:{port}", process


async def main(rounds: int, letters: int) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        tmp = Path(scratch)
        bare_url, bare = await bare_server(tmp)
        async with local_relay(tmp / "relay-data") as running, aiohttp.ClientSession() as http:
            assert running.code
            world = await build_world(running.url, running.code, kdf=TEST_KDF, http=http)
            victim = await world.session(world.victim, http=http)
            mediator = await world.session(world.mediator, http=http)
            offender = await world.session(world.offender, on_terminal=True, http=http)

            async def ours() -> float:
                start = time.perf_counter()
                for _ in range(letters):
                    sent = await victim.send(case_id=world.case_id, recipient=world.offender.person_id,
                                             src=io.BytesIO(LETTER))
                    await mediator.release(sent["id"])
                    out = io.BytesIO()
                    await offender.fetch(sent["id"], out)
                    assert out.getvalue() == LETTER
                return letters / (time.perf_counter() - start)

            async def baseline() -> float:
                count = letters * 10
                start = time.perf_counter()
                for _ in range(count):
                    async with http.post(bare_url + "/letter", data=LETTER) as response:
                        assert await response.read() == LETTER
                return count / (time.perf_counter() - start)

            ours_rates, bare_rates = [], []
            for _ in range(rounds):  # alternate, so drift on this shared machine hits both alike
                bare_rates.append(await baseline())
                ours_rates.append(await ours())
            for client in (victim, mediator, offender):
                await client.close()
            relay_peak = peak_rss_mib(running.process.pid)
        bare_peak = peak_rss_mib(bare.pid)
        bare.terminate()
        await bare.wait()

    ours_median, bare_median = statistics.median(ours_rates), statistics.median(bare_rates)
    client_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"letter round trip (submit + review release + verified fetch + receipt), {rounds} rounds x {letters}")
    print(f"  relay:    {ours_median:8.1f} letters/s   (rounds: {', '.join(f'{r:.1f}' for r in ours_rates)})")
    print(f"  bare:     {bare_median:8.1f} requests/s  (one insert + one select per request)")
    print(f"  ratio:    {ours_median / bare_median:8.3f}  (relay round trips per bare request)")
    print(f"  peak RSS: relay server {relay_peak:.1f} MiB, bare server {bare_peak:.1f} MiB, client {client_peak:.1f} MiB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--letters", type=int, default=40)
    options = parser.parse_args()
    asyncio.run(main(options.rounds, options.letters))
