"""Resumable uploads (tus 1.0: creation, expiration, termination, checksum) through the real relay."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import signal
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from relay import envelope, ids
from relay.client.demo import local_relay
from relay.client.kdf import TEST_KDF
from relay.client.scenario import World, build_world
from relay.client.sdk import Client, ProblemError
from relay.clock import stamp

from .conftest import Relay

TUS = {"Tus-Resumable": "1.0.0"}


async def tus(client: Client, method: str, path: str, **kwargs: Any) -> tuple[int, dict[str, str], Any]:
    assert client._http is not None
    headers = {**client._headers(), **TUS, **kwargs.pop("headers", {})}
    async with client._http.request(method, client.url + path, headers=headers, **kwargs) as response:
        body = await response.read()
        return response.status, dict(response.headers), body


def sealed_letter(world: World, plaintext: bytes) -> tuple[dict[str, Any], bytes]:
    key = envelope.new_content_key()
    blob = envelope.encrypt_bytes(key, plaintext)
    manifest = envelope.item_manifest(
        item_id=ids.new("item"), case_id=world.case_id, kind="letter", sender=world.victim.person_id,
        recipient=world.offender.person_id, created_at="2026-11-21T12:00:00Z", content_type="text/plain",
        size=len(blob), hash=envelope.blob_hash(blob),
        keys={p.person_id: envelope.seal_key(key, p.identity.public.box_pk) for p in (world.mediator, world.victim)})
    return {"manifest": manifest, "signature": envelope.sign(envelope.Domain.MANIFEST, manifest,
                                                             world.victim.identity.signing_key)}, blob


def meta_only(meta: dict[str, Any]) -> aiohttp.MultipartWriter:
    form = aiohttp.MultipartWriter("form-data")
    form.append_json(meta).set_content_disposition("form-data", name="meta")
    return form


def checksum(data: bytes) -> str:
    return "sha256 " + base64.b64encode(hashlib.sha256(data).digest()).decode()


async def test_the_relay_announces_tus_and_its_limits(world: World) -> None:
    async with world.client(str(world.victim.device_token)) as client:
        status, headers, _ = await tus(client, "OPTIONS", "/v1/uploads")
        assert status == 204 and headers["Tus-Version"] == "1.0.0"
        assert set(headers["Tus-Extension"].split(",")) == {"creation", "expiration", "termination", "checksum"}
        assert int(headers["Tus-Max-Size"]) > 0 and "sha256" in headers["Tus-Checksum-Algorithm"]
        limits = await client.call("GET", "/v1/limits")
        assert limits["max_letter_bytes"] > 0 and limits["kinds"] == ["letter", "video"]
        # What tus announces is what the relay takes: the largest item, not a bigger ceiling.
        largest = max(limits["max_video_bytes"], limits["max_letter_bytes"])
        assert int(headers["Tus-Max-Size"]) == limits["max_upload_bytes"] == largest
        victim = await world.session(world.victim)
        try:
            status, _, _ = await tus(victim, "POST", "/v1/uploads", headers={"Upload-Length": str(largest + 1)})
            assert status == 413
            status, _, _ = await tus(victim, "POST", "/v1/uploads", headers={"Upload-Length": str(largest)})
            assert status == 201
        finally:
            await victim.close()
        # Whole hours are a JSON integer (a strict reader refuses 24.0 where it expects a count).
        assert isinstance(limits["upload_expiry_hours"], int) and limits["upload_expiry_hours"] > 0


async def test_a_resumable_letter_goes_the_whole_way(world: World) -> None:
    victim, mediator = await world.session(world.victim), await world.session(world.mediator)
    offender = await world.session(world.offender, on_terminal=True)
    letter = b"a long letter, " * 50_000  # ~750 KB: several PATCH requests with a small chunk size
    try:
        seen: list[int] = []
        original = victim.upload_resumable

        async def small_chunks(*args: Any, **kwargs: Any) -> str:
            return await original(*args, **{**kwargs, "chunk_size": 200_000})

        victim.upload_resumable = small_chunks  # type: ignore[method-assign]
        sent = await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=io.BytesIO(letter),
                                 resumable=True, progress=lambda done, total: seen.append(done))
        assert len(seen) >= 4 and seen == sorted(seen) and seen[-1] == envelope.ciphertext_size(len(letter))
        await mediator.release(sent["id"])
        got = io.BytesIO()
        await offender.fetch(sent["id"], got)
        assert got.getvalue() == letter
    finally:
        for client in (victim, mediator, offender):
            await client.close()


async def test_the_protocol_rules(relay: Relay, world: World) -> None:
    victim = await world.session(world.victim)
    try:
        meta, blob = sealed_letter(world, b"x" * 100_000)
        status, headers, _ = await tus(victim, "POST", "/v1/uploads", headers={"Upload-Length": str(len(blob))})
        assert status == 201 and headers["Upload-Offset"] == "0" and "Upload-Expires" in headers
        path = headers["Location"]
        half = len(blob) // 2

        assert (await tus(victim, "PATCH", path, data=blob[:half], headers={
            "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream",
            "Upload-Checksum": checksum(blob[:half])}))[0] == 204
        status, headers, _ = await tus(victim, "HEAD", path)
        assert (status, headers["Upload-Offset"], headers["Cache-Control"]) == (200, str(half), "no-store")

        wrong_offset = await tus(victim, "PATCH", path, data=blob[half:], headers={
            "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"})
        assert wrong_offset[0] == 409
        damaged = await tus(victim, "PATCH", path, data=blob[half:], headers={
            "Upload-Offset": str(half), "Content-Type": "application/offset+octet-stream",
            "Upload-Checksum": checksum(b"something else")})
        assert damaged[0] == 460
        assert (await tus(victim, "HEAD", path))[1]["Upload-Offset"] == str(half)  # nothing of it was kept
        no_version = await tus(victim, "HEAD", path, headers={"Tus-Resumable": "0.2.2"})
        assert no_version[0] == 412
        wrong_type = await tus(victim, "PATCH", path, data=blob[half:], headers={
            "Upload-Offset": str(half), "Content-Type": "application/octet-stream"})
        assert wrong_type[0] == 415

        with pytest.raises(ProblemError) as early:  # not complete yet
            await victim.call("POST", "/v1/items", data=meta_only({**meta, "upload_id": path.rsplit("/", 1)[1]}))
        assert early.value.status == 409
        assert (await tus(victim, "PATCH", path, data=blob[half:], headers={
            "Upload-Offset": str(half), "Content-Type": "application/offset+octet-stream"}))[0] == 204

        # A manifest that disagrees with what was uploaded is refused, and no item exists.
        other_meta, _ = sealed_letter(world, b"y" * 100_000)
        with pytest.raises(ProblemError) as mismatch:
            await victim.call("POST", "/v1/items", data=meta_only({**other_meta, "upload_id": path.rsplit("/", 1)[1]}))
        assert mismatch.value.type == "content-mismatch"
        assert await victim.call("GET", "/v1/items/sent") == []

        sent = await victim.call("POST", "/v1/items", data=meta_only({**meta, "upload_id": path.rsplit("/", 1)[1]}))
        assert sent["state"] == "pending_review"
        assert (await tus(victim, "HEAD", path))[0] == 404  # consumed
        assert not list((relay.data_dir / "blobs" / "uploads").iterdir())
    finally:
        await victim.close()


async def test_termination_and_expiry_reclaim_the_bytes(relay: Relay, world: World) -> None:
    victim = await world.session(world.victim)
    uploads_dir = relay.data_dir / "blobs" / "uploads"
    try:
        paths = []
        for _ in range(2):
            _, headers, _ = await tus(victim, "POST", "/v1/uploads", headers={"Upload-Length": "1000"})
            await tus(victim, "PATCH", headers["Location"], data=b"z" * 400, headers={
                "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"})
            paths.append(headers["Location"])
        assert len(list(uploads_dir.iterdir())) == 2
        assert (await tus(victim, "DELETE", paths[0]))[0] == 204
        assert (await tus(victim, "HEAD", paths[0]))[0] == 404
        relay.clock.advance(hours=24, seconds=1)
    finally:
        victim.session_token = None
        await victim.close()
    victim = await world.session(world.victim)
    try:
        assert (await tus(victim, "HEAD", paths[1]))[0] == 410
        assert list(uploads_dir.iterdir()) == []
    finally:
        await victim.close()


async def test_nobody_else_can_see_or_touch_an_upload(world: World) -> None:
    victim, offender = await world.session(world.victim), await world.session(world.offender, on_terminal=True)
    try:
        _, headers, _ = await tus(victim, "POST", "/v1/uploads", headers={"Upload-Length": "10"})
        for method in ("HEAD", "DELETE"):
            assert (await tus(offender, method, headers["Location"]))[0] == 404
        patch = await tus(offender, "PATCH", headers["Location"], data=b"0123456789", headers={
            "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"})
        assert patch[0] == 404
        assert (await tus(victim, "HEAD", headers["Location"]))[1]["Upload-Offset"] == "0"
    finally:
        await victim.close()
        await offender.close()


async def test_an_upload_cut_by_kill_9_resumes_from_the_acknowledged_offset(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    letter = bytes(range(256)) * 2000  # 512 KB
    async with local_relay(data_dir) as running:
        assert running.code
        world = await build_world(running.url, running.code, kdf=TEST_KDF)
        victim = await world.session(world.victim)
        key = envelope.new_content_key()
        blob = envelope.encrypt_bytes(key, letter)
        _, headers, _ = await tus(victim, "POST", "/v1/uploads", headers={"Upload-Length": str(len(blob))})
        upload_id = headers["Location"].rsplit("/", 1)[1]
        first = 200_000
        await tus(victim, "PATCH", headers["Location"], data=blob[:first], headers={
            "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"})
        started = asyncio.Event()

        async def stalls() -> AsyncIterator[bytes]:
            yield blob[first:first + 100_000]
            started.set()
            await asyncio.sleep(3600)

        cut = asyncio.create_task(tus(victim, "PATCH", headers["Location"], data=stalls(), headers={
            "Upload-Offset": str(first), "Content-Type": "application/offset+octet-stream"}))
        await started.wait()
        await asyncio.sleep(0.2)
        running.process.send_signal(signal.SIGKILL)
        await running.process.wait()
        cut.cancel()
        victim.session_token = None
        await victim.close()
        port = int(running.url.rsplit(":", 1)[1])

    sealed = tmp_path / "sealed.bin"
    sealed.write_bytes(blob)
    async with local_relay(data_dir, port):
        victim = await world.session(world.victim)
        mediator = await world.session(world.mediator)
        try:
            status, headers, _ = await tus(victim, "HEAD", f"/v1/uploads/{upload_id}")
            assert (status, headers["Upload-Offset"]) == (200, str(first))  # the acknowledged part, no more
            await victim.upload_resumable(sealed, len(blob), upload_id=upload_id)
            manifest = envelope.item_manifest(
                item_id=ids.new("item"), case_id=world.case_id, kind="letter", sender=world.victim.person_id,
                recipient=world.offender.person_id, created_at=stamp(victim.clock.now()),
                content_type="application/octet-stream", size=len(blob), hash=envelope.blob_hash(blob),
                keys={p.person_id: envelope.seal_key(key, p.identity.public.box_pk)
                      for p in (world.mediator, world.victim)})
            sent = await victim.call("POST", "/v1/items", data=meta_only({
                "manifest": manifest, "upload_id": upload_id,
                "signature": envelope.sign(envelope.Domain.MANIFEST, manifest, world.victim.identity.signing_key)}))
            opened = io.BytesIO()
            await mediator.open_item(sent["id"], opened)
            assert opened.getvalue() == letter
        finally:
            await victim.close()
            await mediator.close()


async def test_a_restarted_client_finishes_a_send_from_its_outbox(world: World, tmp_path: Path) -> None:
    """What a stopped client leaves behind: the sealed file, the signed manifest, an upload half done."""
    outbox = tmp_path / "outbox"
    entry = outbox / "itm_interrupted"
    entry.mkdir(parents=True)
    letter = b"written before the power cut " * 20_000
    meta, blob = sealed_letter(world, letter)
    (entry / "sealed.bin").write_bytes(blob)
    (entry / "meta.json").write_text(json.dumps(meta))
    first_run = await world.session(world.victim)
    try:
        _, headers, _ = await tus(first_run, "POST", "/v1/uploads", headers={"Upload-Length": str(len(blob))})
        half = len(blob) // 2
        await tus(first_run, "PATCH", headers["Location"], data=blob[:half], headers={
            "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"})
        (entry / "upload.json").write_text(json.dumps({"upload_id": headers["Location"].rsplit("/", 1)[1]}))
    finally:
        await first_run.close()

    restarted, mediator = await world.session(world.victim), await world.session(world.mediator)
    try:
        seen: list[int] = []
        [result] = await restarted.resume_outbox(outbox, progress=lambda done, total: seen.append(done))
        assert seen[0] > half  # it carried on from the relay's offset, not from zero
        assert not entry.exists()
        opened = io.BytesIO()
        await mediator.open_item(result["id"], opened)
        assert opened.getvalue() == letter
        assert await restarted.resume_outbox(outbox) == []
    finally:
        await restarted.close()
        await mediator.close()


async def test_send_through_an_outbox_leaves_nothing_once_acknowledged(world: World, tmp_path: Path) -> None:
    victim = await world.session(world.victim)
    try:
        sent = await victim.send(case_id=world.case_id, recipient=world.offender.person_id,
                                 src=io.BytesIO(b"kept until acknowledged"), outbox=tmp_path / "outbox")
        assert sent["state"] == "pending_review"
        assert list((tmp_path / "outbox").iterdir()) == []
    finally:
        await victim.close()


async def test_overlapping_patches_cannot_corrupt_an_upload(world: World) -> None:
    """A stale retry and a fresh PATCH at the same offset: one wins, the other is refused."""
    victim = await world.session(world.victim)
    try:
        meta, blob = sealed_letter(world, b"q" * 300_000)
        _, headers, _ = await tus(victim, "POST", "/v1/uploads", headers={"Upload-Length": str(len(blob))})
        path = headers["Location"]

        async def slow() -> AsyncIterator[bytes]:
            yield blob[:100_000]
            await asyncio.sleep(0.3)
            yield b"garbage that fails the checksum"

        stale = asyncio.create_task(tus(victim, "PATCH", path, data=slow(), headers={
            "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream",
            "Upload-Checksum": checksum(blob[:100_000])}))
        await asyncio.sleep(0.05)
        fresh = await tus(victim, "PATCH", path, data=blob, headers={
            "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"})
        assert (await stale)[0] == 460
        assert fresh[0] == 204  # it waited for the stale one, which kept nothing, then wrote everything
        assert (await tus(victim, "HEAD", path))[1]["Upload-Offset"] == str(len(blob))
        sent = await victim.call("POST", "/v1/items", data=meta_only({**meta, "upload_id": path.rsplit("/", 1)[1]}))
    finally:
        await victim.close()
    mediator = await world.session(world.mediator)
    try:
        opened = io.BytesIO()
        await mediator.open_item(sent["id"], opened)
        assert opened.getvalue() == b"q" * 300_000
    finally:
        await mediator.close()


async def test_a_person_cannot_hoard_unfinished_uploads(world: World) -> None:
    victim = await world.session(world.victim)
    try:
        for _ in range(5):
            assert (await tus(victim, "POST", "/v1/uploads", headers={"Upload-Length": "10"}))[0] == 201
        assert (await tus(victim, "POST", "/v1/uploads", headers={"Upload-Length": "10"}))[0] == 429
        too_big = await tus(victim, "POST", "/v1/uploads", headers={"Upload-Length": str(3 * 1024**3)})
        assert too_big[0] == 413
    finally:
        await victim.close()


async def test_an_upload_expiring_while_a_patch_writes_it_is_not_pulled_from_under_it(
        relay: Relay, world: World) -> None:
    victim = await world.session(world.victim)
    meta, blob = sealed_letter(world, b"e" * 200_000)
    _, headers, _ = await tus(victim, "POST", "/v1/uploads", headers={"Upload-Length": str(len(blob))})
    path = headers["Location"]
    part = relay.data_dir / "blobs" / "uploads" / f"{path.rsplit('/', 1)[1]}.part"
    go_on = asyncio.Event()

    async def slow() -> AsyncIterator[bytes]:
        yield blob[:50_000]
        await go_on.wait()
        yield blob[50_000:]

    patch = asyncio.create_task(tus(victim, "PATCH", path, data=slow(), headers={
        "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}))
    try:
        while not (part.exists() and part.stat().st_size > 0):
            await asyncio.sleep(0.01)
        relay.clock.advance(hours=24, seconds=1)  # past its expiry, mid-PATCH
        other = await world.session(world.victim)
        try:
            # Creating an upload sweeps expired ones: this one is being written, so it stays.
            assert (await tus(other, "POST", "/v1/uploads", headers={"Upload-Length": "10"}))[0] == 201
            assert part.exists()
            go_on.set()
            assert (await patch)[0] == 204  # and the PATCH that finished renewed it
            status, answer, _ = await tus(other, "HEAD", path)
            assert (status, answer["Upload-Offset"]) == (200, str(len(blob)))
        finally:
            await other.close()
    finally:
        go_on.set()
        await asyncio.gather(patch, return_exceptions=True)
        victim.session_token = None
        await victim.close()


@pytest.mark.parametrize("durable", [False, True])
async def test_sealing_writes_and_hashes_the_whole_ciphertext(tmp_path: Path, durable: bool) -> None:
    plaintext = hashlib.shake_256(b"sealing").digest(9 * 1024 * 1024 + 12345)  # several batches and hash steps
    key = envelope.new_content_key()
    client = Client("http://127.0.0.1:9")
    sealed = await client._seal_file(key, io.BytesIO(plaintext), into=tmp_path / "sealed.bin" if durable else None)
    try:
        blob = sealed.path.read_bytes()
        assert (sealed.size, sealed.hash) == (len(blob), envelope.blob_hash(blob))
        assert envelope.decrypt_bytes(key, blob) == plaintext
        assert sealed.path.stat().st_mode & 0o077 == 0
    finally:
        sealed.path.unlink()


async def test_a_cancelled_seal_stops_reading_the_source_and_leaves_no_file(tmp_path: Path) -> None:
    class Slow(io.RawIOBase):
        """A source that gives 64 KiB a read, slowly, and counts the reads."""
        reads = 0

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            Slow.reads += 1
            time.sleep(0.005)
            buffer[:len(buffer)] = b"s" * len(buffer)
            return len(buffer)

    client = Client("http://127.0.0.1:9")
    sealing = asyncio.create_task(client._seal_file(envelope.new_content_key(), io.BufferedReader(Slow()),
                                                    into=tmp_path / "sealed.bin"))
    while Slow.reads < 20:
        await asyncio.sleep(0.01)
    sealing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sealing
    reads = Slow.reads
    await asyncio.sleep(0.2)
    assert Slow.reads == reads  # nothing reads the caller's file once the call has returned
    assert list(tmp_path.iterdir()) == []
    assert not [t for t in threading.enumerate() if t.name == "seal-write"]


async def test_sealing_reports_progress_on_the_loop_from_the_first_batch(tmp_path: Path) -> None:
    plaintext = hashlib.shake_256(b"progress").digest(5 * 1024 * 1024 + 3)
    source = tmp_path / "plain.bin"
    source.write_bytes(plaintext)
    loop_thread, calls = threading.get_ident(), []

    def progress(done: int, total: int) -> None:
        calls.append((done, total, threading.get_ident()))

    client = Client("http://127.0.0.1:9")
    with open(source, "rb") as src:
        sealed = await client._seal_file(envelope.new_content_key(), src, progress=progress)
    sealed.path.unlink()
    await asyncio.sleep(0)  # the last report is scheduled on the loop by the writing thread
    total = envelope.ciphertext_size(len(plaintext))
    assert len(calls) >= 5 and calls[0][0] <= 1 << 21  # the first report comes after a MiB or two, not at the end
    assert [done for done, _, _ in calls] == sorted(done for done, _, _ in calls)
    assert calls[-1][:2] == (total, total) == (sealed.size, total)
    assert {thread for _, _, thread in calls} == {loop_thread}


async def test_a_send_reports_its_sealing(world: World) -> None:
    victim = await world.session(world.victim)
    try:
        seen: list[tuple[int, int]] = []
        await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=io.BytesIO(b"x" * 3_000_000),
                          seal_progress=lambda done, total: seen.append((done, total)))
        await asyncio.sleep(0)
        assert len(seen) >= 2 and seen[-1] == (envelope.ciphertext_size(3_000_000),) * 2
    finally:
        await victim.close()


@pytest.mark.parametrize("size", [0, 1, 65535, 65536, 65537, 3 * 65536 + 5])
async def test_the_opening_thread_decrypts_whatever_the_slicing(size: int) -> None:
    from relay.client.sdk.transfer import _Opener

    plaintext = hashlib.shake_256(str(size).encode()).digest(size)
    key = envelope.new_content_key()
    blob = envelope.encrypt_bytes(key, plaintext)
    for step in (1, 17, 1000, 65553, 1 << 20):
        dst = io.BytesIO()
        opener = _Opener(key, len(blob), dst)
        try:
            for i in range(0, len(blob), step):
                await opener.put(blob[i:i + step])
            assert await opener.finish() == envelope.blob_hash(blob)
        finally:
            await opener.close()
        assert dst.getvalue() == plaintext


@pytest.mark.parametrize("damage", ["flip", "truncate", "wrong-key"])
async def test_the_opening_thread_refuses_damaged_content(damage: str) -> None:
    from relay.client.sdk import VerificationError
    from relay.client.sdk.transfer import _Opener

    key = envelope.new_content_key()
    blob = envelope.encrypt_bytes(key, b"p" * 200_000)
    if damage == "flip":
        blob = blob[:70_000] + bytes([blob[70_000] ^ 1]) + blob[70_001:]
    elif damage == "truncate":
        blob = blob[:-1]
    opener = _Opener(envelope.new_content_key() if damage == "wrong-key" else key, len(blob), io.BytesIO())
    with pytest.raises(VerificationError):
        try:
            for i in range(0, len(blob), 30_000):
                await opener.put(blob[i:i + 30_000])
            await opener.finish()
        finally:
            await opener.close()
