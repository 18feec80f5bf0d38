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
    conn.execute("DROP TRIGGER audit_log_delete_only_behind_anchor")
    for statement in statements:
        conn.execute(statement)
    conn.commit()
    conn.close()


async def test_an_untouched_chain_verifies(chain: Path) -> None:
    result = await verify(chain)
    assert result.ok and result.entries == 10


async def test_the_database_refuses_updates_and_deletes_to_the_log(chain: Path) -> None:
    conn = sqlite3.connect(chain)
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("UPDATE audit_log SET code = 'x' WHERE seq = 3")
    with pytest.raises(sqlite3.IntegrityError):  # no anchor covers it: not even the oldest entry goes
        conn.execute("DELETE FROM audit_log WHERE seq = 1")
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


# -- pruning past the retention period, and the export for the national unit --------------------


async def test_pruning_removes_old_entries_from_the_start_and_the_rest_still_verifies(chain: Path) -> None:
    db = await Database.open(chain)
    try:
        pruned = await audit.prune(db, before="2026-11-21T00:00:04.000000Z", now="2026-11-22T00:00:00.000000Z")
        assert pruned == 4
        rows = await audit.entries(db)
        assert [r["seq"] for r in rows][:2] == [5, 6] and rows[-1]["action"] == "audit.pruned"
        assert rows[-1]["subject"] == f"4:{rows[0]['prev_hash']}"  # the pruning is on the chain, naming the anchor
        result = await audit.verify(db)
        assert result.ok and result.first_seq == 5 and result.entries == 7
        assert audit.verify_rows(await audit.entries(db)).ok  # an export made now verifies on its own too
        # The anchor covers 1..4 only: the trigger still refuses any later deletion.
        with pytest.raises(sqlite3.IntegrityError, match="behind the anchor"):
            await db.write(lambda conn: conn.execute("DELETE FROM audit_log WHERE seq = 5"))
    finally:
        await db.close()


async def test_pruning_stops_at_the_first_entry_of_a_case_under_legal_hold(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "relay.sqlite3")
    try:
        async def fill(conn: aiosqlite.Connection) -> None:
            await conn.execute("INSERT INTO institutions VALUES ('ins_0000000000000001', 'A', 'x')")
            await conn.execute("INSERT INTO cases (id, institution_id, referral_source, status, created_at, updated_at,"
                               " legal_hold_since) VALUES ('cas_00000000000000aa', 'ins_0000000000000001', 'victim',"
                               " 'open', 'x', 'x', 'x')")
            for n, case in enumerate([None, None, "cas_00000000000000aa", None]):
                await audit.append(conn, at=f"2026-01-01T00:00:0{n}.000000Z", action="case.opened", case_id=case)

        await db.write(fill)
        assert await audit.prune(db, before="2027-01-01T00:00:00.000000Z", now="2027-01-01T00:00:00.000000Z") == 2
        assert [r["seq"] for r in await audit.entries(db)][0] == 3
    finally:
        await db.close()


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_an_export_verifies_on_its_own_and_any_edit_is_found(chain: Path, fmt: str) -> None:
    out = chain.parent / f"audit.{fmt}"
    base = [sys.executable, "-m", "relay", "--lang", "en", "audit"]
    done = subprocess.run([*base, "export", "--data-dir", str(chain.parent), "--out", str(out)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    head = subprocess.run([*base, "verify", "--data-dir", str(chain.parent)], capture_output=True, text=True,
                          timeout=60).stdout.split("head ")[1].split(".")[0].split(";")[0].strip()
    ok = subprocess.run([*base, "verify-export", str(out), "--expect-head", head], capture_output=True, text=True,
                        timeout=60)
    assert ok.returncode == 0 and "10 entries" in ok.stdout, ok.stderr
    lines = out.read_text().splitlines()
    edited = lines.copy()
    edited[3] = edited[3].replace("pending_review", "withheld")
    out.write_text("\n".join(edited) + "\n")
    bad = subprocess.run([*base, "verify-export", str(out)], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "altered" in bad.stderr
    cut = lines[:-2]  # the newest entries removed: only a recorded head finds it
    out.write_text("\n".join(cut) + "\n")
    shorter = subprocess.run([*base, "verify-export", str(out), "--expect-head", head], capture_output=True,
                             text=True, timeout=60)
    assert shorter.returncode == 2 and "removed from the end" in shorter.stderr



async def test_cutting_entries_from_the_start_by_hand_is_found_even_with_an_anchor(chain: Path) -> None:
    head = (await verify(chain)).head
    conn = sqlite3.connect(chain)
    (seq6_hash,) = conn.execute("SELECT hash FROM audit_log WHERE seq = 6").fetchone()
    conn.execute("INSERT INTO audit_anchor (id, seq, hash, at) VALUES (1, 6, ?, 'x')", (seq6_hash,))
    conn.execute("DELETE FROM audit_log WHERE seq <= 6")  # the triggers allow it: the anchor covers it
    conn.commit()
    conn.close()
    result = await verify(chain, expect_head=head)
    assert not result.ok and "no pruning entry" in (result.problem or "")


async def test_pruning_never_removes_the_newest_entry_so_the_chain_goes_on(chain: Path) -> None:
    db = await Database.open(chain)
    try:
        assert await audit.prune(db, before="2099-01-01T00:00:00.000000Z", now="2099-01-01T00:00:00.000000Z") == 9
        assert await audit.prune(db, before="2099-01-01T00:00:00.000000Z", now="2099-01-01T00:00:01.000000Z") == 1
        assert (await audit.verify(db)).ok
        await db.write(lambda conn: audit.append(conn, at="2099-01-02T00:00:00.000000Z", action="case.opened"))
        assert (await audit.verify(db)).ok
    finally:
        await db.close()


def test_an_export_cut_at_the_start_is_found(chain: Path) -> None:
    out = chain.parent / "audit.jsonl"
    base = [sys.executable, "-m", "relay", "--lang", "en", "audit"]
    assert subprocess.run([*base, "export", "--data-dir", str(chain.parent), "--out", str(out)],
                          capture_output=True, timeout=60).returncode == 0
    out.write_text("\n".join(out.read_text().splitlines()[6:]) + "\n")
    cut = subprocess.run([*base, "verify-export", str(out)], capture_output=True, text=True, timeout=60)
    assert cut.returncode == 2 and "no pruning entry" in cut.stderr
    out.write_text('{"seq": 0}\n[1, 2]\n')
    odd = subprocess.run([*base, "verify-export", str(out)], capture_output=True, text=True, timeout=60)
    assert odd.returncode in (1, 2) and "Traceback" not in odd.stderr
