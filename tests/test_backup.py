"""``relay backup`` while letters are being sent, ``relay restore`` into a new data directory, and a
delivery completed from the restored relay whose audit chain verifies. Real relay on loopback,
real SQLite files, the commands run as an operator runs them (a separate process)."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import os
import re
import sqlite3
import sys
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from relay.client.kdf import TEST_KDF
from relay.client.scenario import World, build_world
from relay.server.app import create_app
from relay.server.backup import _hash_file
from relay.server.backup import manifest_hash as hash_of
from relay.server.settings import Settings
from tests.conftest import MovableClock, Relay

LETTER = b"What I would want you to know, if you want to read it.\n"


async def relay_command(*args: str, expect: int = 0) -> tuple[str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "relay", "--lang", "en", *args, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL)
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == expect, f"relay {' '.join(args)} -> {process.returncode}\n{out.decode()}\n{err.decode()}"
    return out.decode(), err.decode()


def manifest_hash(output: str) -> str:
    match = re.search(r"Manifest hash ([0-9a-f]{64})", output)
    assert match, output
    return match.group(1)


@pytest.fixture
async def busy_relay(tmp_path: Path, aiohttp_server) -> Relay:  # type: ignore[no-untyped-def]
    """A relay whose quotas let one sender keep writing for the whole backup."""
    data_dir, clock, codes = tmp_path / "relay-data", MovableClock(), []
    app = create_app(Settings(data_dir=data_dir, quota_items_per_day=10_000), clock=clock,
                     bootstrap_printer=codes.append)
    return Relay(await aiohttp_server(app), data_dir, clock, codes)


async def test_backup_under_load_restores_and_a_delivery_completes_from_it(busy_relay: Relay, tmp_path: Path,
                                                                          aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    relay = busy_relay
    world = await build_world(relay.url, relay.codes[0], kdf=TEST_KDF)
    victim, mediator = await world.session(world.victim), await world.session(world.mediator)
    try:
        before = await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=io.BytesIO(LETTER))
        await mediator.release(before["id"])

        # Letters keep arriving while the backup runs.
        sent: list[str] = []
        stop = asyncio.Event()

        async def keep_sending() -> None:
            while not stop.is_set():
                item = await victim.send(case_id=world.case_id, recipient=world.offender.person_id,
                                         src=io.BytesIO(LETTER + str(len(sent)).encode()))
                sent.append(item["id"])

        sender = asyncio.create_task(keep_sending())
        while len(sent) < 2 and not sender.done():  # the load is on before the backup starts
            await asyncio.sleep(0.02)
        backup = tmp_path / "backup"
        out, _ = await relay_command("backup", str(backup), "--data-dir", str(relay.data_dir))
        during = len(sent)
        while len(sent) < during + 2 and not sender.done():  # ... and after it ends
            await asyncio.sleep(0.02)
        stop.set()
        await sender  # raises if a send failed under the backup
        assert len(sent) >= during + 2
    finally:
        await victim.close()
        await mediator.close()

    manifest = json.loads((backup / "manifest.json").read_text())
    assert manifest["format"] == "mediation-relay-backup/1" and manifest["schema_version"] >= 7
    assert {f["path"] for f in manifest["files"]} >= {"relay.sqlite3"}
    assert sum(f["path"].startswith("blobs/objects/") for f in manifest["files"]) >= 3  # before, its rendition, load
    assert manifest["audit"]["head"] in out and manifest["audit"]["seq"] > 0
    assert oct((backup / "relay.sqlite3").stat().st_mode & 0o777) == "0o600"

    restored = tmp_path / "restored"
    out, _ = await relay_command("restore", str(backup), "--data-dir", str(restored),
                                 "--expect-manifest", manifest_hash(out))
    assert "audit chain verified" in out
    assert oct(restored.stat().st_mode & 0o777) == "0o700"

    # The restored relay serves: the released letter is delivered, one sent under load is
    # reviewed and delivered, and nothing sent after the backup exists there.
    app = create_app(Settings(data_dir=restored), clock=MovableClock(), bootstrap_printer=lambda _: None)
    server: TestServer = await aiohttp_server(app)
    there = dataclasses.replace(world, url=str(server.make_url("")).rstrip("/"))
    mediator, offender = await there.session(there.mediator), await there.session(there.offender, on_terminal=True)
    try:
        got = io.BytesIO()
        view = await offender.fetch(before["id"], got)
        assert got.getvalue() == LETTER and view["state"] == "delivered"
        queue = [q["id"] for q in await mediator.call("GET", "/v1/review/queue")]
        assert queue and set(queue) <= set(sent[:during]) and sent[-1] not in queue
        await mediator.release(queue[0])
        got = io.BytesIO()
        await offender.fetch(queue[0], got)
        assert got.getvalue().startswith(LETTER)
    finally:
        await mediator.close()
        await offender.close()
    await server.close()

    # The chain verifies on the restored relay, and still holds the head the backup recorded.
    out, _ = await relay_command("audit", "verify", "--data-dir", str(restored),
                                 "--expect-head", manifest["audit"]["head"])
    assert "Audit chain verified" in out


async def test_restore_refuses_a_changed_backup_or_a_used_directory(relay: Relay, world: World,
                                                                    tmp_path: Path) -> None:
    victim = await world.session(world.victim)
    try:
        await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=io.BytesIO(LETTER))
    finally:
        await victim.close()
    backup = tmp_path / "backup"
    out, _ = await relay_command("backup", str(backup), "--data-dir", str(relay.data_dir))
    digest = manifest_hash(out)
    _, err = await relay_command("backup", str(backup), "--data-dir", str(relay.data_dir), expect=1)
    assert "not empty" in err

    # A data directory already in use is never overwritten.
    used = tmp_path / "used"
    used.mkdir()
    (used / "keep.txt").write_text("mine")
    _, err = await relay_command("restore", str(backup), "--data-dir", str(used), expect=1)
    assert "not empty" in err and (used / "keep.txt").read_text() == "mine"

    # A manifest other than the one recorded is refused before anything is written.
    _, err = await relay_command("restore", str(backup), "--data-dir", str(tmp_path / "a"),
                                 "--expect-manifest", "0" * 64, expect=1)
    assert "expected" in err and not (tmp_path / "a").exists()

    # A blob changed in the backup: refused, and the data directory is left empty.
    manifest = json.loads((backup / "manifest.json").read_text())
    blob = next(backup / f["path"] for f in manifest["files"] if f["path"].startswith("blobs/objects/"))
    original = blob.read_bytes()
    blob.write_bytes(bytes([original[0] ^ 1]) + original[1:])
    _, err = await relay_command("restore", str(backup), "--data-dir", str(tmp_path / "b"), expect=1)
    assert "does not match its manifest" in err and not any((tmp_path / "b").iterdir())
    blob.write_bytes(original)

    # A file the manifest does not list is refused (a restore writes only what it names).
    (backup / "blobs" / "extra").write_bytes(b"x")
    _, err = await relay_command("restore", str(backup), "--data-dir", str(tmp_path / "c"), expect=1)
    assert "does not list" in err
    os.unlink(backup / "blobs" / "extra")

    # The database edited together with its manifest's entry: the recorded hash catches it.
    database = backup / "relay.sqlite3"
    conn = sqlite3.connect(database)
    conn.execute("DROP TRIGGER audit_log_no_update")  # whoever edits the copy can do this
    conn.execute("UPDATE audit_log SET code = 'edited' WHERE seq = 1")
    conn.execute("CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log BEGIN"
                 " SELECT RAISE(ABORT, 'audit_log is append-only'); END")
    conn.commit()
    conn.close()
    size, blake = _hash_file(database)
    for entry in manifest["files"]:
        if entry["path"] == "relay.sqlite3":
            entry.update(size=size, blake3=blake)
    body = json.dumps(manifest).encode()
    (backup / "manifest.json").write_bytes(body)
    _, err = await relay_command("restore", str(backup), "--data-dir", str(tmp_path / "d"),
                                 "--expect-manifest", digest, expect=1)
    assert "expected" in err
    # Without the recorded hash, the audit chain itself refuses the edit.
    _, err = await relay_command("restore", str(backup), "--data-dir", str(tmp_path / "e"), expect=1)
    assert "BROKEN" in err and not any((tmp_path / "e").iterdir())
    assert hash_of(body) != digest
