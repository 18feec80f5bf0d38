"""The participant's app sends a video: progress from the first byte, a pause that stops the
upload after the chunk in flight, and a resume that carries on from the relay's offset."""

from __future__ import annotations

from pathlib import Path

from relay.client.scenario import World
from relay.client.web.state import STATE
from tests.media_fixtures import ffmpeg
from tests.web.support import PASSPHRASE, chromium, interface, profile_for, shot, signed_in, wait_text


def _large_clip(path: Path) -> Path:
    """About 12 MB: more than one 8 MiB resumable chunk once sealed."""
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25:duration=8", "-c:v", "libx264", "-preset",
           "ultrafast", "-b:v", "12M", "-pix_fmt", "yuv420p", str(path))
    assert path.stat().st_size > 9 * 1024 * 1024
    return path


async def test_the_app_sends_a_video_with_progress_pause_and_resume(world: World, tmp_path: Path) -> None:
    clip = _large_clip(tmp_path / "message.mp4")
    profile = profile_for(tmp_path / "app", world, world.victim, "app")
    async with interface(profile, "app") as app, chromium(tmp_path / "browser") as browser:
        page = await signed_in(browser, app)
        await page.click("text=Send a video >> nth=0")
        await page.select_option("#video-to", f"{world.case_id}|{world.offender.person_id}")
        await page.set_input_files("#video-file", str(clip))
        await page.click("#send-video")
        await page.click("#pause-video")  # asked for at once: honoured after the first chunk sent
        await page.wait_for_selector("#video-progress[data-job]", timeout=60_000)
        await wait_text(page, "#video-phase", "Paused")
        # One next step at a time: a paused send offers "Carry on", not "Pause".
        assert await page.is_visible("#resume-video") and not await page.is_visible("#pause-video")
        percent = int((await page.inner_text("#video-percent")).rstrip("%"))
        assert 0 < percent < 100
        await shot(page, "app-video-paused")
        assert any((profile / "outbox").iterdir())  # the sealed copy waits in the outbox (ciphertext)

        mediator = await world.session(world.mediator)
        try:
            assert await mediator.call("GET", "/v1/review/queue") == []  # nothing submitted yet
            await page.click("#resume-video")
            await wait_text(page, "#video-phase", "Sent")
            assert not await page.is_visible("#resume-video") and not await page.is_visible("#pause-video")
            assert await page.is_visible("#video-done a")
            await shot(page, "app-video-sent")
            queue = await mediator.call("GET", "/v1/review/queue")
            assert [q["kind"] for q in queue] == ["video"]
        finally:
            await mediator.close()
        assert not any((profile / "outbox").iterdir())


async def test_a_video_the_app_refuses_says_why_in_words_and_offers_only_what_can_be_done(
        world: World, tmp_path: Path) -> None:
    clip = tmp_path / "short.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=10:duration=1", "-c:v", "libx264", "-preset",
           "ultrafast", "-pix_fmt", "yuv420p", str(clip))
    profile = profile_for(tmp_path / "app", world, world.victim, "app")
    async with interface(profile, "app") as app, chromium(tmp_path / "browser") as browser:
        page = await signed_in(browser, app)
        await page.goto(app.url + "/video")
        # Before anything is sent there is nothing to pause and nothing to carry on.
        assert not await page.is_visible("#resume-video")
        await page.select_option("#video-to", f"{world.case_id}|{world.offender.person_id}")
        await page.set_input_files("#video-file", str(clip))
        # The form has expired (as after a restart of the interface): the refusal is a page, which
        # is not shown as its source; the sentence says what to do.
        app.app[STATE].binding.csrf = "a-token-this-page-does-not-have"
        await page.click("#send-video")
        message = await wait_text(page, "#video-error", "Reload this page")
        assert "<" not in message and "doctype" not in message.lower()
        assert not await page.is_visible("#resume-video") and not await page.is_visible("#pause-video")
        assert await page.is_enabled("#send-video")  # nothing was taken: it can be sent again
        await shot(page, "app-video-refused")


async def test_a_video_left_unsent_at_sign_out_carries_on_in_the_next_session(world: World, tmp_path: Path) -> None:
    """The page promises "pause and carry on later": after signing out (or a restart), the list
    says a video is unfinished and carries it on from the relay's offset."""
    clip = _large_clip(tmp_path / "message.mp4")
    profile = profile_for(tmp_path / "app", world, world.victim, "app")
    async with interface(profile, "app") as app, chromium(tmp_path / "browser") as browser:
        page = await signed_in(browser, app)
        assert await page.locator("#unfinished").count() == 0
        await page.goto(app.url + "/video")
        await page.select_option("#video-to", f"{world.case_id}|{world.offender.person_id}")
        await page.set_input_files("#video-file", str(clip))
        await page.click("#send-video")
        await page.click("#pause-video")
        await wait_text(page, "#video-phase", "Paused")
        await page.click("#sign-out")

        await page.fill("#passphrase", PASSPHRASE)
        await page.click("#unlock")
        assert "has not finished" in await page.inner_text("#unfinished")
        await shot(page, "app-unfinished")
        await page.click("#carry-on-sending")
        assert "/video?job=" in page.url
        await wait_text(page, "#video-phase", "Sent")
        assert await page.is_visible("#video-done a")
        await page.click("#video-done a")
        assert await page.locator("#unfinished").count() == 0
        assert "Waiting for your mediator's review" in await page.inner_text("main")
    assert not any((profile / "outbox").iterdir())
    mediator = await world.session(world.mediator)
    try:
        assert [q["kind"] for q in await mediator.call("GET", "/v1/review/queue")] == ["video"]
    finally:
        await mediator.close()
