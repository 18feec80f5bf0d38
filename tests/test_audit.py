"""The audit chain: append-only, hash-linked, metadata only; verify finds any edit."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite
import pytest

from storage import audit
from storage.db import Database


@pytest.fixture
async def chain(tmp_path: Path) -> AsyncIterator[Path]:
    path = tmp_path / "relay.sqlite3"
    db = await Database.open(path)

    async def fill(conn: aiosqlite.Connection) -> None:
        for n in range(10):
            await audit.append(conn, at=f"2026-11-21T00:00:{n:02}.000000Z", action="item.submitted",
                               actor_person="per_0000000000000001", case_id="cas_0000000000000001",
                               item_id=f"itm_{n:016x}", code="pending_review")

    await db.write(fill)
    await db.close()
    yield path


async def verify(path: Path, **kwargs: str) -> audit.Verification:
    db = await Database.open(path)
    try:
        return await audit.verify(db, **kwargs)
    finally:
        await db.close()


def tamper(path: Path, *statements: str) -> None:
    conn = sqlite3.connect(path)
    conn.execute("DROP TRIGGER audit_log_no_update")  # an attacker with the file can do this too
    for statement in statements:
        conn.execute(statement)
    conn.commit()
    conn.close()


async def test_an_untouched_chain_verifies(chain: Path) -> None:
    result = await verify(chain)
    assert result.ok and result.entries == 10


async def test_the_database_refuses_updates_to_the_log(chain: Path) -> None:
    conn = sqlite3.connect(chain)
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("UPDATE audit_log SET code = 'x' WHERE seq = 3")
    conn.close()


@pytest.mark.parametrize("statements,bad_seq", [
    (["UPDATE audit_log SET code = 'withheld' WHERE seq = 4"], 4),
    (["UPDATE audit_log SET at = '2026-01-01T00:00:00.000000Z' WHERE seq = 1"], 1),
    (["DELETE FROM audit_log WHERE seq = 5"], 6),
    # an inserted entry must take a seq: shifting the later ones breaks their hashes
    (["UPDATE audit_log SET seq = seq + 100 WHERE seq >= 7", "UPDATE audit_log SET seq = seq - 99 WHERE seq >= 107",
      "INSERT INTO audit_log VALUES (7, 'x', 'item.release', NULL, NULL, NULL, NULL, NULL, NULL, 'aa', 'bb')"], 7),
    (["UPDATE audit_log SET hash = 'f' || substr(hash, 2) WHERE seq = 9"], 9),
])
async def test_edits_removals_and_insertions_are_found(chain: Path, statements: list[str], bad_seq: int) -> None:
    tamper(chain, *statements)
    result = await verify(chain)
    assert not result.ok
    assert result.bad_seq == bad_seq


async def test_removal_of_the_newest_entries_is_found_against_a_recorded_head(chain: Path) -> None:
    head = (await verify(chain)).head
    tamper(chain, "DELETE FROM audit_log WHERE seq >= 9")
    assert (await verify(chain)).ok  # a shorter chain is still a chain...
    result = await verify(chain, expect_head=head)
    assert not result.ok  # ...but not the one whose head was recorded


def test_the_cli_verifies_and_fails_on_tampering(chain: Path) -> None:
    run = [sys.executable, "-m", "relay", "--lang", "en", "audit", "verify", "--data-dir", str(chain.parent)]
    ok = subprocess.run(run, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and "10 entries" in ok.stdout
    tamper(chain, "UPDATE audit_log SET action = 'item.delivered' WHERE seq = 2")
    broken = subprocess.run(run, capture_output=True, text=True, timeout=60)
    assert broken.returncode == 2 and "entry 2" in broken.stderr
