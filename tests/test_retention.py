"""Retention through a real relay: every rule on an injected clock, legal hold, overrides, the
grace period, withdrawal erasure, the worker inside the server, crash safety, and a byte scan
that nothing of a purged item remains in the blob directory or the database."""

from __future__ import annotations

import asyncio
import io
import shutil
import sqlite3
import subprocess
import sys
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from relay.client.kdf import TEST_KDF
from relay.client.scenario import World, build_world
from relay.client.sdk import ProblemError
from relay.server.app import create_app
from relay.server.context import CONTEXT, Context
from relay.server.services import retention
from relay.server.settings import Settings
from storage import audit
from storage.blobs import BlobStore
from storage.db import Database

from .conftest import MovableClock, Relay, close, everyone

DAY = timedelta(days=1)
MINUTE = timedelta(minutes=1)


def ctx_of(relay: Relay) -> Context:
    return relay.server.app[CONTEXT]


def letter(text: str = "a letter") -> io.BytesIO:
    return io.BytesIO(text.encode())


async def one_of_each(world: World) -> dict[str, str]:
    """An item in every state retention has a rule for, all in case A, all at about the same time."""
    coordinator, victim, mediator, offender = await everyone(world)
    try:
        to_offender = {"case_id": world.case_id, "recipient": world.offender.person_id}
        to_victim = {"case_id": world.case_id, "recipient": world.victim.person_id}
        items = {
            "pending": (await victim.send(**to_offender, src=letter("waiting")))["id"],
            "released": (await offender.send(**to_victim, src=letter("released")))["id"],
            "delivered": (await victim.send(**to_offender, src=letter("delivered")))["id"],
            "returned": (await victim.send(**to_offender, src=letter("returned")))["id"],
            "withheld": (await offender.send(**to_victim, src=letter("withheld")))["id"],
            "to_mediators": (await victim.send(case_id=world.case_id, recipient="mediators", src=letter("q")))["id"],
        }
        await mediator.release(items["released"])
        await mediator.release(items["delivered"])
        await offender.fetch(items["delivered"], io.BytesIO())
        await mediator.return_to_sender(items["returned"], "Not yet, please.")
        await mediator.withhold(items["withheld"], "not-ready")
        return items
    finally:
        await close(coordinator, victim, mediator, offender)


def item_states(data_dir: Path) -> dict[str, str]:
    conn = sqlite3.connect(data_dir / "relay.sqlite3")
    try:
        return dict(conn.execute("SELECT id, state FROM items").fetchall())
    finally:
        conn.close()


def blob_names(data_dir: Path) -> set[str]:
    return {p.name for p in (data_dir / "blobs" / "objects").glob("??/*")}


def item_blobs(data_dir: Path, item_id: str) -> set[str]:
    conn = sqlite3.connect(data_dir / "relay.sqlite3")
    try:
        row = conn.execute("SELECT blob_id, delivery_blob_id FROM items WHERE id = ?", (item_id,)).fetchone()
    finally:
        conn.close()
    return {b for b in row if b}


async def tombstones(ctx: Context) -> dict[str, str]:
    return {e["item_id"]: e["code"] for e in await audit.entries(ctx.db, limit=100000) if e["action"] == "item.purged"}


async def test_every_rule_takes_its_items_on_time_and_leaves_a_tombstone(relay: Relay, world: World) -> None:
    items = await one_of_each(world)
    blobs = {name: item_blobs(relay.data_dir, item_id) for name, item_id in items.items()}
    assert all(blobs.values()) and len(blobs["delivered"]) == 2 and len(blobs["returned"]) == 2
    ctx = ctx_of(relay)
    schedule = [  # (days after the exchange, what must be gone by then, the rule named)
        (30, {"delivered": "after-delivery", "returned": "returned-or-withheld", "withheld": "returned-or-withheld"}),
        (60, {"released": "released-undelivered", "to_mediators": "released-undelivered"}),
        (90, {"pending": "review-wait"}),
    ]
    gone: dict[str, str] = {}
    elapsed = timedelta()
    for days, expected in schedule:
        relay.clock.advance(seconds=(days * DAY - MINUTE - elapsed).total_seconds())
        await retention.purge(ctx)
        assert set(item_states(relay.data_dir)) == {items[n] for n in items if n not in gone}, f"early at {days}"
        relay.clock.advance(minutes=2)
        elapsed = days * DAY + MINUTE
        report = await retention.purge(ctx)
        gone |= expected
        assert report.items == len(expected)
        assert set(item_states(relay.data_dir)) == {items[n] for n in items if n not in gone}, f"at {days} days"
        for name in expected:
            assert not blobs[name] & blob_names(relay.data_dir), f"{name}: a blob remains"
    marks = await tombstones(ctx)
    assert marks == {items[name]: rule for name, rule in gone.items()}
    assert (await audit.verify(ctx.db)).ok
    coordinator = await world.session(world.coordinator)
    victim = await world.session(world.victim)
    try:
        status = await coordinator.call("GET", "/v1/retention")
        assert status["purged_by_rule"] == {"after-delivery": 1, "returned-or-withheld": 2,
                                            "released-undelivered": 2, "review-wait": 1}
        assert status["last_run"]["items"] == 1 and status["items_by_state"] == {}
        assert await victim.call("GET", "/v1/items/sent") == []
        with pytest.raises(ProblemError) as refused:
            await victim.call("GET", f"/v1/items/{items['pending']}")
        assert refused.value.status == 404
    finally:
        await close(coordinator, victim)


async def test_a_legal_hold_blocks_every_rule_until_it_is_lifted(relay: Relay, world: World) -> None:
    items = await one_of_each(world)
    coordinator = await world.session(world.coordinator)
    try:
        await coordinator.call("POST", f"/v1/cases/{world.case_id}/legal-hold", json_body={"hold": True})
        await coordinator.call("POST", f"/v1/cases/{world.case_id}/status", json_body={"status": "closed"})
        await coordinator.close()
        relay.clock.advance(days=8 * 365)  # past every rule, the closed case's and the audit entries' too
        coordinator = await world.session(world.coordinator)
        report = await retention.purge(ctx_of(relay))
        assert report.items == 0 and set(item_states(relay.data_dir)) == set(items.values())
        assert await coordinator.call("GET", "/v1/retention/due") == []
        remaining = await audit.entries(ctx_of(relay).db, limit=100000)
        assert any(e["action"] == "item.submitted" and e["case_id"] == world.case_id for e in remaining)
        assert (await coordinator.call("GET", "/v1/retention"))["cases_under_legal_hold"] == 1
        await coordinator.call("POST", f"/v1/cases/{world.case_id}/legal-hold", json_body={"hold": False})
        due = await coordinator.call("GET", "/v1/retention/due")
        assert {d["item_id"] for d in due} == set(items.values())
        await retention.purge(ctx_of(relay))
        assert item_states(relay.data_dir) == {}
        actions = [e["action"] for e in await audit.entries(ctx_of(relay).db, limit=100000)]
        assert "case.legal_hold_set" not in actions  # pruned with the rest: seven years have passed...
        assert "audit.pruned" in actions and (await audit.verify(ctx_of(relay).db)).ok  # ...and it still verifies
    finally:
        await close(coordinator)


async def test_a_closed_case_goes_as_a_whole_and_overrides_replace_the_defaults(relay: Relay, world: World) -> None:
    items = await one_of_each(world)
    coordinator = await world.session(world.coordinator)
    try:
        for rule in ("review_wait", "released_undelivered", "after_delivery", "returned_or_withheld"):
            await coordinator.call("POST", f"/v1/cases/{world.case_id}/retention",
                                   json_body={"rule": rule, "days": 3650})
        await coordinator.call("POST", f"/v1/cases/{world.case_id}/retention",
                               json_body={"rule": "closed_case", "days": 100})
        case = await coordinator.call("GET", f"/v1/cases/{world.case_id}")
        assert case["retention_overrides"]["closed_case"] == 100
        await coordinator.close()
        relay.clock.advance(days=200)
        await retention.purge(ctx_of(relay))
        assert set(item_states(relay.data_dir)) == set(items.values())  # open: the long overrides hold
        coordinator = await world.session(world.coordinator)
        await coordinator.call("POST", f"/v1/cases/{world.case_id}/status", json_body={"status": "closed"})
        relay.clock.advance(days=99)
        await retention.purge(ctx_of(relay))
        assert len(item_states(relay.data_dir)) == 6
        relay.clock.advance(days=1, minutes=1)
        await retention.purge(ctx_of(relay))
        assert item_states(relay.data_dir) == {}
        assert set((await tombstones(ctx_of(relay))).values()) == {"closed-case"}
        entries = await audit.entries(ctx_of(relay).db, limit=100000)
        assert [e["code"] for e in entries if e["action"] == "case.retention_override"] == ["3650"] * 4 + ["100"]
    finally:
        await close(coordinator)


async def test_new_activity_just_before_expiry_gives_a_grace_period(relay: Relay, world: World) -> None:
    victim = await world.session(world.victim)
    try:
        old = (await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=letter()))["id"]
        await victim.close()
        relay.clock.advance(days=80)
        victim = await world.session(world.victim)
        await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=letter("a reply"))
        relay.clock.advance(days=10, minutes=1)
        await retention.purge(ctx_of(relay))
        assert old in item_states(relay.data_dir)  # due at 90 days, but the case moved at 80: 94 days
        relay.clock.advance(days=4)
        await retention.purge(ctx_of(relay))
        assert old not in item_states(relay.data_dir)
    finally:
        await close(victim)


async def test_a_withdrawn_participant_s_undelivered_items_are_erased_on_request(relay: Relay, world: World) -> None:
    coordinator, victim, mediator, offender = await everyone(world)
    try:
        to_offender = {"case_id": world.case_id, "recipient": world.offender.person_id}
        pending = (await victim.send(**to_offender, src=letter("one")))["id"]
        released = (await victim.send(**to_offender, src=letter("two")))["id"]
        delivered = (await victim.send(**to_offender, src=letter("three")))["id"]
        from_offender = (await offender.send(case_id=world.case_id, recipient=world.victim.person_id,
                                             src=letter("theirs")))["id"]
        for item in (released, delivered):
            await mediator.release(item)
        await offender.fetch(delivered, io.BytesIO())
        doomed = item_blobs(relay.data_dir, pending) | item_blobs(relay.data_dir, released)
        erase = f"/v1/cases/{world.case_id}/participants/{world.victim.person_id}/erasure"
        with pytest.raises(ProblemError) as early:
            await coordinator.call("POST", erase)
        assert early.value.status == 409  # erasure follows a withdrawal
        await coordinator.call("POST", f"/v1/cases/{world.case_id}/participants/{world.victim.person_id}/consent",
                               json_body={"consent": "withdrawn"})
        await coordinator.call("POST", f"/v1/cases/{world.case_id}/legal-hold", json_body={"hold": True})
        with pytest.raises(ProblemError) as held:
            await coordinator.call("POST", erase)
        assert held.value.status == 409 and held.value.type == "legal-hold"
        await coordinator.call("POST", f"/v1/cases/{world.case_id}/legal-hold", json_body={"hold": False})
        result = await coordinator.call("POST", erase)
        assert result["items_erased"] == 2
        assert set(item_states(relay.data_dir)) == {delivered, from_offender}  # opened, or not theirs: kept
        assert not doomed & blob_names(relay.data_dir)
        entries = await audit.entries(ctx_of(relay).db, limit=100000)
        assert [e["code"] for e in entries if e["action"] == "case.erasure"] == ["withdrawal-erasure"]
        assert await tombstones(ctx_of(relay)) == {pending: "withdrawal-erasure", released: "withdrawal-erasure"}
        assert (await coordinator.call("POST", erase))["items_erased"] == 0  # idempotent
    finally:
        await close(coordinator, victim, mediator, offender)


async def test_the_worker_inside_the_server_purges_on_its_own(tmp_path: Path, aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    clock, codes = MovableClock(), []
    app = create_app(Settings(data_dir=tmp_path / "data", purge_interval_seconds=0.2), clock=clock,
                     bootstrap_printer=codes.append)
    server: TestServer = await aiohttp_server(app)
    world = await build_world(str(server.make_url("")).rstrip("/"), codes[0], kdf=TEST_KDF)
    victim = await world.session(world.victim)
    try:
        sent = await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=letter())
    finally:
        await victim.close()
    clock.advance(days=91)
    for _ in range(100):
        if not item_states(tmp_path / "data"):
            break
        await asyncio.sleep(0.1)
    assert item_states(tmp_path / "data") == {}
    assert await tombstones(app[CONTEXT]) == {sent["id"]: "review-wait"}


# -- crash safety ---------------------------------------------------------------------------------


class SimulatedCrash(Exception):
    pass


STEPS = ("marked", "committed", "originals-deleted", "deliveries-deleted", "finished")


def crash_at(step: str, nth: int):  # type: ignore[no-untyped-def]
    seen = 0

    def hook(name: str) -> None:
        nonlocal seen
        if name == step:
            seen += 1
            if seen == nth:
                raise SimulatedCrash(f"{step} #{nth}")

    return hook


class FixedClock:
    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def now(self) -> datetime:
        return self.moment


async def open_copy(path: Path, when: datetime) -> Context:
    settings = Settings(data_dir=path, purge_batch=2)
    return Context(settings=settings, db=await Database.open(settings.database_path), blobs=BlobStore(path / "blobs"),
                   clock=FixedClock(when))


async def final_state(path: Path, ctx: Context) -> dict[str, Any]:
    entries = await audit.entries(ctx.db, limit=100000)
    conn = sqlite3.connect(path / "relay.sqlite3")
    try:
        counts = dict(conn.execute("SELECT rule, purged FROM retention_counts").fetchall())
        items = dict(conn.execute("SELECT id, state FROM items").fetchall())
    finally:
        conn.close()
    return {"items": items, "blobs": blob_names(path), "counts": counts,
            "tombstones": sorted((e["item_id"], e["code"]) for e in entries if e["action"] == "item.purged"),
            "verifies": (await audit.verify(ctx.db)).ok}


def live_items_have_their_blobs(path: Path) -> list[str]:
    """The invariant a crash must keep: an item that could be served, or put back by a legal hold
    ('expired'), has every blob it names; only one whose deletion began ('purged') may lack some."""
    conn = sqlite3.connect(path / "relay.sqlite3")
    try:
        rows = conn.execute("SELECT id, blob_id, delivery_blob_id, poster_blob_id FROM items"
                            " WHERE state != 'purged'").fetchall()
    finally:
        conn.close()
    present = blob_names(path)
    return [item for item, *names in rows if any(n and n not in present for n in names)]


async def test_a_purge_crashed_between_any_two_steps_ends_like_an_uninterrupted_one(
        relay: Relay, world: World, tmp_path: Path) -> None:
    await one_of_each(world)
    await one_of_each(world)  # twelve items, so with batches of two there are several batches
    ctx = ctx_of(relay)
    assert await ctx.db.checkpoint()  # the database file alone now holds everything: safe to copy
    template = tmp_path / "template"
    shutil.copytree(relay.data_dir, template)
    when = relay.clock.now() + 120 * DAY

    baseline_dir = tmp_path / "baseline"
    shutil.copytree(template, baseline_dir)
    baseline_ctx = await open_copy(baseline_dir, when)
    await retention.purge(baseline_ctx)
    expected = await final_state(baseline_dir, baseline_ctx)
    await baseline_ctx.db.close()
    assert expected["items"] == {} and len(expected["tombstones"]) == 12 and expected["verifies"]

    for step in STEPS:
        for nth in (1, 3):
            copy = tmp_path / f"{step}-{nth}"
            shutil.copytree(template, copy)
            crashed = await open_copy(copy, when)
            with pytest.raises(SimulatedCrash):
                await retention.purge(crashed, step=crash_at(step, nth))
            await crashed.db.close()  # the process is gone; what was committed stays
            assert live_items_have_their_blobs(copy) == [], f"{step} #{nth}: an item is served without content"
            restarted = await open_copy(copy, when)
            await retention.purge(restarted)
            assert await final_state(copy, restarted) == expected, f"crash after {step} #{nth}"
            await restarted.db.close()


# -- nothing remains ------------------------------------------------------------------------------


def scan(data_dir: Path, needles: dict[str, bytes]) -> set[str]:
    """Which needles appear anywhere in the data directory: database, its WAL, every blob file."""
    found = set()
    for path in data_dir.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found |= {name for name, needle in needles.items() if needle in data}
    return found


async def test_after_a_purge_no_byte_of_the_item_remains(relay: Relay, world: World) -> None:
    marker = f"MARKER-{uuid.uuid4()}"
    coordinator, victim, mediator, offender = await everyone(world)
    try:
        sent = await victim.send(case_id=world.case_id, recipient=world.offender.person_id,
                                 src=letter(f"{marker}: what I want you to know"))
        await mediator.release(sent["id"], rendition=letter(f"{marker}: released version"))
        await offender.fetch(sent["id"], io.BytesIO())
        original = await mediator.call("GET", f"/v1/items/{sent['id']}")
    finally:
        await close(coordinator, victim, mediator, offender)
    conn = sqlite3.connect(relay.data_dir / "relay.sqlite3")
    row = conn.execute("SELECT blob_id, delivery_blob_id, manifest_sig, decision_sig, receipt_sig, hash FROM items"
                       " WHERE id = ?", (sent["id"],)).fetchone()
    conn.close()
    blob_id, delivery_blob_id, manifest_sig, decision_sig, receipt_sig, content_hash = row
    ciphertext = next((relay.data_dir / "blobs" / "objects").glob(f"??/{blob_id}")).read_bytes()
    needles = {
        "marker": marker.encode(), "blob name": blob_id.encode(), "rendition name": delivery_blob_id.encode(),
        "manifest signature": manifest_sig.encode(), "release signature": decision_sig.encode(),
        "receipt signature": receipt_sig.encode(), "content hash": content_hash.encode(),
        "ciphertext": ciphertext[100:164],
        **{f"sealed key for {who}": key.encode() for who, key in original["manifest"]["keys"].items()},
    }
    before = scan(relay.data_dir, needles)
    assert before == set(needles) - {"marker"}, "the scan must see the item before the purge"  # E2E: never a marker
    relay.clock.advance(days=31)
    await retention.purge(ctx_of(relay))
    assert scan(relay.data_dir, needles) == set()
    tombstone = [e for e in await audit.entries(ctx_of(relay).db, limit=100000) if e["action"] == "item.purged"]
    assert [(t["item_id"], t["code"]) for t in tombstone] == [(sent["id"], "after-delivery")]
    assert tombstone[0]["actor_person"] is None and tombstone[0]["subject"] is None  # metadata only
    assert (await audit.verify(ctx_of(relay).db)).ok


# -- the operator's commands ----------------------------------------------------------------------


def relay_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "relay", "--lang", "en", *args], capture_output=True, text=True,
                          timeout=120)


async def test_relay_purge_lists_with_dry_run_then_purges(relay: Relay, world: World) -> None:
    relay.clock.advance(days=-120)  # this letter was sent 120 days ago, by the relay's clock
    victim = await world.session(world.victim)
    try:
        old = (await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=letter()))["id"]
        await victim.close()
        relay.clock.advance(days=115)
        victim = await world.session(world.victim)
        five_days = (await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=letter()))["id"]
        await victim.close()
        relay.clock.advance(days=-115)
        relay.clock.advance(days=120)
        victim = await world.session(world.victim)
        recent = (await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=letter()))["id"]
    finally:
        await victim.close()
    assert await ctx_of(relay).db.checkpoint()
    dry = relay_cli("purge", "--data-dir", str(relay.data_dir), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert old in dry.stdout and "review-wait" in dry.stdout and recent not in dry.stdout
    assert "1 item(s) would be purged" in dry.stderr
    assert set(item_states(relay.data_dir)) == {old, five_days, recent}  # a dry run changes nothing
    done = relay_cli("purge", "--data-dir", str(relay.data_dir))
    assert done.returncode == 0, done.stderr
    assert "Purged 1 item(s) (by rule: review-wait: 1)" in done.stdout
    assert set(item_states(relay.data_dir)) == {five_days, recent}
    fr = relay_cli("--lang", "fr", "purge", "--data-dir", str(relay.data_dir), "--dry-run")
    assert "0 élément(s) seraient purgés" in fr.stderr
    # Without --retention, `relay purge` applies the schedule the relay itself started with.
    from policies.retention import Schedule
    from relay.server import retention_config
    from storage import retention as stored
    await stored.record_schedule(ctx_of(relay).db, schedule=retention_config.to_json(Schedule(review_wait=3 * DAY, grace=0 * DAY)),
                                 now="2026-01-01T00:00:00.000000Z")
    assert await ctx_of(relay).db.checkpoint()
    shorter = relay_cli("purge", "--data-dir", str(relay.data_dir), "--dry-run")
    assert five_days in shorter.stdout and recent not in shorter.stdout
    bad = relay_cli("purge", "--data-dir", str(relay.data_dir / "nowhere"))
    assert bad.returncode == 1 and "check --data-dir" in bad.stderr


async def test_bad_input_to_the_retention_endpoints_gets_a_problem_and_changes_nothing(world: World) -> None:
    coordinator = await world.session(world.coordinator)
    case = f"/v1/cases/{world.case_id}"
    try:
        before = await coordinator.call("GET", case)
        for path, body, status, kind in [
            (f"{case}/retention", {"rule": "audit_entry", "days": 5}, 422, "invalid-field"),
            (f"{case}/retention", {"rule": "review_wait", "days": 0}, 422, "invalid-field"),
            (f"{case}/retention", {"rule": "review_wait", "days": 5, "extra": 1}, 422, "invalid-field"),
            (f"{case}/legal-hold", {"hold": "yes please"}, 422, "invalid-field"),
            (f"{case}/legal-hold", {"hold": 1}, 422, "invalid-field"),
            (f"{case}/legal-hold", {"hold": "true"}, 422, "invalid-field"),
            (f"{case}/retention", {"rule": "review_wait", "days": True}, 422, "invalid-field"),
            (f"{case}/retention", {"rule": "review_wait", "days": "5"}, 422, "invalid-field"),
            (f"{case}/retention", {"rule": "review_wait", "days": 2.0}, 422, "invalid-field"),
            (f"{case}/legal-hold", [], 422, "invalid-field"),
            ("/v1/cases/cas_0000000000000000/legal-hold", {"hold": True}, 404, "not-found"),
            ("/v1/cases/not-a-case/retention", {"rule": "review_wait", "days": 5}, 404, "not-found"),
        ]:
            with pytest.raises(ProblemError) as refused:
                await coordinator.call("POST", path, json_body=body)
            assert (refused.value.status, refused.value.type) == (status, kind), (path, body)
        assert await coordinator.call("GET", case) == before
    finally:
        await close(coordinator)


async def test_an_item_marked_for_purge_is_served_to_no_one_and_the_next_run_finishes_it(
        relay: Relay, world: World) -> None:
    from storage import retention as stored

    coordinator, victim, mediator, offender = await everyone(world)
    try:
        sent = (await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=letter()))["id"]
        await mediator.release(sent)
        marked = await stored.mark(ctx_of(relay).db, [sent], lambda item, case: "review-wait")
        assert marked == [sent]  # as a crash would leave it: marked, blobs still there
        for client, path in ((victim, f"/v1/items/{sent}"), (mediator, f"/v1/items/{sent}"),
                             (offender, f"/v1/items/{sent}/delivery"), (offender, f"/v1/items/{sent}/delivery/content")):
            with pytest.raises(ProblemError) as refused:
                await client.call("GET", path)
            assert refused.value.status == 404, path
        assert await offender.call("GET", "/v1/inbox") == []
        assert await victim.call("GET", "/v1/items/sent") == []  # nor listed
        assert await coordinator.call("GET", f"/v1/cases/{world.case_id}/items") == []
        assert (await retention.purge(ctx_of(relay))).items == 1
        assert item_states(relay.data_dir) == {}
    finally:
        await close(coordinator, victim, mediator, offender)


async def test_abandoned_uploads_and_old_session_records_go_on_their_own_schedule(relay: Relay, world: World) -> None:
    victim = await world.session(world.victim)
    upload_id = await victim.create_upload(1000)
    part = relay.data_dir / "blobs" / "uploads" / f"{upload_id}.part"
    await victim.close()  # ends the session: its record stays 30 days

    def count(sql: str) -> int:
        conn = sqlite3.connect(relay.data_dir / "relay.sqlite3")
        try:
            return int(conn.execute(sql).fetchone()[0])
        finally:
            conn.close()

    ended = count("SELECT COUNT(*) FROM sessions WHERE ended_at IS NOT NULL")
    assert ended >= 1 and count("SELECT COUNT(*) FROM uploads") == 1
    relay.clock.advance(hours=23)
    report = await retention.purge(ctx_of(relay))
    assert (report.uploads, report.sessions) == (0, 0) and count("SELECT COUNT(*) FROM uploads") == 1
    relay.clock.advance(hours=1, minutes=1)
    assert (await retention.purge(ctx_of(relay))).uploads == 1
    assert count("SELECT COUNT(*) FROM uploads") == 0 and not part.exists()
    relay.clock.advance(days=30)
    report = await retention.purge(ctx_of(relay))
    assert report.sessions >= ended and count("SELECT COUNT(*) FROM sessions") == 0
    assert count("SELECT COUNT(*) FROM bundle_fetches") == 0 and count("SELECT COUNT(*) FROM challenges") == 0



async def test_a_legal_hold_set_after_marking_keeps_the_item_as_it_was(relay: Relay, world: World) -> None:
    from storage import retention as stored

    coordinator, victim, mediator, offender = await everyone(world)
    try:
        sent = (await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=letter()))["id"]
        await mediator.release(sent)
        blobs = item_blobs(relay.data_dir, sent)
        assert await stored.mark(ctx_of(relay).db, [sent], lambda item, case: "released-undelivered") == [sent]
        await coordinator.call("POST", f"/v1/cases/{world.case_id}/legal-hold", json_body={"hold": True})
        assert (await retention.purge(ctx_of(relay))).items == 0
        assert item_states(relay.data_dir) == {sent: "released"} and blobs <= blob_names(relay.data_dir)
        got = io.BytesIO()
        await offender.fetch(sent, got)
        assert got.getvalue() == b"a letter"
        actions = [(e["action"], e["code"]) for e in await audit.entries(ctx_of(relay).db, limit=100000)]
        assert ("item.purge_stopped", "legal-hold") in actions and ("item.purged", "released-undelivered") \
            not in actions
    finally:
        await close(coordinator, victim, mediator, offender)


async def test_purge_limit_is_exact(relay: Relay, world: World) -> None:
    await one_of_each(world)
    relay.clock.advance(days=400)
    assert (await retention.purge(ctx_of(relay), limit=1)).items == 1
    assert len(item_states(relay.data_dir)) == 5
