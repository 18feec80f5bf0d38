"""Load: terminals polling their inboxes, mediators listing their queues and video uploads at
once, through a real relay process, against a bare aiohttp + aiosqlite one-select handler at the
same concurrency in the same run.

    .venv/bin/python bench/load.py [--terminals 200] [--mediators 20] [--uploads 20] [--seconds 60]
                                   [--upload-mib 4] [--quick]

The world is set up through the SDK, as people would by hand (``relay.client.scenario``): one
case per terminal participant (a victim on their own device, an offender who signs in on a kiosk
terminal of their own institution, one of ``--mediators`` mediators), each offender with
mediators' messages released in their inbox and each victim's letter waiting in a mediator's
review queue. Then, each for ``--seconds``:

* bare: each of ``--terminals`` clients asks a bare aiohttp handler for "its" inbox: the relay's
  own select of the same items and fields, through aiosqlite on a copy of the relay's database
  file (same rows, same size), answered as JSON; no authentication, no screening;
* relay, inbox only: the same clients, each a terminal session, ``GET /v1/inbox`` (device token,
  session token, screening of every item as of now);
* relay, mixed: the same, while ``--mediators`` desks list their review queues in a loop and
  ``--uploads`` participants each send ``--upload-mib`` MiB of ciphertext through tus (create,
  PATCH, delete) over and over;
* bare again, last. The baseline is both bare runs together: on this machine the bare handler
  runs its last phase half as fast again as its first (about 16,000 against 9,500 to 11,000
  requests/s, at 60 against 85 to 100 us of CPU a request), on every run, while the relay's
  inbox, measured once more at the end in a one-off experiment (not by this script), matched its
  first; a fresh connection pool per phase did not change that, and the cause is not known. Both
  bare runs are printed.

Every request must succeed (any error fails the run). Printed: requests/s, p50 and p99 latency of
the inbox requests, the server's CPU a request, the ratios against the bare handler (goal: at
least 0.5 of its throughput, p99 within 3 times), the CPU each process used (this client
included: it shares the cores), and peak memory. All clients of a phase share one
``aiohttp.ClientSession`` (one connection pool), new for each phase and warmed by one request a
client before the timing starts. ``--quick``
(CI: tests/test_benchmarks_quick.py) runs 20 terminals, 4 mediators and 4 uploads for 3 seconds
each: it checks the benchmark runs and nothing fails, not the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import resource
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import child, cores, cpu_seconds, free_port, own_cpu_seconds, quantile, rss_mib  # noqa: E402
from _world import Case, Population, populate  # noqa: E402

from relay.client.demo import local_relay  # noqa: E402
from relay.client.kdf import TEST_KDF  # noqa: E402
from relay.client.scenario import World, build_world  # noqa: E402
from relay.client.sdk import Client  # noqa: E402

BARE = """
import sys
import aiosqlite
from aiohttp import web

# The relay's own inbox select, answering the fields the relay's inbox answers.
INBOX = ("SELECT id, case_id, kind, sender_id, state, decided_at, decided_by, first_opened_at FROM items"
         " WHERE recipient_id = ? AND (state IN ('released', 'delivered') OR (state = 'held' AND held_from = 'released'))"
         " ORDER BY decided_at")

async def make_app():
    conn = await aiosqlite.connect(f"file:{sys.argv[2]}?mode=ro", uri=True, isolation_level=None)
    conn.row_factory = aiosqlite.Row

    async def inbox(request):
        rows = await conn.execute_fetchall(INBOX, (request.query["person"],))
        return web.json_response([dict(r) for r in rows])

    async def close(_):
        await conn.close()

    app = web.Application()
    app.router.add_get("/inbox", inbox)
    app.on_cleanup.append(close)
    return app

web.run_app(make_app(), host="127.0.0.1", port=int(sys.argv[1]), print=lambda m: print(m, file=sys.stderr, flush=True))
"""

LETTER = ("What happened still shapes my days; I am writing to say how. " * 16).encode()
TUS = {"Tus-Resumable": "1.0.0"}


@dataclass
class Signed:
    """A signed-in device: the headers its requests carry."""
    person_id: str
    headers: dict[str, str]


def signed(client: Client) -> Signed:
    assert client.person_id is not None
    return Signed(client.person_id, client._headers())


@dataclass
class Cast:
    terminals: list[Signed]  # offenders signed in on kiosk terminals
    mediators: list[Signed]
    uploaders: list[Signed]  # victims on their own devices
    inbox_sizes: dict[str, int]
    people: Population


async def set_up(world: World, http: aiohttp.ClientSession, *, terminals: int, mediators: int, uploads: int,
                 released_each: int) -> Cast:
    """``terminals`` cases (bench/_world.py); each offender with ``released_each`` mediator's
    messages released in their inbox, each victim with a letter waiting in the review queue."""
    people = await populate(world, http, cases=terminals, mediators=mediators)
    gate = asyncio.Semaphore(8)

    async def letters(case: Case) -> None:
        async with gate:
            for _ in range(released_each):  # a mediator's own message is released as it is sent
                await case.desk.send(case_id=case.id, recipient=str(case.offender.person_id), src=io.BytesIO(LETTER))
            await case.victim.send(case_id=case.id, recipient=str(case.offender.person_id), src=io.BytesIO(LETTER))

    await asyncio.gather(*(letters(case) for case in people.cases))
    return Cast(terminals=[signed(c.offender) for c in people.cases], mediators=[signed(d) for d in people.desks],
                uploaders=[signed(c.victim) for c in people.cases[:uploads]],
                inbox_sizes={str(c.offender.person_id): released_each for c in people.cases}, people=people)


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    other: dict[str, int] = field(default_factory=dict)


class Pool:
    """The timed phases' connection pool, one for all their clients, made anew for each phase."""

    def __init__(self, timeout: aiohttp.ClientTimeout) -> None:
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        assert self._session is not None
        return self._session

    async def renew(self) -> None:
        await self.close()
        # No cap below the load.
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=self.timeout)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


async def phase(seconds: float, inbox: Callable[[int], Awaitable[None]], clients: int,
                extra: list[Callable[[], Awaitable[None]]], server_pid: int) -> tuple[float, float, float]:
    """Run ``clients`` inbox loops and the ``extra`` loops for ``seconds``; wall time and the CPU
    the server and this client used meanwhile."""
    deadline = time.perf_counter() + seconds

    async def looped(step: Callable[[], Awaitable[None]]) -> None:
        while time.perf_counter() < deadline:
            await step()

    cpu0, own0, start = cpu_seconds(server_pid), own_cpu_seconds(), time.perf_counter()
    await asyncio.gather(*(looped(lambda n=n: inbox(n)) for n in range(clients)), *(looped(e) for e in extra))
    wall = time.perf_counter() - start
    return wall, cpu_seconds(server_pid) - cpu0, own_cpu_seconds() - own0


async def main(options: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        connector = aiohttp.TCPConnector(limit=0)  # one pool for every client; no cap below the load
        timeout = aiohttp.ClientTimeout(total=None, sock_read=120)
        async with (local_relay(root / "relay-data") as running,
                    aiohttp.ClientSession(connector=connector, timeout=timeout) as http):
            assert running.code
            started = time.perf_counter()
            world = await build_world(running.url, running.code, kdf=TEST_KDF, http=http)
            cast = await set_up(world, http, terminals=options.terminals, mediators=options.mediators,
                                uploads=options.uploads, released_each=options.released)
            setup_s = time.perf_counter() - started
            # The bare handler reads a copy of the relay's own file: same rows, same size.
            source = sqlite3.connect(f"file:{root / 'relay-data' / 'relay.sqlite3'}?mode=ro", uri=True)
            copy = sqlite3.connect(root / "bare.sqlite3")
            source.backup(copy)
            copy.execute("PRAGMA journal_mode = WAL")
            source.close()
            copy.close()
            (root / "bare.py").write_text(BARE)
            port = free_port()
            tallies: dict[str, Tally] = {}
            pool = Pool(timeout)
            block = os.urandom(options.upload_mib << 20)  # ciphertext is opaque to the relay
            async with child(sys.executable, str(root / "bare.py"), str(port), str(root / "bare.sqlite3")) as bare:

                def poller(tally: Tally, url: Callable[[int], str], headers: Callable[[int], dict[str, str]],
                           expect: Callable[[int], int]) -> Callable[[int], Awaitable[None]]:
                    async def poll(n: int) -> None:
                        start = time.perf_counter()
                        try:
                            async with pool.session.get(url(n), headers=headers(n)) as response:
                                body = await response.json()
                                if response.status != 200 or len(body) != expect(n):
                                    tally.errors.append(f"inbox: {response.status}, {len(body)} items")
                        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                            tally.errors.append(f"inbox: {type(exc).__name__}")
                        tally.latencies.append(time.perf_counter() - start)
                    return poll

                def terminal_poller(tally: Tally) -> Callable[[int], Awaitable[None]]:
                    return poller(tally, lambda n: running.url + "/v1/inbox", lambda n: cast.terminals[n].headers,
                                  lambda n: cast.inbox_sizes[cast.terminals[n].person_id])

                def bare_poller(tally: Tally) -> Callable[[int], Awaitable[None]]:
                    return poller(tally, lambda n: f"http://127.0.0.1:{port}/inbox?person="
                                  f"{cast.terminals[n].person_id}", lambda n: {},
                                  lambda n: cast.inbox_sizes[cast.terminals[n].person_id])

                def queue_lister(desk: Signed, tally: Tally) -> Callable[[], Awaitable[None]]:
                    async def listing() -> None:
                        try:
                            async with pool.session.get(running.url + "/v1/review/queue", headers=desk.headers) as response:
                                await response.read()
                                if response.status != 200:
                                    tally.errors.append(f"queue: {response.status}")
                        except aiohttp.ClientError as exc:
                            tally.errors.append(f"queue: {type(exc).__name__}")
                        tally.other["queue listings"] = tally.other.get("queue listings", 0) + 1
                    return listing

                def uploader(who: Signed, tally: Tally) -> Callable[[], Awaitable[None]]:
                    async def upload() -> None:
                        try:
                            async with pool.session.post(running.url + "/v1/uploads", headers={
                                    **who.headers, **TUS, "Upload-Length": str(len(block))}) as created:
                                await created.read()
                                if created.status != 201:
                                    tally.errors.append(f"upload create: {created.status}")
                                    return
                                location = running.url + created.headers["Location"]
                            async with pool.session.patch(location, data=block, headers={
                                    **who.headers, **TUS, "Upload-Offset": "0",
                                    "Content-Type": "application/offset+octet-stream"}) as sent:
                                await sent.read()
                                if sent.status != 204 or int(sent.headers["Upload-Offset"]) != len(block):
                                    tally.errors.append(f"upload patch: {sent.status}")
                            async with pool.session.delete(location, headers={**who.headers, **TUS}) as gone:
                                await gone.read()
                                if gone.status != 204:
                                    tally.errors.append(f"upload delete: {gone.status}")
                            tally.other["uploads"] = tally.other.get("uploads", 0) + 1
                        except aiohttp.ClientError as exc:
                            tally.errors.append(f"upload: {type(exc).__name__}")
                    return upload

                clients = len(cast.terminals)
                runs: dict[str, tuple[float, float, float]] = {}
                async def warmed(poller_of: Callable[[Tally], Callable[[int], Awaitable[None]]]) -> None:
                    """A new connection pool, then one untimed request a client: every phase starts
                    alike (a pool kept across phases had, after the relay's long phases, only
                    connections the bare server had closed and the client reopened, and the bare
                    handler then ran half as fast again as in its first phase)."""
                    await pool.renew()
                    poll = poller_of(Tally())
                    await asyncio.gather(*(poll(n) for n in range(clients)))

                await warmed(bare_poller)
                tallies["bare"] = Tally()
                runs["bare"] = await phase(options.baseline_seconds, bare_poller(tallies["bare"]), clients, [],
                                           bare.pid)
                tallies["inbox"] = Tally()
                await warmed(terminal_poller)

                async def profiled(name: str, seconds: float, run: Awaitable[tuple[float, float, float]]
                                   ) -> tuple[float, float, float]:
                    """``run``, with the relay sampled by py-spy meanwhile (where its GIL time goes)."""
                    if not options.py_spy:
                        return await run
                    out = options.profile.with_name(f"{options.profile.stem}-{name}{options.profile.suffix}")
                    spy = await asyncio.create_subprocess_exec(
                        options.py_spy, "record", "--gil", "--pid", str(running.process.pid), "--format", "raw",
                        "--duration", str(int(seconds)), "--output", str(out),
                        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
                    try:
                        return await run
                    finally:
                        await spy.wait()

                runs["inbox"] = await profiled("inbox", options.baseline_seconds, phase(
                    options.baseline_seconds, terminal_poller(tallies["inbox"]), clients, [], running.process.pid))
                mixed = tallies["mixed"] = Tally()
                await warmed(terminal_poller)
                extra = ([queue_lister(d, mixed) for d in cast.mediators]
                         + [uploader(u, mixed) for u in cast.uploaders])
                runs["mixed"] = await profiled("mixed", options.seconds, phase(
                    options.seconds, terminal_poller(mixed), clients, extra, running.process.pid))
                # The bare handler again, last: the machine's state drifts (other work, the host), and
                # the baseline is both runs together, so neither side gets only the quieter moments.
                tallies["bare-after"] = Tally()
                await warmed(bare_poller)
                runs["bare-after"] = await phase(options.baseline_seconds, bare_poller(tallies["bare-after"]),
                                                 clients, [], bare.pid)
                await pool.close()
                relay_peak, bare_peak = rss_mib(running.process.pid, "VmHWM"), rss_mib(bare.pid, "VmHWM")
            await cast.people.close()

    def figures(name: str) -> tuple[float, float, float]:
        tally, (wall, _, _) = tallies[name], runs[name]
        return len(tally.latencies) / wall, quantile(tally.latencies, 0.5) * 1000, quantile(tally.latencies, 0.99) * 1000

    print(f"load: {clients} terminals polling their inboxes ({options.released} released items each),"
          f" {len(cast.mediators)} mediators, {len(cast.uploaders)} uploads of {options.upload_mib} MiB;"
          f" {options.baseline_seconds:g} s per baseline phase, {options.seconds:g} s mixed; {cores()} cores"
          f" (set up through the SDK in {setup_s:.0f} s)" + (" (quick: checks it runs, not the figures)"
                                                             if options.quick else ""))
    rates = {name: figures(name) for name in runs}
    for name, label in (("bare", "bare aiohttp + aiosqlite (before)"), ("inbox", "relay, inbox only"),
                        ("mixed", "relay, mixed load"), ("bare-after", "bare aiohttp + aiosqlite (after)")):
        rate, p50, p99 = rates[name]
        wall, server_cpu, own_cpu = runs[name]
        # CPU a request: steadier than a rate on a shared machine (the mixed phase's CPU also
        # served the listings and the uploads, so it has none).
        each = "" if name == "mixed" else f", {server_cpu / len(tallies[name].latencies) * 1e6:4.0f} us a request"
        print(f"  {label:33s} {rate:8.1f} requests/s  p50 {p50:7.1f} ms  p99 {p99:7.1f} ms"
              f"  (server CPU {server_cpu / wall:4.2f} cores{each}; this client {own_cpu / wall:4.2f})")
    # The baseline: both bare runs together (requests over their summed time; p99 of all).
    both = tallies["bare"].latencies + tallies["bare-after"].latencies
    rates["bare"] = (len(both) / (runs["bare"][0] + runs["bare-after"][0]), quantile(both, 0.5) * 1000,
                     quantile(both, 0.99) * 1000)
    print(f"  bare, both runs:                  {rates['bare'][0]:8.1f} requests/s  p99 {rates['bare'][2]:7.1f} ms")
    mixed_other = tallies["mixed"].other
    print(f"  meanwhile (mixed): {mixed_other.get('queue listings', 0)} queue listings,"
          f" {mixed_other.get('uploads', 0)} uploads of {options.upload_mib} MiB")
    for name in ("inbox", "mixed"):
        print(f"  ratio of throughput, {name:5s}:       {rates[name][0] / rates['bare'][0]:8.3f}  (goal: at least 0.5)")
        print(f"  ratio of p99, {name:5s}:              {rates[name][2] / rates['bare'][2]:8.3f}  (goal: at most 3)")
    errors = [e for t in tallies.values() for e in t.errors]
    print(f"  errors: {len(errors)}" + (f" (first: {errors[:5]})" if errors else ""))
    print(f"  peak RSS: relay server {relay_peak:.1f} MiB, bare server {bare_peak:.1f} MiB,"
          f" client {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f} MiB")
    return 1 if errors else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--terminals", type=int, default=200)
    parser.add_argument("--mediators", type=int, default=20)
    parser.add_argument("--uploads", type=int, default=20)
    parser.add_argument("--released", type=int, default=3, help="released items in each terminal's inbox")
    parser.add_argument("--upload-mib", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=60, help="the mixed load's duration")
    parser.add_argument("--baseline-seconds", type=float, default=20, help="the bare and inbox-only phases'")
    parser.add_argument("--py-spy", help="path of py-spy: sample the relay during its two phases (GIL holder,"
                        " collapsed stacks)")
    parser.add_argument("--profile", type=Path, default=Path("load-profile.txt"),
                        help="where py-spy writes (-inbox and -mixed are added to the name)")
    parser.add_argument("--quick", action="store_true", help="20 terminals, 4 mediators, 4 uploads, 3 s (CI)")
    options = parser.parse_args()
    if options.quick:
        options.terminals, options.mediators, options.uploads, options.released = 20, 4, 4, 2
        options.upload_mib, options.seconds, options.baseline_seconds = 2, 3, 3
    sys.exit(asyncio.run(main(options)))
