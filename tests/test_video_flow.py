"""A video message's whole path: sealed on the sender's device, sanitized at the mediator's desk,
delivered to the terminal as the clean rendition only. Real ffmpeg, real relay."""

from __future__ import annotations

import io
import json
import tempfile
from fractions import Fraction
from pathlib import Path

import pytest

from media import MediaError
from relay.client.scenario import World
from relay.client.sdk import ProblemError, Sealed
from relay.i18n.catalogs import translation

from .conftest import Relay, close, everyone
from .media_fixtures import SENSITIVE, Clips, ffprobe_json


async def test_a_video_reaches_the_recipient_only_as_its_sanitized_rendition(world: World, tmp_path: Path) -> None:
    tagged = Clips(tmp_path).tagged
    assert b"iPhone 15 Pro" in tagged.read_bytes()  # the clip really carries device metadata
    coordinator, victim, mediator, offender = await everyone(world)
    try:
        with open(tagged, "rb") as src:
            sent = await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=src,
                                     kind="video", content_type="video/quicktime", resumable=True)
        queue = await mediator.call("GET", "/v1/review/queue")
        assert [(q["id"], q["kind"]) for q in queue] == [(sent["id"], "video")]

        steps: list[float] = []
        await mediator.release(sent["id"], transcode_progress=lambda done, total: steps.append(done))
        assert steps and steps == sorted(steps)

        received = tmp_path / "received.mp4"
        with open(received, "wb") as out:
            view = await offender.fetch(sent["id"], out)
        assert view["content_type"] == "video/mp4"
        probe = ffprobe_json(received)
        codecs = sorted(s["codec_name"] for s in probe["streams"])
        assert codecs == ["aac", "h264"] and probe["format"]["format_name"].startswith("mov,mp4")
        text, data = json.dumps(probe), received.read_bytes()
        for secret in SENSITIVE:
            assert secret not in text and secret.encode() not in data, secret

        # The original stays sealed to the mediator, as the record.
        original = io.BytesIO()
        await mediator.open_item(sent["id"], original)
        assert original.getvalue() == tagged.read_bytes()
    finally:
        await close(coordinator, victim, mediator, offender)


async def test_a_broken_video_is_not_released_and_leaves_no_plaintext_on_the_desk(world: World,
                                                                                  tmp_path: Path) -> None:
    coordinator, victim, mediator, offender = await everyone(world)
    before = set(Path(tempfile.gettempdir()).glob("relay-desk-*"))
    try:
        sent = await victim.send(case_id=world.case_id, recipient=world.offender.person_id,
                                 src=io.BytesIO(b"this is not a video at all"), kind="video",
                                 content_type="video/mp4")
        with pytest.raises(MediaError) as broken:
            await mediator.release(sent["id"])
        assert broken.value.code == "not-media" and translation("fr").gettext(broken.value.message_en) != broken.value.message_en
        assert (await mediator.call("GET", "/v1/review/queue"))[0]["state"] == "pending_review"
        assert set(Path(tempfile.gettempdir()).glob("relay-desk-*")) == before
        with pytest.raises(ProblemError):
            await offender.fetch(sent["id"], io.BytesIO())
    finally:
        await close(coordinator, victim, mediator, offender)


def test_the_demo_carries_a_video_and_writes_the_delivered_rendition(tmp_path: Path) -> None:
    import subprocess
    import sys

    tagged = Clips(tmp_path).tagged
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "relay", "demo", "--video", str(tagged), "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    [video] = list(out.glob("*.mp4"))
    text, data = json.dumps(ffprobe_json(video)), video.read_bytes()
    for secret in SENSITIVE:
        assert secret not in text and secret.encode() not in data, secret


async def test_a_terminal_can_resume_or_seek_with_range_requests(world: World) -> None:
    coordinator, victim, mediator, offender = await everyone(world)
    try:
        sent = await victim.send(case_id=world.case_id, recipient=world.offender.person_id,
                                 src=io.BytesIO(bytes(range(256)) * 1000))
        await mediator.release(sent["id"])
        assert offender._http is not None
        url = f"{offender.url}/v1/items/{sent['id']}/delivery/content"
        async with offender._http.get(url, headers=offender._headers()) as whole:
            everything = await whole.read()
        async with offender._http.get(url, headers={**offender._headers(), "Range": "bytes=1000-1999"}) as part:
            assert part.status == 206
            assert part.headers["Content-Range"] == f"bytes 1000-1999/{len(everything)}"
            assert await part.read() == everything[1000:2000]
    finally:
        await close(coordinator, victim, mediator, offender)


async def test_the_client_checks_the_announced_limits_before_sending_anything(relay: Relay, world: World,
                                                                             tmp_path: Path) -> None:
    from relay.client.sdk import OverLimit

    victim = await world.session(world.victim)
    try:
        too_big = io.BytesIO(b"x" * (16 * 1024 * 1024))
        with pytest.raises(OverLimit):
            await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=too_big)
        with pytest.raises(MediaError):
            with open(tmp_path / "fake.mp4", "w+b") as fake:
                fake.write(b"not a video")
                fake.seek(0)
                await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=fake, kind="video")
        assert await victim.call("GET", "/v1/items/sent") == []
        assert list((relay.data_dir / "blobs" / "uploads").iterdir()) == []
    finally:
        await victim.close()


async def test_a_mediators_own_video_is_sanitized_too(world: World, tmp_path: Path) -> None:
    tagged = Clips(tmp_path).tagged
    coordinator, victim, mediator, offender = await everyone(world)
    try:
        with open(tagged, "rb") as src:
            sent = await mediator.send(case_id=world.case_id, recipient=world.offender.person_id, src=src,
                                       kind="video", content_type="video/quicktime")
        assert sent["state"] == "released"
        received = tmp_path / "from-mediator.mp4"
        with open(received, "wb") as out:
            await offender.fetch(sent["id"], out)
        text, data = json.dumps(ffprobe_json(received)), received.read_bytes()
        for secret in SENSITIVE:
            assert secret not in text and secret.encode() not in data, secret
    finally:
        await close(coordinator, victim, mediator, offender)


async def test_the_queue_shows_a_sealed_poster_frame_that_only_key_holders_can_open(
        relay: Relay, world: World, tmp_path: Path) -> None:
    from relay.server.context import CONTEXT
    from relay.server.services import retention

    clips = Clips(tmp_path)
    coordinator, victim, mediator, offender = await everyone(world)
    try:
        with open(clips.rotated, "rb") as src:  # portrait once turned upright, with location and device tags
            sent = await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=src,
                                     kind="video", content_type="video/mp4")
        with open(clips.audio_only, "rb") as src:
            voice = await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=src,
                                      kind="video", content_type="audio/mp4")
        queue = {q["id"]: q for q in await mediator.call("GET", "/v1/review/queue")}
        assert queue[sent["id"]]["has_poster"] is True and queue[voice["id"]]["has_poster"] is False

        still = tmp_path / "poster.jpg"
        with open(still, "wb") as out:
            assert await mediator.poster(sent["id"], out)
        picture = ffprobe_json(still)
        (stream,) = picture["streams"]
        assert stream["codec_name"] == "mjpeg" and stream["width"] <= 180 and stream["height"] <= 320
        assert stream["height"] > stream["width"]  # upright
        text, data = json.dumps(picture), still.read_bytes()
        for secret in SENSITIVE:
            assert secret not in text and secret.encode() not in data, secret
        mine = io.BytesIO()
        assert await victim.poster(sent["id"], mine) and mine.getvalue() == data  # the sender holds the key too
        assert not await mediator.poster(voice["id"], io.BytesIO())

        for caller in (offender, coordinator):  # the recipient before release, and staff without the key
            with pytest.raises(ProblemError) as refused:
                await caller.call("GET", f"/v1/items/{sent['id']}/poster")
            assert refused.value.status in (403, 404)
    finally:
        await close(coordinator, victim, mediator, offender)

    poster_blob = _column(relay, sent["id"], "poster_blob_id")
    assert poster_blob and list((relay.data_dir / "blobs" / "objects").glob(f"??/{poster_blob}"))
    relay.clock.advance(days=91)
    await retention.purge(relay.server.app[CONTEXT])
    assert not list((relay.data_dir / "blobs" / "objects").glob(f"??/{poster_blob}"))  # purged with its item


async def test_a_poster_that_differs_from_its_signed_manifest_is_refused_and_nothing_is_kept(
        relay: Relay, world: World, tmp_path: Path) -> None:
    from relay import envelope, ids
    from relay.clock import stamp
    from relay.envelope import Domain

    victim = await world.session(world.victim)
    try:
        key = envelope.new_content_key()
        blob, poster = envelope.encrypt_bytes(key, b"not really a video"), envelope.encrypt_bytes(key, b"a still")
        manifest = envelope.item_manifest(
            item_id=ids.new("item"), case_id=world.case_id, kind="video", sender=world.victim.person_id,
            recipient=world.offender.person_id, created_at=stamp(relay.clock.now()), content_type="video/mp4",
            size=len(blob), hash=envelope.blob_hash(blob),
            keys={p.person_id: envelope.seal_key(key, p.identity.public.box_pk) for p in (world.victim, world.mediator)},
            poster={"content_type": "image/jpeg", "size": len(poster), "hash": envelope.blob_hash(poster)})
        meta = {"manifest": manifest, "signature": envelope.sign(Domain.MANIFEST, manifest,
                                                                 world.victim.identity.signing_key)}
        before = {p.name for p in (relay.data_dir / "blobs" / "objects").glob("??/*")}
        (tmp_path / "sealed.bin").write_bytes(blob)
        sealed = Sealed(tmp_path / "sealed.bin", len(blob), envelope.blob_hash(blob))
        for poster_field, kind in ((envelope.b64e(poster[:-1] + b"x"), "content-mismatch"),
                                   (None, "invalid-field"), ("%%%", "invalid-field")):
            body = {**meta, **({"poster": poster_field} if poster_field is not None else {})}
            with pytest.raises(ProblemError) as refused:
                await victim._upload("/v1/items", body, sealed, None)
            assert (refused.value.status, refused.value.type) == (422, kind)
        assert {p.name for p in (relay.data_dir / "blobs" / "objects").glob("??/*")} == before
        assert await victim.call("GET", "/v1/items/sent") == []
    finally:
        await victim.close()


def _column(relay: Relay, item_id: str, column: str) -> str | None:
    import sqlite3

    conn = sqlite3.connect(relay.data_dir / "relay.sqlite3")
    try:
        row = conn.execute(f"SELECT {column} FROM items WHERE id = ?", (item_id,)).fetchone()
    finally:
        conn.close()
    return row[0] if row else None



async def test_a_sender_may_shrink_a_video_so_its_tags_never_leave_the_device(world: World, tmp_path: Path) -> None:
    clips = Clips(tmp_path)
    coordinator, victim, mediator, offender = await everyone(world)
    try:
        steps: list[float] = []
        with open(clips.tagged, "rb") as src:
            sent = await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=src,
                                     kind="video", content_type="video/quicktime", shrink=True,
                                     transcode_progress=lambda done, total: steps.append(done))
        assert steps
        original = tmp_path / "what-the-relay-holds.mp4"
        with open(original, "wb") as out:
            item = await mediator.open_item(sent["id"], out)
        assert item["manifest"]["content_type"] == "video/mp4"
        probe = ffprobe_json(original)
        assert sorted(s["codec_name"] for s in probe["streams"]) == ["aac", "h264"]
        text, data = json.dumps(probe), original.read_bytes()
        for secret in SENSITIVE:
            assert secret not in text and secret.encode() not in data, secret
        with open(clips.hd60, "rb") as src:  # 1080p at 60 fps
            big = await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=src,
                                    kind="video", content_type="video/mp4", shrink=True)
        shrunk = tmp_path / "shrunk.mp4"
        with open(shrunk, "wb") as out:
            await mediator.open_item(big["id"], out)
        (video,) = [s for s in ffprobe_json(shrunk)["streams"] if s["codec_type"] == "video"]
        assert (video["width"], video["height"]) == (1280, 720) and Fraction(video["avg_frame_rate"]) <= 30
    finally:
        await close(coordinator, victim, mediator, offender)
