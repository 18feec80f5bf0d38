"""The participant's app sends a video: progress from the first byte, a pause that stops the
upload after the chunk in flight, and a resume that carries on from the relay's offset."""

from __future__ import annotations

from pathlib import Path

from relay.client.scenario import World
from tests.media_fixtures import ffmpeg
from tests.web.support import PASSPHRASE, chromium, interface, profile_for, shot, wait_text


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
        page = await browser.new_page()
        await page.goto(app.link)
        await page.fill("#passphrase", PASSPHRASE)
        await page.click("#unlock")
        await page.click("text=Send a video >> nth=0")
        await page.select_option("#video-to", f"{world.case_id}|{world.offender.person_id}")
        await page.set_input_files("#video-file", str(clip))
        await page.click("#send-video")
        await page.click("#pause-video")  # asked for at once: honoured after the first chunk sent
        await page.wait_for_selector("#video-progress[data-job]", timeout=60_000)
        await wait_text(page, "#video-phase", "Paused")
        percent = int((await page.inner_text("#video-percent")).rstrip("%"))
        assert 0 < percent < 100
        await shot(page, "app-video-paused")
        assert any((profile / "outbox").iterdir())  # the sealed copy waits in the outbox (ciphertext)

        mediator = await world.session(world.mediator)
        try:
            assert await mediator.call("GET", "/v1/review/queue") == []  # nothing submitted yet
            await page.click("#resume-video")
            await wait_text(page, "#video-phase", "Sent")
            await shot(page, "app-video-sent")
            queue = await mediator.call("GET", "/v1/review/queue")
            assert [q["kind"] for q in queue] == ["video"]
        finally:
            await mediator.close()
        assert not any((profile / "outbox").iterdir())
