"""The screening decision with 10,000 conditions and 1,000 approvals in the database, per request,
against the same request with none: both measured alternately in one run.

    .venv/bin/python bench/screening.py [--rounds 5] [--requests 1000] [--quick]

``--quick`` (what CI runs, tests/test_benchmarks_quick.py) makes small databases and few
requests: it checks the benchmark still runs, not the figures.

Each "request" is what a fetch does: load the case's facts (members, conditions on its members,
approvals on the case) in one read snapshot from a real SQLite file, then decide. Two layouts:
`spread` (the realistic one: 10,000 conditions over 5,000 other people, 5 on this case's
offender; 1,000 approvals over other cases, 2 on this case) and `worst` (all 10,000 conditions
restrict this case's offender and all 1,000 approvals are on this case).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiosqlite

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from relay.clock import SystemClock  # noqa: E402
from relay.server.context import Context  # noqa: E402
from relay.server.services import screening  # noqa: E402
from relay.server.settings import Settings  # noqa: E402
from storage.blobs import BlobStore  # noqa: E402
from storage.db import Database  # noqa: E402

NOW = "2026-11-21T12:00:00.000000Z"


async def make_db(path: Path, layout: str | None, quick: bool = False) -> Database:
    db = await Database.open(path)

    async def fill(conn: aiosqlite.Connection) -> None:
        # Columns named everywhere, so a migration that adds one cannot break the fill again.
        await conn.execute("INSERT INTO institutions (id, name, created_at) VALUES ('ins_0', 'A', ?)", (NOW,))
        await conn.execute(
            "INSERT INTO people (id, role, label, sign_pk, box_pk, enrollment, enrollment_sig, created_at)"
            " VALUES ('per_mediator', 'mediator', 'm', 'per_mediator', 'k', '{}', 's', ?)", (NOW,))
        people = [("per_victim", "victim"), ("per_offender", "offender")]
        others = (5000 if not quick else 50) if layout else 0
        people += [(f"per_{n:012}", "offender" if n % 2 else "victim") for n in range(others)]
        await conn.executemany(
            "INSERT INTO people (id, role, relation, label, sign_pk, box_pk, enrollment, enrollment_sig, created_at)"
            " VALUES (?, 'participant', ?, 'x', ?, 'k', '{}', 's', ?)", [(p, r, p, NOW) for p, r in people])
        approvals, conditions = (1000, 10_000) if not quick else (10, 100)
        cases = [("cas_main",)] + ([(f"cas_{n:08}",) for n in range(approvals)] if layout else [])
        await conn.executemany("INSERT INTO cases (id, institution_id, referral_source, status, created_at, updated_at)"
                               " VALUES (?, 'ins_0', 'victim', 'open', ?, ?)", [(c, NOW, NOW) for (c,) in cases])
        await conn.executemany("INSERT INTO case_participants (case_id, person_id, consent, consent_changed_at)"
                               " VALUES ('cas_main', ?, 'given', ?)", [("per_victim", NOW), ("per_offender", NOW)])
        await conn.execute("INSERT INTO case_mediators (case_id, person_id) VALUES ('cas_main', 'per_mediator')")
        if not layout:
            return
        on_this_case = conditions if layout == "worst" else 5
        rows = []
        for n in range(conditions):
            restricted = "per_offender" if n < on_this_case else f"per_{n % others:012}"
            protected = ["per_victim"] if n < on_this_case else [f"per_{(n + 1) % others:012}"]
            rows.append((f"cnd_{n:012}", restricted, json.dumps(protected), n % 2, NOW, NOW, NOW))
        await conn.executemany(
            "INSERT INTO conditions (id, kind, reference, restricted_id, protected_people, direction, effective_from,"
            " program_exception, version, created_at, updated_at) VALUES (?, 'court_order', 'ref', ?, ?, 'both',"
            " ?, ?, 1, ?, ?)".replace("?, ?, 1, ?, ?)", "'2026-01-01T00:00:00.000000Z', ?, 1, ?, ?)"),
            [(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows])
        approvals_here = approvals if layout == "worst" else 2
        await conn.executemany(
            "INSERT INTO approvals (id, case_id, condition_id, directions, kinds, approved_by, approved_at,"
            " valid_until, revoked_at, revoked_by) VALUES (?, ?, ?, '[\"from_restricted\",\"to_restricted\"]',"
            " '[\"letter\"]', 'per_victim', '2026-01-01T00:00:00.000000Z', '2099-01-01T00:00:00.000000Z', NULL, NULL)",
            [(f"apr_{n:012}", "cas_main" if n < approvals_here else f"cas_{n:08}", f"cnd_{n:012}")
             for n in range(approvals)])

    try:
        await db.write(fill)
    except BaseException:
        await db.close()  # aiosqlite's threads would otherwise keep the process alive
        raise
    return db


async def timed(ctx: Context, requests: int) -> float:
    start = time.perf_counter()
    for _ in range(requests):
        decision = await screening.check(ctx, moment="fetch", case_id="cas_main", kind="letter",
                                         sender_id="per_victim", recipient_id="per_offender")
        assert decision.outcome.value in ("allow", "refer")
    return (time.perf_counter() - start) / requests * 1e6  # microseconds per request


async def main(rounds: int, requests: int, quick: bool) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        contexts: dict[str, Context] = {}
        results: dict[str, list[float]] = {name: [] for name in ("none", "spread", "worst")}
        try:  # every database opened is closed on every path, or aiosqlite's threads hang the exit
            for layout in (None, "spread", "worst"):
                name = layout or "none"
                db = await make_db(root / f"{name}.sqlite3", layout, quick)
                contexts[name] = Context(Settings(data_dir=root), db, BlobStore(root / "blobs"), SystemClock())
            for _ in range(rounds):
                for name, ctx in contexts.items():
                    # The worst case loads 10,000 rows a request: fewer requests give the same median.
                    results[name].append(await timed(ctx, requests if name != "worst" else max(5, requests // 50)))
        finally:
            for ctx in contexts.values():
                await ctx.db.close()  # aiosqlite's threads would otherwise keep the process alive
    base = statistics.median(results["none"])
    print(f"screening at fetch (load facts in one snapshot + decide), {rounds} rounds x {requests} requests"
          + (" (quick: small databases)" if quick else ""))
    for name in ("none", "spread", "worst"):
        median = statistics.median(results[name])
        print(f"  {name:6}: {median:8.1f} µs/request   ratio to none: {median / base:6.2f}")
    print(f"  ratio: {statistics.median(results['spread']) / base:.3f}  (spread to none, time per request)")
    print(f"  peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f} MiB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="small and fast: checks it runs (CI)")
    options = parser.parse_args()
    if options.quick:
        options.rounds, options.requests = 1, 20
    asyncio.run(main(options.rounds, options.requests, options.quick))
