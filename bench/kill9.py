"""Durability under kill -9: many concurrent clients change state (victims submit letters,
mediators release them, offenders open them and send receipts, the coordinator withdraws a
victim's consent now and then) while the relay is killed with SIGKILL at random moments and
restarted on the same data directory, again and again.

    .venv/bin/python bench/kill9.py [--rounds 30] [--cases 8] [--seed N] [--quick]

After every restart (and once more at the end, with the relay stopped) it checks, from the
database file itself:

- every acknowledged change is there: each acknowledged submission is an item, each
  acknowledged release is released (or delivered, or held by a later withdrawal), each
  acknowledged receipt is delivered, each acknowledged withdrawal is withdrawn, each with its
  entry in the audit chain;
- every blob a row names exists, whole (its size and BLAKE3-256 are the row's, for originals);
- nothing was delivered past a withdrawal (no item of a withdrawn participant opened after it);
- the audit chain verifies (``relay audit verify``), and still holds the head recorded at the
  previous check (``--expect-head``: no acknowledged entry went missing from its end).

Any failed check fails the run (exit 1). Printed: rounds, acknowledged changes of each kind,
requests cut off by a kill, refusals by problem type, the share of acknowledged changes still
there at the end (the ratio line: 1 is the only passing figure), and any server error answered.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import random
import re
import signal
import sqlite3
import subprocess
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

from _common import free_port  # noqa: E402
from _world import Case, populate  # noqa: E402

from relay.client.demo import local_relay  # noqa: E402
from relay.client.kdf import TEST_KDF  # noqa: E402
from relay.client.scenario import build_world  # noqa: E402
from relay.client.sdk import Client  # noqa: E402
from relay.client.sdk.base import ProblemError  # noqa: E402
from storage.hashing import new_hasher  # noqa: E402

LETTER = b"What the months after were like, for me and for my family. " * 20


@dataclass
class Acked:
    """What the relay acknowledged (a 2xx answer reached the client): it must survive."""
    submitted: dict[str, str] = field(default_factory=dict)  # item id -> case id
    released: set[str] = field(default_factory=set)
    delivered: set[str] = field(default_factory=set)
    withdrawn: dict[str, str] = field(default_factory=dict)  # case id -> victim's person id
    cut_off: int = 0  # requests whose answer never came (the kill): either outcome is fine
    refused: dict[str, int] = field(default_factory=dict)  # problems answered (a conflict, a hold), by type
    errors: list[dict[str, Any]] = field(default_factory=list)  # server errors' problem documents


def _lost_connection(exc: BaseException) -> bool:
    return isinstance(exc, (aiohttp.ClientError, ConnectionError, asyncio.TimeoutError))


async def _step(acked: Acked, action: Callable[[], Awaitable[None]]) -> bool:
    """Run one change; False once the relay is gone (the worker stops)."""
    try:
        await action()
    except ProblemError as problem:
        if problem.status >= 500:
            acked.errors.append(problem.problem)
        acked.refused[f"{problem.status} {problem.type}"] = acked.refused.get(f"{problem.status} {problem.type}", 0) + 1
    except Exception as exc:
        if _lost_connection(exc):
            acked.cut_off += 1
            return False
        raise
    return True


async def victim_worker(case: Case, acked: Acked, rng: random.Random) -> None:
    async def send() -> None:
        sent = await case.victim.send(case_id=case.id, recipient=str(case.offender.person_id), src=io.BytesIO(LETTER))
        acked.submitted[sent["id"]] = case.id

    while await _step(acked, send):
        await asyncio.sleep(rng.uniform(0, 0.05))


async def desk_worker(case: Case, acked: Acked, rng: random.Random) -> None:
    async def release_pending() -> None:
        queue = await case.desk.call("GET", "/v1/review/queue")
        for item in queue:
            if item["case_id"] == case.id and item["state"] == "pending_review":
                await case.desk.release(item["id"])
                acked.released.add(item["id"])

    while await _step(acked, release_pending):
        await asyncio.sleep(rng.uniform(0, 0.05))


async def offender_worker(case: Case, acked: Acked, rng: random.Random) -> None:
    async def open_released() -> None:
        for item in await case.offender.call("GET", "/v1/inbox"):
            if item["state"] == "released" and item["case_id"] == case.id:
                await case.offender.fetch(item["id"], io.BytesIO())
                acked.delivered.add(item["id"])

    while await _step(acked, open_released):
        await asyncio.sleep(rng.uniform(0, 0.05))


async def withdraw(console: Client, case: Case, acked: Acked, delay: float) -> None:
    await asyncio.sleep(delay)

    async def act() -> None:
        await console.call("POST", f"/v1/cases/{case.id}/participants/{case.victim.person_id}/consent",
                           json_body={"consent": "withdrawn"})
        acked.withdrawn[case.id] = str(case.victim.person_id)

    await _step(acked, act)


def check(data_dir: Path, acked: Acked, expect_head: str | None) -> tuple[list[str], str]:
    """Every failed promise, and the audit head now."""
    failures: list[str] = []
    conn = sqlite3.connect(f"file:{data_dir / 'relay.sqlite3'}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        rows = {r["id"]: dict(r) for r in conn.execute(
            "SELECT id, case_id, state, decision, size, hash, blob_id, delivery_blob_id, poster_blob_id,"
            " sender_id, recipient_id, first_opened_at, hold_code FROM items")}
        audited = {(r["action"], r["item_id"]) for r in conn.execute(
            "SELECT action, item_id FROM audit_log WHERE item_id IS NOT NULL")}
        withdrawals = {(r["case_id"], r["subject"]) for r in conn.execute(
            "SELECT case_id, subject FROM audit_log WHERE action = 'case.consent_withdrawn'")}
        consent = {(r["case_id"], r["person_id"]): dict(r) for r in conn.execute(
            "SELECT case_id, person_id, consent, consent_changed_at FROM case_participants")}
    finally:
        conn.close()
    for item_id in acked.submitted:
        row = rows.get(item_id)
        if row is None or row["state"] in ("uploading", "expired", "purged"):
            failures.append(f"acknowledged submission {item_id} missing ({row and row['state']})")
        elif ("item.submitted", item_id) not in audited:
            failures.append(f"acknowledged submission {item_id} has no audit entry")
    for item_id in acked.released:
        row = rows.get(item_id)
        if row is None or row["decision"] != "release" or row["state"] not in ("released", "delivered", "held"):
            failures.append(f"acknowledged release {item_id} missing ({row and (row['state'], row['decision'])})")
        elif ("item.release", item_id) not in audited:
            failures.append(f"acknowledged release {item_id} has no audit entry")
    for item_id in acked.delivered:
        row = rows.get(item_id)
        if row is None or row["state"] != "delivered" or row["first_opened_at"] is None:
            failures.append(f"acknowledged receipt {item_id} missing ({row and row['state']})")
        elif ("item.delivered", item_id) not in audited:
            failures.append(f"acknowledged receipt {item_id} has no audit entry")
    for case_id, person_id in acked.withdrawn.items():
        member = consent.get((case_id, person_id))
        if member is None or member["consent"] != "withdrawn" or (case_id, person_id) not in withdrawals:
            failures.append(f"acknowledged withdrawal in {case_id} missing")
    for row in rows.values():
        for column in ("blob_id", "delivery_blob_id", "poster_blob_id"):
            blob_id = row[column]
            if blob_id is None:
                continue
            path = data_dir / "blobs" / "objects" / blob_id[:2] / blob_id
            if not path.is_file():
                failures.append(f"item {row['id']} ({row['state']}) names {column} {blob_id}: no such file")
            elif column == "blob_id":
                hasher = new_hasher()
                hasher.update(path.read_bytes())
                if path.stat().st_size != row["size"] or hasher.hexdigest() != row["hash"]:
                    failures.append(f"item {row['id']}: its blob is not what was acknowledged")
        # Nothing delivered past a withdrawal: an item between a withdrawn participant and the
        # other side is never released or opened after the withdrawal.
        for who in (row["sender_id"], row["recipient_id"]):
            member = consent.get((row["case_id"], who))
            if member is None or member["consent"] != "withdrawn":
                continue
            if row["state"] == "released":
                failures.append(f"item {row['id']} is released although {who} withdrew")
            if row["first_opened_at"] is not None and row["first_opened_at"] > member["consent_changed_at"]:
                failures.append(f"item {row['id']} was opened after {who} withdrew")
    verify = [sys.executable, "-m", "relay", "audit", "verify", "--data-dir", str(data_dir)]
    if expect_head:
        verify += ["--expect-head", expect_head]
    done = subprocess.run(verify, capture_output=True, text=True, timeout=120)
    head = ""
    if done.returncode != 0:
        failures.append(f"audit verify failed: {done.stderr.strip() or done.stdout.strip()}")
    else:
        found_head = re.search(r"head ([0-9a-f]{64})", done.stdout)
        if found_head is None:
            failures.append(f"audit verify printed no head: {done.stdout.strip()}")
        head = found_head.group(1) if found_head else ""
    leftovers = list((data_dir / "blobs" / "tmp").glob("*.part"))
    if leftovers:
        failures.append(f"{len(leftovers)} temp files left after the start-up sweep")
    return failures, head


async def main(options: argparse.Namespace) -> int:
    rng = random.Random(options.seed)
    os.environ["RELAY_QUOTA_ITEMS_PER_DAY"] = "100000"
    os.environ["RELAY_QUOTA_PENDING_BYTES"] = str(10 ** 12)
    acked = Acked()
    failures: list[str] = []
    head: str | None = None
    ran: list[float] = []
    with tempfile.TemporaryDirectory() as scratch:
        data_dir = Path(scratch) / "data"
        port = free_port()
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, force_close=True)) as http:
            people = None
            console = None
            for round_no in range(options.rounds + 1):
                async with local_relay(data_dir, port) as running:
                    if people is None:
                        assert running.code
                        world = await build_world(running.url, running.code, kdf=TEST_KDF, http=http)
                        people = await populate(world, http, cases=options.cases,
                                                mediators=max(1, options.cases // 4))
                        console = people.clients[0]
                    else:
                        found, head = check(data_dir, acked, head)
                        for failure in found:
                            print(f"  round {round_no}: {failure}", flush=True)
                        failures += found
                    if round_no == options.rounds:
                        break  # the last start only checks; it stops normally
                    assert console is not None
                    tasks = []
                    for case in people.cases:
                        tasks += [asyncio.create_task(victim_worker(case, acked, rng)),
                                  asyncio.create_task(desk_worker(case, acked, rng)),
                                  asyncio.create_task(offender_worker(case, acked, rng))]
                    life = rng.uniform(options.min_life, options.max_life)
                    live = [c for c in people.cases if c.id not in acked.withdrawn]
                    if live and rng.random() < options.withdraw_chance:
                        tasks.append(asyncio.create_task(withdraw(console, rng.choice(live), acked,
                                                                  rng.uniform(0, life))))
                    await asyncio.sleep(life)
                    running.process.send_signal(signal.SIGKILL)
                    await running.process.wait()
                    ran.append(life)
                    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
                    for outcome in outcomes:
                        if isinstance(outcome, BaseException):
                            failures.append(f"round {round_no}: a worker failed: {outcome!r}")
                    print(f"round {round_no + 1}/{options.rounds}: killed after {life:.2f} s; acknowledged so far:"
                          f" {len(acked.submitted)} submissions, {len(acked.released)} releases,"
                          f" {len(acked.delivered)} receipts, {len(acked.withdrawn)} withdrawals", flush=True)
            # Stopped normally now: the file itself, once more, with nothing running.
            found, head = check(data_dir, acked, head)
            failures += found
            lost = sum(1 for failure in found if failure.startswith("acknowledged"))
            if people is not None:
                for client in people.clients:
                    client.session_token = None  # the relay is stopped: no logout to send
                await people.close()
    print(f"kill -9 durability: {options.rounds} kills, {options.cases} cases ({options.cases * 3} concurrent"
          f" clients and the coordinator), {sum(ran):.0f} s under load")
    print(f"  acknowledged: {len(acked.submitted)} submissions, {len(acked.released)} releases,"
          f" {len(acked.delivered)} receipts, {len(acked.withdrawn)} withdrawals;"
          f" {acked.cut_off} requests cut off by a kill;"
          f" refused: {dict(sorted(acked.refused.items())) or 'none'}")
    changes = len(acked.submitted) + len(acked.released) + len(acked.delivered) + len(acked.withdrawn)
    print(f"  ratio (acknowledged changes there after the last kill): {(changes - lost) / max(changes, 1):.3f}"
          "  (goal: 1)")
    if acked.errors:
        print(f"  server errors answered: {len(acked.errors)} (first: {acked.errors[:3]})")
    print(f"  failed checks: {len(failures)}" + (f" (first: {failures[:5]})" if failures else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=30, help="kills")
    parser.add_argument("--cases", type=int, default=8, help="cases, each with a victim, an offender and a desk")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--min-life", type=float, default=0.3, help="shortest run before a kill (s)")
    parser.add_argument("--max-life", type=float, default=2.5, help="longest run before a kill (s)")
    parser.add_argument("--withdraw-chance", type=float, default=0.2, help="of a withdrawal in a round")
    parser.add_argument("--quick", action="store_true", help="5 kills, 4 cases")
    options = parser.parse_args()
    if options.quick:
        options.rounds, options.cases = 5, 4
    print(f"seed {options.seed}", flush=True)
    sys.exit(asyncio.run(main(options)))
