"""Retention: the purge worker, the coordinator's legal holds and overrides, withdrawal erasure.

A run walks every live item in bounded pages, asks the pure schedule (``policies.retention``)
which are due, and purges them in batches: mark (no longer served), delete every blob
(original, delivery rendition or return note), delete the row (manifest, sealed keys, decision,
receipt) with a tombstone in the audit chain naming the rule. It then reclaims abandoned
uploads, drops old session records and prunes audit entries past their period, and truncates
the database's write-ahead log so no old page keeps a deleted row's bytes.

Crash safety: each step commits before the next; a run starts by finishing what an earlier one
began, and every step is idempotent, so an interrupted run followed by a new one ends exactly
where one uninterrupted run would. A legal hold set between marking and deleting keeps the
item (``storage.retention`` explains the steps).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from policies.retention import CaseRetention, ItemRetention, Verdict, item_verdict
from relay import ids
from relay.server.context import Context
from relay.server.errors import NotFound
from relay.server.principal import Principal
from relay.server.services import periodic, uploads
from storage import audit, retention, security
from storage.clock import iso, parse

log = logging.getLogger(__name__)

PAGE = 500  # items read per step of a run
# A hook called after each step of a purge, for tests that crash a purge between any two steps.
Step = Callable[[str], None]


def _no_step(name: str) -> None:
    return None


@dataclass
class Report:
    items: int = 0
    uploads: int = 0
    sessions: int = 0
    audit: int = 0
    by_rule: dict[str, int] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        return {"items": self.items, "uploads": self.uploads, "sessions": self.sessions, "audit": self.audit}


@dataclass(frozen=True)
class Due:
    item_id: str
    case_id: str
    state: str
    rule: str
    due_at: str


# -- the decision, fed from stored facts ------------------------------------------------------


def _case(facts: dict[str, Any]) -> CaseRetention:
    return CaseRetention(
        case_id=facts["id"], status=facts["status"],
        closed_at=_time(facts["closed_at"]), legal_hold=facts["legal_hold_since"] is not None,
        last_activity_at=_time(facts["last_activity_at"]),
        overrides={rule: timedelta(days=days) for rule, days in facts["overrides"].items()})


def _item(facts: dict[str, Any]) -> ItemRetention:
    return ItemRetention(item_id=facts["id"], state=facts["state"], submitted_at=parse(facts["submitted_at"]),
                         decided_at=_time(facts["decided_at"]), first_opened_at=_time(facts["first_opened_at"]))


def _time(text: str | None) -> datetime | None:
    return parse(text) if text else None


def verdict(ctx: Context, item: dict[str, Any], case: dict[str, Any], now: datetime) -> Verdict:
    return item_verdict(_item(item), _case(case), ctx.schedule, now)


async def _due_pages(ctx: Context, now: datetime) -> AsyncIterator[list[tuple[dict[str, Any], Verdict]]]:
    """Every live item that is due now, a page at a time (so a large store is never read at once,
    and the event loop is never held for long: requests keep their latency during a purge)."""
    after, cases = "", {}  # case facts are read once per run; mark() asks again before acting
    while page := await retention.item_page(ctx.db, after_id=after, limit=PAGE):
        after = page[-1]["id"]
        missing = {i["case_id"] for i in page} - cases.keys()
        cases.update({k: _case(v) for k, v in (await retention.case_facts(ctx.db, missing)).items()})
        due = []
        for start in range(0, len(page), 100):
            for item in page[start:start + 100]:
                v = item_verdict(_item(item), cases[item["case_id"]], ctx.schedule, now)
                if v.purge:
                    due.append((item, v))
            await asyncio.sleep(0)
        if due:
            yield due


async def due_now(ctx: Context, *, limit: int | None = None) -> list[Due]:
    """What a purge would take now, and why (``relay purge --dry-run``)."""
    now, listed = ctx.clock.now(), []
    async for page in _due_pages(ctx, now):
        for item, v in page:
            listed.append(Due(item["id"], item["case_id"], item["state"], v.rule, iso(v.due_at) if v.due_at else ""))
            if limit is not None and len(listed) >= limit:
                return listed
    return listed


# -- the purge --------------------------------------------------------------------------------


async def purge(ctx: Context, *, limit: int | None = None, step: Step = _no_step,
                stop: asyncio.Event | None = None) -> Report:
    """One run: finish what an earlier run left, purge what is due, then the one-clock records.

    When ``stop`` is set (the relay is stopping) the run ends after the batch it is in: every
    batch commits whole, and the next run finishes anything left. Such a run stays unfinished in
    the record of runs (no ``finished_at``)."""
    report = Report()

    def stopping() -> bool:
        return stop is not None and stop.is_set()

    # Repeated refusals whose window has closed go into the chain as one entry each.
    while await security.flush(ctx.db, now=ctx.now_iso()):
        pass
    run_id = await retention.start_run(ctx.db, now=ctx.now_iso())
    batch = ctx.settings.purge_batch
    # Deletions an earlier run began are finished first; then items it only marked, unless a
    # legal hold has put them back since.
    while not stopping() and (leftover := await retention.committed(ctx.db, limit=batch)):
        await _delete(ctx, leftover, report, step)
    while not stopping() and (leftover := await retention.commit(ctx.db, limit=batch)):
        await _delete(ctx, leftover, report, step)
    now = ctx.clock.now()

    def still_due(item: dict[str, Any], case: dict[str, Any]) -> str | None:
        v = verdict(ctx, item, case, now)
        return v.rule if v.purge else None

    rest = 1 / ctx.settings.purge_duty - 1
    async for page in _due_pages(ctx, now):
        for start in range(0, len(page), batch):
            room = batch if limit is None else min(batch, limit - report.items)
            if room <= 0 or stopping():
                break
            began = time.perf_counter()
            marked = await retention.mark(ctx.db, [item["id"] for item, _ in page[start:start + room]], still_due)
            step("marked")
            await _delete(ctx, await retention.commit(ctx.db, item_ids=marked, limit=len(marked)), report, step)
            await asyncio.sleep((time.perf_counter() - began) * rest)  # leave the relay to its requests
        if stopping():
            break
    if stopping():
        log.info("retention: stopped between two batches (the relay is stopping); the next run carries on")
        return report
    report.uploads = await uploads.reclaim_expired(ctx)
    report.sessions = await retention.drop_old_sessions(ctx.db, before=iso(now - ctx.schedule.session),
                                                        now=iso(now))
    while pruned := await audit.prune(ctx.db, before=iso(now - ctx.schedule.audit_entry), now=ctx.now_iso()):
        report.audit += pruned
    await retention.finish_run(ctx.db, run_id, now=ctx.now_iso(), counts=report.counts())
    if report.items or report.audit:
        ctx.db.wal_holds_deleted_rows = True
    if ctx.db.wal_holds_deleted_rows:
        await _truncate_wal(ctx)
    if any(report.counts().values()):
        log.info("retention: purged %d item(s) %s, %d upload(s), %d session record(s), %d audit entries",
                 report.items, report.by_rule, report.uploads, report.sessions, report.audit)
    return report


async def _delete(ctx: Context, rows: list[dict[str, Any]], report: Report, step: Step) -> None:
    """Steps 3 and 4 for committed rows: every blob goes (the original and its poster, then the
    delivery rendition or return note), then the rows with their tombstones."""
    if not rows:
        return
    step("committed")
    await asyncio.to_thread(ctx.blobs.delete_durably, [r["blob_id"] for r in rows]
                            + [r["poster_blob_id"] for r in rows if r["poster_blob_id"]])
    step("originals-deleted")
    await asyncio.to_thread(ctx.blobs.delete_durably, [r["delivery_blob_id"] for r in rows if r["delivery_blob_id"]])
    step("deliveries-deleted")
    gone = await retention.finish(ctx.db, rows, now=ctx.now_iso())
    step("finished")
    report.items += len(gone)
    for row in gone:
        report.by_rule[row["purge_rule"]] = report.by_rule.get(row["purge_rule"], 0) + 1


async def _truncate_wal(ctx: Context) -> None:
    """Old page images in the WAL still hold deleted rows: checkpoint and truncate it. A reader
    holding an old snapshot can delay this; try a few times, then leave it to the next run."""
    for _ in range(5):
        if await ctx.db.checkpoint():
            ctx.db.wal_holds_deleted_rows = False
            return
        await asyncio.sleep(0.2)
    log.warning("retention: the write-ahead log could not be truncated yet (a long read); the next run tries again")


async def worker(ctx: Context, stop: asyncio.Event | None = None) -> None:
    """The periodic purge inside the server. A failed run is logged and retried next time.
    It ends when ``stop`` is set, between two batches of a run (or at once while resting)."""
    stop = stop or asyncio.Event()
    await periodic.every(ctx.settings.purge_interval_seconds, stop, lambda: purge(ctx, stop=stop), "retention run")


# -- the coordinator: legal hold, overrides, erasure, status ----------------------------------


async def set_legal_hold(ctx: Context, who: Principal, case_id: str, hold: bool) -> dict[str, Any]:
    _case_id(case_id)
    changed = await retention.set_legal_hold(ctx.db, case_id=case_id, hold=hold, now=ctx.now_iso(), actor=who.actor)
    return {"case_id": case_id, "legal_hold": hold, "changed": changed}


async def set_override(ctx: Context, who: Principal, case_id: str, rule: str, days: int | None) -> dict[str, Any]:
    _case_id(case_id)
    await retention.set_override(ctx.db, case_id=case_id, rule=rule, days=days, now=ctx.now_iso(), actor=who.actor)
    facts = await retention.case_facts(ctx.db, {case_id})
    return {"case_id": case_id, "retention_overrides": facts[case_id]["overrides"]}


async def erase_withdrawn(ctx: Context, who: Principal, case_id: str, person_id: str) -> dict[str, Any]:
    """A withdrawn participant asked that what they sent and nobody opened be erased now."""
    _case_id(case_id)
    if not ids.valid("person", person_id):
        raise NotFound()
    marked = await retention.mark_for_erasure(ctx.db, case_id=case_id, person_id=person_id, now=ctx.now_iso(),
                                              actor=who.actor)
    report = Report()
    for start in range(0, len(marked), ctx.settings.purge_batch):
        chunk = marked[start:start + ctx.settings.purge_batch]
        await _delete(ctx, await retention.commit(ctx.db, item_ids=chunk, limit=len(chunk)), report, _no_step)
    # One quick try (it never waits on readers); if a long read is under way, the worker's next run.
    ctx.db.wal_holds_deleted_rows = not await ctx.db.checkpoint()
    return {"case_id": case_id, "person_id": person_id, "items_erased": report.items}


async def status(ctx: Context) -> dict[str, Any]:
    facts = await retention.status(ctx.db)
    schedule = {name: value.total_seconds() / 86400 for name, value in vars(ctx.schedule).items()}
    return {**facts, "schedule_days": schedule, "purge_interval_seconds": ctx.settings.purge_interval_seconds}


def _case_id(case_id: str) -> None:
    if not ids.valid("case", case_id):
        raise NotFound()
