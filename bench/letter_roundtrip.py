"""Letter round trips (submit, release, fetch + receipt) through a real relay process, against a
bare aiohttp handler doing one SQLite insert and one select, measured alternately in one run.

    .venv/bin/python bench/letter_roundtrip.py [--rounds 5] [--letters 40] [--quick]

``--quick`` (CI: tests/test_benchmarks_quick.py) runs one round of three letters: it checks the
benchmark still runs, not the figures.

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
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import child, free_port, rss_mib  # noqa: E402

from relay.client.demo import local_relay  # noqa: E402
from relay.client.kdf import TEST_KDF
from relay.client.scenario import build_world  # noqa: E402

LETTER = ("I have thought about what happened every day since. " * 40).encode()  # ~2 KiB


async def main(rounds: int, letters: int) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        tmp, port = Path(scratch), free_port()
        bare_url = f"http://127.0.0.1:{port}"
        async with (child(sys.executable, str(Path(__file__).with_name("_bare_server.py")), str(port),
                          str(tmp / "bare.sqlite3")) as bare,
                    local_relay(tmp / "relay-data") as running, aiohttp.ClientSession() as http):
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
            relay_peak, bare_peak = rss_mib(running.process.pid, "VmHWM"), rss_mib(bare.pid, "VmHWM")

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
    parser.add_argument("--quick", action="store_true", help="one round of three letters: checks it runs (CI)")
    options = parser.parse_args()
    if options.quick:
        options.rounds, options.letters = 1, 3
    asyncio.run(main(options.rounds, options.letters))
