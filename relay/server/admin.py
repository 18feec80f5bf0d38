"""Commands the operator runs on the relay's own machine, against its data directory: verify and
export the audit chain, verify an export, and run or preview a purge.

They open the store the one way the server does (``Database.open``), so they may run while the
relay runs: SQLite serializes the writes, and every purge step is idempotent.
"""

from __future__ import annotations

import csv
import json
import os
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from relay.clock import SystemClock
from relay.i18n.cli import say
from relay.server import retention_config
from relay.server.context import Context
from relay.server.services import retention
from relay.server.services import scrub as scrubbing
from relay.server.serving import restrict_file_modes
from relay.server.settings import Settings
from storage import audit
from storage import retention as retention_rows
from storage.blobs import BlobStore
from storage.db import Database

COLUMNS = (*audit.FIELDS, "prev_hash", "hash")


class OperatorError(Exception):
    """A message for the operator; the command exits 1."""


@asynccontextmanager
async def open_store(data_dir: Path, retention_file: Path | None = None, lang: str = "en") -> AsyncIterator[Context]:
    restrict_file_modes()  # what an operator's command creates (the WAL, an export) stays private
    path = (data_dir / "relay.sqlite3").resolve()
    if not path.is_file():
        raise OperatorError(say("operator.no-database", lang, path=path))
    try:
        schedule = retention_config.load(retention_file)
    except retention_config.ScheduleError as exc:
        raise OperatorError(str(exc)) from None
    settings = Settings(data_dir=data_dir.resolve(), retention_file=retention_file)
    db = await Database.open(path, readers=1)
    try:
        if retention_file is None and (recorded := await retention_rows.recorded_schedule(db)):
            schedule = retention_config.from_json(recorded)  # the schedule the relay itself last started with
        yield Context(settings=settings, db=db, blobs=BlobStore(settings.blob_dir), clock=SystemClock(),
                      schedule=schedule)
    finally:
        await db.close()


# -- the audit chain --------------------------------------------------------------------------


async def verify(data_dir: Path, expect_head: str | None, lang: str) -> int:
    async with open_store(data_dir, lang=lang) as ctx:
        result = await audit.verify(ctx.db, expect_head=expect_head)
    return _report(result, lang)


def _report(result: audit.Verification, lang: str) -> int:
    if result.ok:
        print(say("audit-ok", lang, n=result.entries, head=result.head))
        if result.first_seq > 1:
            print(say("audit-anchored", lang, seq=result.first_seq))
        return 0
    print(say("audit-bad", lang, seq=result.bad_seq or "end", problem=result.problem), file=sys.stderr)
    return 2


async def export(data_dir: Path, out: Path, fmt: str, lang: str) -> int:
    """The whole chain, oldest first, to ``out`` (JSON lines or CSV), written privately and
    renamed into place only once complete, with each entry's links so it verifies on its own."""
    if fmt == "auto":
        fmt = "csv" if out.suffix.lower() == ".csv" else "jsonl"
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=".audit-", suffix=".part")
    count = 0
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as sink:
            writer = csv.DictWriter(sink, fieldnames=COLUMNS) if fmt == "csv" else None
            if writer:
                writer.writeheader()
            async with open_store(data_dir, lang=lang) as ctx:
                after = 0
                while page := await audit.entries(ctx.db, after_seq=after, limit=5000):
                    for entry in page:
                        if writer:
                            writer.writerow({k: "" if entry[k] is None else entry[k] for k in COLUMNS})
                        else:
                            sink.write(json.dumps({k: entry[k] for k in COLUMNS}, separators=(",", ":")) + "\n")
                    count += len(page)
                    after = page[-1]["seq"]
            sink.flush()
            os.fsync(sink.fileno())
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    print(say("audit-exported", lang, n=count, path=out, fmt=fmt))
    return 0


def verify_export(path: Path, expect_head: str | None, lang: str) -> int:
    try:
        with open(path, encoding="utf-8", newline="") as source:
            result = audit.verify_rows(_rows(source), expect_head=expect_head)
    except OSError as exc:
        raise OperatorError(say("operator.unreadable", lang, path=path, why=exc.strerror)) from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise OperatorError(say("operator.not-an-export", lang, path=path, what=type(exc).__name__)) from None
    return _report(result, lang)


def _rows(source: Any) -> Iterator[dict[str, Any]]:
    first = source.read(1)
    source.seek(0)
    if first == "{":
        for line in source:
            if line.strip():
                yield json.loads(line)
        return
    for row in csv.DictReader(source):
        yield {k: (None if v == "" else int(v) if k == "seq" else v) for k, v in row.items()}


# -- purge ------------------------------------------------------------------------------------


async def purge(data_dir: Path, retention_file: Path | None, *, dry_run: bool, limit: int | None, lang: str) -> int:
    async with open_store(data_dir, retention_file, lang) as ctx:
        if dry_run:
            due = await retention.due_now(ctx, limit=limit)
            for entry in due:
                print(f"{entry.item_id}  {entry.case_id}  {entry.state:<15} {entry.rule:<22} {entry.due_at}")
            print(say("purge-would", lang, n=len(due)), file=sys.stderr)
            return 0
        done = 0

        def progress(step: str) -> None:
            nonlocal done
            if step == "finished" and sys.stderr.isatty():  # one batch of items gone
                done += 1
                print(f"\r{say('purge-progress', lang, n=done)}", end="", file=sys.stderr, flush=True)

        report = await retention.purge(ctx, limit=limit, step=progress)
    if done:
        print(file=sys.stderr)
    rules = ", ".join(f"{rule}: {n}" for rule, n in sorted(report.by_rule.items())) or "-"
    print(say("purge-done", lang, items=report.items, rules=rules, uploads=report.uploads,
              sessions=report.sessions, audit=report.audit))
    return 0


# -- scrub ------------------------------------------------------------------------------------


async def scrub(data_dir: Path, lang: str = "en") -> int:
    """Recheck every stored blob against its signed size and hash; damaged items are marked and
    audited (the mediator's queue shows them). Exit 0 if all match, 2 if any is damaged."""
    async with open_store(data_dir, lang=lang) as ctx:
        report = await scrubbing.scrub(ctx)
    for item_id, part in report.damaged:
        print(say("operator.damaged", lang, item=item_id, part=part), file=sys.stderr)
    print(say("operator.scrubbed", lang, items=report.items, blobs=report.blobs, bytes=report.bytes,
              damaged=len(report.damaged), new=report.newly_marked))
    return 2 if report.damaged else 0
