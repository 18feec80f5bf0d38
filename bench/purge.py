"""Purging 100,000 expired items inside a real relay process while terminals poll their inbox and
mediators list their review queue.

    .venv/bin/python bench/purge.py [--items 100000] [--baseline-seconds 15] [--quick]

``--quick`` (CI: tests/test_benchmarks_quick.py) purges 300 items after 2 seconds of baseline:
it checks the benchmark runs, not the figures.

1. A relay with its purge worker off; a world (coordinator, mediator, victim, offender at a
   kiosk) and a few live letters, so the inbox and the queue have something to list.
2. The relay stops; ``--items`` expired items are written straight into its store (rows in a
   case our mediator does not serve, one small ciphertext blob each), dated 200 days ago.
3. The same relay, purge worker still off: terminals and mediators poll for
   ``--baseline-seconds``; their latencies are the baseline.
4. The relay restarts with its worker on (first run after one second) and the same load runs
   until every seeded item is gone.

Prints the p50 and p99 latency of those requests with no purge and during the purge, the p99
ratio (goal: at most 2), the purge rate in items per second (from the run's own record), and
the server's peak memory.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import secrets
import socket
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from relay.client.demo import local_relay  # noqa: E402
from relay.client.kdf import TEST_KDF
from relay.client.scenario import World, build_world  # noqa: E402
from relay.client.sdk import Client  # noqa: E402
from storage.clock import iso  # noqa: E402

TERMINALS, MEDIATORS = 2, 2


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def seed(data_dir: Path, count: int, other_case: str) -> None:
    """``count`` expired items, cloned from a real row, each with its own small blob."""
    conn = sqlite3.connect(data_dir / "relay.sqlite3")
    template = conn.execute("SELECT * FROM items LIMIT 1").fetchone()
    columns = [d[0] for d in conn.execute("SELECT * FROM items LIMIT 1").description]
    old = datetime.now(UTC) - timedelta(days=200)
    states = ("delivered", "returned", "withheld", "released", "pending_review")
    objects = data_dir / "blobs" / "objects"
    rows = []
    for n in range(count):
        blob_id = secrets.token_hex(16)
        shard = objects / blob_id[:2]
        shard.mkdir(exist_ok=True, mode=0o700)
        (shard / blob_id).write_bytes(os.urandom(512))
        row = dict(zip(columns, template, strict=True))
        state = states[n % len(states)]
        # Addressed to the other case's mediators: nothing here is listed to the people polling.
        row |= {"id": f"itm_{secrets.token_hex(8)}", "case_id": other_case, "state": state, "blob_id": blob_id,
                "recipient_id": None,
                "delivery_blob_id": None, "submitted_at": iso(old), "decided_at": iso(old),
                "first_opened_at": iso(old) if state == "delivered" else None, "held_from": None, "hold_code": None}
        rows.append(tuple(row[c] for c in columns))
    conn.executemany(f"INSERT INTO items ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})", rows)
    conn.commit()
    conn.close()


def run_finished(data_dir: Path) -> bool:
    conn = sqlite3.connect(f"file:{data_dir / 'relay.sqlite3'}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT finished_at FROM retention_runs WHERE items > 0 ORDER BY id DESC LIMIT 1").fetchone()
    finally:
        conn.close()
    return row is not None and row[0] is not None


def remaining(data_dir: Path, case_id: str) -> int:
    conn = sqlite3.connect(f"file:{data_dir / 'relay.sqlite3'}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM items WHERE case_id = ?", (case_id,)).fetchone()[0])
    finally:
        conn.close()


async def load(world: World, http: aiohttp.ClientSession, stop: asyncio.Event) -> list[float]:
    """Terminals poll their inbox and mediators list their queue, back to back, until ``stop``."""
    latencies: list[float] = []

    async def poll(client: Client, path: str) -> None:
        while not stop.is_set():
            start = time.perf_counter()
            await client.call("GET", path)
            latencies.append(time.perf_counter() - start)
            await asyncio.sleep(0.01)

    clients = [await world.session(world.offender, on_terminal=True, http=http) for _ in range(TERMINALS)]
    clients += [await world.session(world.mediator, http=http) for _ in range(MEDIATORS)]
    try:
        await asyncio.gather(*(poll(c, "/v1/inbox" if n < TERMINALS else "/v1/review/queue")
                               for n, c in enumerate(clients)))
    finally:
        for client in clients:
            await client.close()
    return latencies


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] * 1000 if len(values) >= 2 else float("nan")


async def main(count: int, baseline_seconds: float, duty: float) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        data_dir = Path(scratch) / "relay-data"
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        off = ("--purge-interval", "0")
        async with local_relay(data_dir, port, serve_args=off) as running, aiohttp.ClientSession() as http:
            assert running.code
            world = await build_world(running.url, running.code, kdf=TEST_KDF, http=http)
            victim = await world.session(world.victim, http=http)
            mediator = await world.session(world.mediator, http=http)
            coordinator = await world.session(world.coordinator, http=http)
            for n in range(12):  # six in the mediator's queue, six released to the kiosk's offender
                sent = await victim.send(case_id=world.case_id, recipient=world.offender.person_id,
                                         src=io.BytesIO(f"letter {n}".encode()))
                if n % 2:
                    await mediator.release(sent["id"])
            other = await coordinator.call("POST", "/v1/cases", json_body={
                "referral_source": "community", "institution_id": world.institution_id})
            for client in (victim, mediator, coordinator):
                await client.close()
        started = time.perf_counter()
        seed(data_dir, count, other["id"])
        print(f"seeded {count} expired items with their blobs in {time.perf_counter() - started:.1f} s",
              file=sys.stderr)

        async with local_relay(data_dir, port, serve_args=off), aiohttp.ClientSession() as http:
            stop = asyncio.Event()
            asyncio.get_running_loop().call_later(baseline_seconds, stop.set)
            quiet = await load(world, http, stop)

        async with local_relay(data_dir, port, serve_args=("--purge-interval", "1", "--purge-duty", str(duty))
                               ) as running, \
                aiohttp.ClientSession() as http:
            stop = asyncio.Event()

            async def until_purged() -> None:
                # Counted in a thread: a count of 100,000 rows on this loop would stall the very
                # requests being timed here and charge the purge with it. The run records its end a
                # few steps after its last delete, so wait for that too before stopping the relay.
                while (await asyncio.to_thread(remaining, data_dir, other["id"]) > 0
                       or not await asyncio.to_thread(run_finished, data_dir)):
                    await asyncio.sleep(0.5)
                stop.set()

            async with asyncio.timeout(3600):
                busy, _ = await asyncio.gather(load(world, http, stop), until_purged())
            server_peak = peak_rss_mib(running.process.pid)
            conn = sqlite3.connect(data_dir / "relay.sqlite3")
            run = conn.execute("SELECT started_at, finished_at, items FROM retention_runs WHERE items > 0"
                               " ORDER BY id DESC LIMIT 1").fetchone()
            conn.close()
    if run is None or run[1] is None:
        raise SystemExit("the purge run did not record its end")
    took = (datetime.fromisoformat(run[1]) - datetime.fromisoformat(run[0])).total_seconds()
    q50, q99, b50, b99 = pct(quiet, 50), pct(quiet, 99), pct(busy, 50), pct(busy, 99)
    print(f"requests (inbox polls and queue listings): {len(quiet)} with no purge, {len(busy)} during it")
    print(f"  no purge: p50 {q50:7.1f} ms   p99 {q99:7.1f} ms")
    print(f"  purging:  p50 {b50:7.1f} ms   p99 {b99:7.1f} ms")
    print(f"p99 ratio (during purge / no purge): {b99 / q99:.2f}   (goal: at most 2)")
    print(f"purge rate: {run[2]} items in {took:.1f} s = {run[2] / took:.0f} items/s")
    print(f"server peak memory (VmHWM): {server_peak:.0f} MiB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--baseline-seconds", type=float, default=15)
    parser.add_argument("--duty", type=float, default=0.5, help="the relay's --purge-duty")
    parser.add_argument("--quick", action="store_true", help="300 items, 2 s of baseline: checks it runs (CI)")
    args = parser.parse_args()
    if args.quick:
        args.items, args.baseline_seconds = 300, 2
    asyncio.run(main(args.items, args.baseline_seconds, args.duty))
