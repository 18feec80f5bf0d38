"""Write throughput: state changes (submissions of small letters, mediators' decisions, receipts)
from concurrent clients, each durable before it is acknowledged, against a bare aiohttp handler
doing one durable aiosqlite insert per request at the same concurrency, in the same run.

    .venv/bin/python bench/writes.py [--clients 50] [--each 20] [--quick]

The people and cases are set up through the SDK (bench/_world.py): one case per client. Every
state change is made by the SDK exactly as a person's client makes it (sealed, signed), but its
final request is held back instead of sent; the timed phases then send those requests, each
once, ``--clients`` at a time (one worker per case, its requests in order):

1. submissions: each victim's ``--each`` letters (``POST /v1/items``, sealed content and signed
   manifest; the relay checks the quota, screens, stores the blob and the row);
2. decisions: the mediators' releases of them (``POST /v1/items/{id}/decision``, re-sealed
   delivery and signed release), prepared by opening each item at the desk;
3. receipts: the offenders' signed receipts (``POST /v1/items/{id}/receipt``), prepared by
   fetching and opening each delivery on the kiosk.

Between phases (untimed) the preparations run. The bare handler (``INSERT`` of the request's
body; WAL, ``synchronous=FULL``, its own commit) takes the same number of requests as all three
phases together, ``--clients`` at a time, before the first phase and after the last.

Printed: state changes a second and p50/p99 latency for each phase and for all three, the bare
rate and p99, the ratio (goal: at least 0.3), how many writes each commit of the relay's single
writer held (group commit, from ``/metrics``), CPU and peak memory. Any failed request fails the
run. ``--quick`` (CI: tests/test_benchmarks_quick.py): 10 clients, 3 letters each.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import re
import resource
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import child, cores, cpu_seconds, free_port, own_cpu_seconds, quantile, rss_mib  # noqa: E402
from _world import populate  # noqa: E402

from relay.client.demo import local_relay  # noqa: E402
from relay.client.kdf import TEST_KDF  # noqa: E402
from relay.client.scenario import build_world  # noqa: E402
from relay.client.sdk import Client  # noqa: E402
from relay.client.sdk.transfer import Sealed  # noqa: E402

BARE = """
import sys
import aiosqlite
from aiohttp import web

async def make_app():
    conn = await aiosqlite.connect(sys.argv[2], isolation_level=None)  # autocommit: each insert its own commit
    await conn.execute("PRAGMA journal_mode = WAL")
    await conn.execute("PRAGMA synchronous = FULL")
    await conn.execute("CREATE TABLE letters (id INTEGER PRIMARY KEY, body BLOB NOT NULL)")

    async def insert(request):
        cursor = await conn.execute("INSERT INTO letters (body) VALUES (?)", (await request.read(),))
        return web.json_response({"id": cursor.lastrowid}, status=201)

    async def close(_):
        await conn.close()

    app = web.Application()
    app.router.add_post("/letters", insert)
    app.on_cleanup.append(close)
    return app

web.run_app(make_app(), host="127.0.0.1", port=int(sys.argv[1]), print=lambda m: print(m, file=sys.stderr, flush=True))
"""

LETTER = ("I would like you to know what the months after were like for me and for my family. " * 24).encode()


@dataclass
class Held:
    """A state-changing request the SDK made ready, held back to be sent in a timed phase."""
    headers: dict[str, str]
    path: str
    meta: Any
    content: bytes | None = None  # sealed content, sent as the multipart "content" part
    item_id: str = ""


class Holding(Client):
    """The SDK's own client, whose final state-changing request is held instead of sent."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.held: list[Held] = []

    async def _upload(self, path: str, meta: dict[str, Any], sealed: Sealed | None, progress: Any) -> dict[str, Any]:
        content = sealed.path.read_bytes() if sealed is not None else None  # small letters only
        item_id = meta["manifest"]["item_id"] if "manifest" in meta else path.split("/")[3]
        self.held.append(Held(self._headers(), path, meta, content, item_id))
        return {"id": item_id}

    async def call(self, method: str, path: str, *, json_body: Any = None, data: Any = None) -> Any:
        if method == "POST" and path.endswith("/receipt"):
            self.held.append(Held(self._headers(), path, json_body, None, path.split("/")[3]))
            return {}
        return await super().call(method, path, json_body=json_body, data=data)


@dataclass
class Phase:
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    wall: float = 0.0
    server_cpu: float = 0.0
    own_cpu: float = 0.0
    commits: float = 0.0
    writes: float = 0.0


async def timed(phase: Phase, workers: list[list[Callable[[], Awaitable[None]]]], pid: int) -> None:
    """Each worker sends its requests one after another; all workers at once."""

    async def work(steps: list[Callable[[], Awaitable[None]]]) -> None:
        for step in steps:
            start = time.perf_counter()
            await step()
            phase.latencies.append(time.perf_counter() - start)

    cpu0, own0, start = cpu_seconds(pid), own_cpu_seconds(), time.perf_counter()
    await asyncio.gather(*(work(steps) for steps in workers))
    phase.wall = time.perf_counter() - start
    phase.server_cpu, phase.own_cpu = cpu_seconds(pid) - cpu0, own_cpu_seconds() - own0


async def main(options: argparse.Namespace) -> int:
    # Each victim sends --each letters today: lift the relay's daily quota out of the way.
    os.environ["RELAY_QUOTA_ITEMS_PER_DAY"] = str(max(12, options.each * 2))
    phases: dict[str, Phase] = {}
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        (root / "bare.py").write_text(BARE)
        port = free_port()
        connector = aiohttp.TCPConnector(limit=0)
        async with (local_relay(root / "relay-data") as running,
                    child(sys.executable, str(root / "bare.py"), str(port), str(root / "bare.sqlite3")) as bare,
                    aiohttp.ClientSession(connector=connector) as http):
            assert running.code
            started = time.perf_counter()
            world = await build_world(running.url, running.code, kdf=TEST_KDF, http=http)
            people = await populate(world, http, cases=options.clients, mediators=max(1, options.clients // 5),
                                    client=Holding)
            setup_s = time.perf_counter() - started
            # Few at a time: each opening at the desk or the kiosk holds a thread of the default
            # executor (relay.client.sdk.transfer._Opener), and with all of them held the SDK
            # deadlocks (cores + 4 threads: 6 here).
            gate = asyncio.Semaphore(3)

            async def prepare(make: Callable[[Any], Awaitable[None]]) -> None:
                async def one(case: Any) -> None:
                    async with gate:
                        await make(case)
                await asyncio.gather(*(one(case) for case in people.cases))

            async def counters() -> tuple[float, float]:
                async with http.get(running.url + "/metrics") as answer:
                    text = await answer.text()
                found = [re.search(rf"^{name}_total ([0-9.e+]+)$", text, re.MULTILINE)
                         for name in ("relay_db_commits", "relay_db_writes")]
                assert found[0] and found[1], "the relay's /metrics lacks its commit counters"
                return float(found[0].group(1)), float(found[1].group(1))

            def sender(phase: Phase, held: Held) -> Callable[[], Awaitable[None]]:
                async def send() -> None:
                    try:
                        if held.content is None:
                            request = http.post(running.url + held.path, json=held.meta, headers=held.headers)
                        else:
                            with aiohttp.MultipartWriter("form-data") as form:
                                form.append_json(held.meta).set_content_disposition("form-data", name="meta")
                                form.append(held.content, {"Content-Type": "application/octet-stream"}
                                            ).set_content_disposition("form-data", name="content", filename="sealed.bin")
                            request = http.post(running.url + held.path, data=form, headers=held.headers)
                        async with request as answer:
                            await answer.read()
                            if answer.status not in (200, 201):
                                phase.errors.append(f"{held.path.split('/')[-1]}: {answer.status}")
                    except aiohttp.ClientError as exc:
                        phase.errors.append(f"{held.path}: {type(exc).__name__}")
                return send

            async def relay_phase(name: str, held: dict[str, list[Held]]) -> dict[str, list[str]]:
                """Send each case's held requests, one worker per case; each case's item ids."""
                phase = phases[name] = Phase()
                work = [[sender(phase, h) for h in held[case.id]] for case in people.cases]
                commits0, writes0 = await counters()
                spy = None
                if options.py_spy:  # where the relay's GIL time goes in this phase (collapsed stacks)
                    out = options.profile.with_name(f"{options.profile.stem}-{name}{options.profile.suffix}")
                    spy = await asyncio.create_subprocess_exec(
                        options.py_spy, "record", "--gil", "--pid", str(running.process.pid), "--format", "raw",
                        "--output", str(out), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
                await timed(phase, work, running.process.pid)
                if spy is not None:
                    spy.send_signal(signal.SIGINT)  # py-spy writes what it has and stops
                    await spy.wait()
                commits1, writes1 = await counters()
                phase.commits, phase.writes = commits1 - commits0, writes1 - writes0
                return {case_id: [h.item_id for h in requests] for case_id, requests in held.items()}

            def taken(client: Any) -> list[Held]:
                assert isinstance(client, Holding)
                held, client.held = client.held, []
                return held

            total = options.clients * options.each * 3

            async def bare_phase(name: str) -> None:
                phase = phases[name] = Phase()

                def insert() -> Callable[[], Awaitable[None]]:
                    async def send() -> None:
                        try:
                            async with http.post(f"http://127.0.0.1:{port}/letters", data=LETTER) as answer:
                                await answer.read()
                                if answer.status != 201:
                                    phase.errors.append(f"bare: {answer.status}")
                        except aiohttp.ClientError as exc:
                            phase.errors.append(f"bare: {type(exc).__name__}")
                    return send

                per_worker = total // options.clients
                await timed(phase, [[insert() for _ in range(per_worker)] for _ in range(options.clients)], bare.pid)

            await bare_phase("bare (before)")

            async def letters(case: Any) -> None:
                for _ in range(options.each):
                    await case.victim.send(case_id=case.id, recipient=str(case.offender.person_id),
                                           src=io.BytesIO(LETTER))

            await prepare(letters)
            by_case = await relay_phase("submissions", {case.id: taken(case.victim) for case in people.cases})

            async def releases(case: Any) -> None:
                for item_id in by_case[case.id]:
                    await case.desk.release(item_id)

            await prepare(releases)
            # A desk serves several cases: each case's worker sends that case's decisions, in order.
            decisions = {held.item_id: held for desk in people.desks for held in taken(desk)}
            await relay_phase("decisions", {case.id: [decisions[i] for i in by_case[case.id]] for case in people.cases})

            async def receipts(case: Any) -> None:
                for item_id in by_case[case.id]:
                    await case.offender.fetch(item_id, io.BytesIO())

            await prepare(receipts)
            await relay_phase("receipts", {case.id: taken(case.offender) for case in people.cases})
            await bare_phase("bare (after)")
            relay_peak, bare_peak = rss_mib(running.process.pid, "VmHWM"), rss_mib(bare.pid, "VmHWM")
            await people.close()

    print(f"write throughput: {options.clients} concurrent clients, {options.each} letters each (submitted,"
          f" released, receipted), each durable before acknowledged; {cores()} cores (set up through the SDK in"
          f" {setup_s:.0f} s)" + (" (quick: checks it runs, not the figures)" if options.quick else ""))
    relay_names = ("submissions", "decisions", "receipts")
    for name, phase in phases.items():
        rate = len(phase.latencies) / phase.wall
        batch = f"  {phase.writes / phase.commits:5.1f} writes a commit" if phase.commits else ""
        print(f"  {name:16s} {rate:8.1f} a second  p50 {quantile(phase.latencies, 0.5) * 1000:7.1f} ms"
              f"  p99 {quantile(phase.latencies, 0.99) * 1000:7.1f} ms  (server CPU {phase.server_cpu / phase.wall:4.2f}"
              f" cores, this client {phase.own_cpu / phase.wall:4.2f}){batch}")
    relay_latencies = [x for n in relay_names for x in phases[n].latencies]
    relay_rate = len(relay_latencies) / sum(phases[n].wall for n in relay_names)
    bare_latencies = phases["bare (before)"].latencies + phases["bare (after)"].latencies
    bare_rate = len(bare_latencies) / (phases["bare (before)"].wall + phases["bare (after)"].wall)
    print(f"  relay, all state changes: {relay_rate:8.1f} a second  p99 {quantile(relay_latencies, 0.99) * 1000:7.1f} ms")
    print(f"  bare durable insert:      {bare_rate:8.1f} a second  p99 {quantile(bare_latencies, 0.99) * 1000:7.1f} ms")
    print(f"  ratio:                    {relay_rate / bare_rate:8.3f}  (goal: at least 0.3)")
    errors = [e for p in phases.values() for e in p.errors]
    print(f"  errors: {len(errors)}" + (f" (first: {errors[:5]})" if errors else ""))
    print(f"  peak RSS: relay server {relay_peak:.1f} MiB, bare server {bare_peak:.1f} MiB,"
          f" client {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f} MiB")
    return 1 if errors else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--each", type=int, default=20, help="letters each client's case goes through")
    parser.add_argument("--py-spy", help="path of py-spy: sample the relay during each relay phase")
    parser.add_argument("--profile", type=Path, default=Path("writes-profile.txt"),
                        help="where py-spy writes (the phase's name is added)")
    parser.add_argument("--quick", action="store_true", help="10 clients, 3 letters each (CI)")
    options = parser.parse_args()
    if options.quick:
        options.clients, options.each = 10, 3
    sys.exit(asyncio.run(main(options)))
