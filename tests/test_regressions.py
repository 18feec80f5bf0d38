"""Behaviours an independent review asked for, each through the real relay (or the real store)."""

from __future__ import annotations

import asyncio
import io
import os
import sqlite3
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from relay.client.scenario import World
from relay.client.sdk import Client, InsecureTransport, ProblemError, VerificationError
from relay.clock import stamp
from relay.envelope import Identity
from storage.blobs import BlobStore
from storage.db import Database

from .conftest import Relay


def db_write(relay: Relay, sql: str, params: tuple[object, ...] = ()) -> None:
    """What a malicious operator with the database file can do."""
    conn = sqlite3.connect(relay.data_dir / "relay.sqlite3")
    conn.execute(sql, params)
    conn.commit()
    conn.close()


def blob_count(relay: Relay) -> int:
    return len([p for p in (relay.data_dir / "blobs" / "objects").rglob("*") if p.is_file()])


async def test_a_relay_that_lists_the_recipient_as_a_mediator_gets_them_no_key(relay: Relay, world: World) -> None:
    db_write(relay, "INSERT INTO case_mediators VALUES (?, ?)", (world.case_id, world.offender.person_id))
    victim = await world.session(world.victim)
    try:
        with pytest.raises(VerificationError):
            await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=io.BytesIO(b"secret"))
    finally:
        await victim.close()
    assert blob_count(relay) == 0


async def test_a_revoked_second_mediator_does_not_stop_letters(world: World) -> None:
    coordinator = await world.session(world.coordinator)
    try:
        second = await coordinator.enroll(public=Identity.generate().public, label="Second", role="mediator")
        await coordinator.call("POST", f"/v1/cases/{world.case_id}/mediators", json_body={"person_id": second["id"]})
        await coordinator.call("POST", f"/v1/people/{second['id']}/revoke")
    finally:
        await coordinator.close()
    victim = await world.session(world.victim)
    try:
        sent = await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=io.BytesIO(b"x"))
        assert sent["state"] == "pending_review"
    finally:
        await victim.close()


async def test_a_hold_from_a_condition_that_runs_out_clears_at_the_next_fetch(relay: Relay, world: World) -> None:
    coordinator = await world.session(world.coordinator)
    victim, mediator = await world.session(world.victim), await world.session(world.mediator)
    try:
        sent = await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=io.BytesIO(b"x"))
        await mediator.release(sent["id"])
        await coordinator.call("POST", "/v1/conditions", json_body={
            "kind": "parole_condition", "reference": "PBC 77", "restricted_id": world.offender.person_id,
            "protected_people": [world.victim.person_id], "direction": "both", "program_exception": False,
            "effective_from": stamp(relay.clock.now() - timedelta(days=1)),
            "effective_until": stamp(relay.clock.now() + timedelta(hours=2))})
    finally:
        for client in (coordinator, victim, mediator):
            await client.close()
    offender = await world.session(world.offender, on_terminal=True)
    try:
        assert await offender.call("GET", "/v1/inbox") == []  # held now
    finally:
        await offender.close()
    relay.clock.advance(hours=3)  # the condition ends; nobody does anything
    offender = await world.session(world.offender, on_terminal=True)
    try:
        assert [i["id"] for i in await offender.call("GET", "/v1/inbox")] == [sent["id"]]
        got = io.BytesIO()
        await offender.fetch(sent["id"], got)
        assert got.getvalue() == b"x"
    finally:
        await offender.close()


async def test_a_release_that_no_longer_stands_has_its_rendition_deleted(relay: Relay, world: World) -> None:
    coordinator, victim = await world.session(world.coordinator), await world.session(world.victim)
    mediator = await world.session(world.mediator)
    try:
        sent = await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=io.BytesIO(b"x"))
        await mediator.release(sent["id"], rendition=io.BytesIO(b"edited"))
        assert blob_count(relay) == 2
        consent = f"/v1/cases/{world.case_id}/participants/{world.offender.person_id}/consent"
        await coordinator.call("POST", consent, json_body={"consent": "withdrawn"})
        await coordinator.call("POST", consent, json_body={"consent": "given"})
        assert blob_count(relay) == 1  # the original stays; the withdrawn release's rendition is gone
    finally:
        for client in (coordinator, victim, mediator):
            await client.close()


async def test_a_kiosk_shows_nothing_of_a_persons_case_at_another_institution(world: World) -> None:
    coordinator = await world.session(world.coordinator)
    try:
        other = await coordinator.call("POST", "/v1/institutions", json_body={"name": "Institution B"})
        case_b = await coordinator.call("POST", "/v1/cases", json_body={"referral_source": "institutional",
                                                                         "institution_id": other["id"]})
        victim_b = await coordinator.enroll(public=Identity.generate().public, label="V-B", role="participant",
                                            relation="victim")
        for person in (world.offender.person_id, victim_b["id"]):
            await coordinator.call("POST", f"/v1/cases/{case_b['id']}/participants", json_body={"person_id": person})
        await coordinator.call("POST", f"/v1/cases/{case_b['id']}/mediators",
                               json_body={"person_id": world.mediator.person_id})
        kiosk_b = await coordinator.call("POST", "/v1/devices", json_body={
            "kind": "terminal", "institution_id": other["id"], "label": "B kiosk"})
    finally:
        await coordinator.close()
    async with Client(world.url, kiosk_b["device_token"], trust_root=world.trust_root) as at_b:
        identity = await at_b.unlock_on_terminal(world.offender.person_id, str(world.offender.passphrase),
                                                 **world.kdf.open_kwargs)
        await at_b.login(world.offender.person_id, identity)
        sent_b = await at_b.send(case_id=case_b["id"], recipient="mediators", src=io.BytesIO(b"from B"))
    at_a = await world.session(world.offender, on_terminal=True)
    try:
        assert sent_b["id"] not in [i["id"] for i in await at_a.call("GET", "/v1/items/sent")]
        with pytest.raises(ProblemError) as hidden:
            await at_a.call("GET", f"/v1/directory/{victim_b['id']}")
        assert hidden.value.status == 404
    finally:
        await at_a.close()


async def test_a_note_is_not_read_after_a_withdrawal_or_in_a_closed_case(world: World) -> None:
    coordinator, victim = await world.session(world.coordinator), await world.session(world.victim)
    mediator = await world.session(world.mediator)
    try:
        sent = await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=io.BytesIO(b"x"))
        await mediator.return_to_sender(sent["id"], "please rephrase")
        await victim.read_note(sent["id"], io.BytesIO())
        await coordinator.call("POST", f"/v1/cases/{world.case_id}/participants/{world.victim.person_id}/consent",
                               json_body={"consent": "withdrawn"})
        with pytest.raises(ProblemError):
            await victim.read_note(sent["id"], io.BytesIO())
        await coordinator.call("POST", f"/v1/cases/{world.case_id}/participants/{world.victim.person_id}/consent",
                               json_body={"consent": "given"})
        await victim.read_note(sent["id"], io.BytesIO())
        await coordinator.call("POST", f"/v1/cases/{world.case_id}/status", json_body={"status": "closed"})
        with pytest.raises(ProblemError):
            await victim.read_note(sent["id"], io.BytesIO())
    finally:
        for client in (coordinator, victim, mediator):
            await client.close()


async def test_signing_in_on_a_kiosk_again_and_again_does_not_lock_the_person_out(world: World) -> None:
    for _ in range(10):
        client = await world.session(world.offender, on_terminal=True)
        await client.close()


async def test_a_letter_between_participants_needs_an_active_mediator(world: World) -> None:
    coordinator = await world.session(world.coordinator)
    try:
        await coordinator.call("POST", f"/v1/people/{world.mediator.person_id}/revoke")
    finally:
        await coordinator.close()
    victim = await world.session(world.victim)
    try:
        with pytest.raises(ProblemError) as refused:
            await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=io.BytesIO(b"x"))
        assert refused.value.type == "screening-refused"
    finally:
        await victim.close()


def test_audit_verify_refuses_a_data_directory_without_a_relay(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "relay", "audit", "verify", "--data-dir", str(tmp_path / "none")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "no relay database" in done.stderr
    assert not (tmp_path / "none").exists()


def test_the_client_refuses_plain_http_beyond_loopback() -> None:
    with pytest.raises(InsecureTransport):
        Client("http://relay.example.org")
    Client("https://relay.example.org")
    Client("http://127.0.0.1:8787")
    Client("http://[::1]:8787")
    Client("http://localhost:8787")
    # Names that only look like loopback resolve wherever their owner wants.
    for lookalike in ("http://127.0.0.1.example.org", "http://127.attacker.example", "http://localhost.example.org:8787",
                      "http://relay.localhost:8787"):  # glibc sends *.localhost to the network's DNS
        with pytest.raises(InsecureTransport):
            Client(lookalike)


async def test_a_read_cancelled_mid_snapshot_does_not_freeze_its_connection(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "relay.sqlite3", readers=1)
    try:
        async def slow(conn):  # type: ignore[no-untyped-def]
            await asyncio.sleep(1)

        task = asyncio.create_task(db.read(slow))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await db.write(lambda c: c.execute("INSERT INTO institutions VALUES ('i', 'after', 'now')"))
        assert [r["name"] for r in await db.fetchall("SELECT name FROM institutions")] == ["after"]
        assert await db.read(lambda c: c.execute_fetchall("SELECT 1"))
    finally:
        await db.close()


def test_unreferenced_blobs_are_swept_only_once_old(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    for blob_id in ("a" * 32, "b" * 32, "c" * 32):
        path = store.path(blob_id)
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"x")
    old = time.time() - 7200
    os.utime(store.path("a" * 32), (old, old))
    os.utime(store.path("b" * 32), (old, old))
    assert store.sweep_unreferenced({"b" * 32}, older_than=3600) == 1
    assert not store.path("a" * 32).exists()
    assert store.path("b" * 32).exists() and store.path("c" * 32).exists()


def test_the_access_log_names_no_client_address(tmp_path: Path) -> None:
    """Where a participant connects from is a location: the relay's log must not keep it."""
    import socket
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "relay", "serve", "--data-dir", str(tmp_path / "data"),
                               "--port", str(port)], stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
                    assert answer.status == 200
                break
            except OSError:
                time.sleep(0.1)
    finally:
        server.terminate()
        _, log = server.communicate(timeout=30)
    requests = [line for line in log.splitlines() if "GET /healthz" in line]
    assert requests, log[-2000:]
    assert not any("127.0.0.1" in line or "Python-urllib" in line for line in requests), requests
