"""Promise 4: an acknowledged upload survives kill -9; an unacknowledged one never shows as an item."""

from __future__ import annotations

import asyncio
import io
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

from relay import envelope, ids
from relay.client.demo import local_relay
from relay.client.kdf import TEST_KDF
from relay.client.scenario import World, build_world


def kill_9(process: asyncio.subprocess.Process) -> None:
    process.send_signal(signal.SIGKILL)


def blob_files(data_dir: Path) -> list[Path]:
    return [p for p in (data_dir / "blobs").rglob("*") if p.is_file()]


async def test_an_acknowledged_letter_survives_kill_9_and_is_then_delivered(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    async with local_relay(data_dir) as running:
        assert running.code
        world = await build_world(running.url, running.code, kdf=TEST_KDF)
        victim = await world.session(world.victim)
        sent = await victim.send(case_id=world.case_id, recipient=world.offender.person_id,
                                 src=io.BytesIO(b"acknowledged before the crash"))
        victim.session_token = None
        await victim.close()
        kill_9(running.process)
        await running.process.wait()
        port = int(running.url.rsplit(":", 1)[1])

    async with local_relay(data_dir, port) as restarted:
        assert restarted.code is None  # the coordinator is still enrolled: no new first-start code
        mediator = await world.session(world.mediator)
        offender = await world.session(world.offender, on_terminal=True)
        try:
            assert [q["id"] for q in await mediator.call("GET", "/v1/review/queue")] == [sent["id"]]
            await mediator.release(sent["id"])
            received = io.BytesIO()
            await offender.fetch(sent["id"], received)
            assert received.getvalue() == b"acknowledged before the crash"
        finally:
            await mediator.close()
            await offender.close()


async def test_an_upload_cut_off_by_kill_9_leaves_no_item_and_no_blob(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    async with local_relay(data_dir) as running:
        assert running.code
        world: World = await build_world(running.url, running.code, kdf=TEST_KDF)
        victim = await world.session(world.victim)
        key = envelope.new_content_key()
        blob = envelope.encrypt_bytes(key, b"x" * 300_000)
        manifest = envelope.item_manifest(
            item_id=ids.new("item"), case_id=world.case_id, kind="letter", sender=world.victim.person_id,
            recipient=world.offender.person_id, created_at="2026-11-21T12:00:00Z", content_type="text/plain",
            size=len(blob), hash=envelope.blob_hash(blob),
            keys={p.person_id: envelope.seal_key(key, p.identity.public.box_pk) for p in (world.mediator, world.victim)})
        half_sent = asyncio.Event()

        async def stalls() -> AsyncIterator[bytes]:
            yield blob[:150_000]
            half_sent.set()
            await asyncio.sleep(3600)
            yield blob[150_000:]

        form = aiohttp.MultipartWriter("form-data")
        form.append_json({"manifest": manifest, "signature": envelope.sign(
            envelope.Domain.MANIFEST, manifest, world.victim.identity.signing_key)}
        ).set_content_disposition("form-data", name="meta")
        form.append(stalls()).set_content_disposition("form-data", name="content")
        upload = asyncio.create_task(victim.call("POST", "/v1/items", data=form))
        await half_sent.wait()
        for _ in range(100):  # wait until the relay has begun writing the temp file
            if list((data_dir / "blobs" / "tmp").glob("*.part")):
                break
            await asyncio.sleep(0.02)
        assert list((data_dir / "blobs" / "tmp").glob("*.part")), "the upload never reached the relay's disk"
        kill_9(running.process)
        await running.process.wait()
        upload.cancel()
        victim.session_token = None
        await victim.close()
        port = int(running.url.rsplit(":", 1)[1])

    async with local_relay(data_dir, port):
        victim = await world.session(world.victim)
        try:
            assert await victim.call("GET", "/v1/items/sent") == []
        finally:
            await victim.close()
        assert blob_files(data_dir) == []  # the temp file was swept at start
