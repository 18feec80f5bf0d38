"""A video through the desk and the kiosk, in a real Chromium: opened and played from the desk's
memory, sanitized (its location and device tags gone) and played again, released; the
participant plays it at the kiosk."""

from __future__ import annotations

from pathlib import Path

from relay.client.scenario import World
from tests.media_fixtures import DEVICE_MAKE, DEVICE_MODEL, GPS, Clips, ffprobe_json
from tests.web.support import (
    chromium,
    desk_signed_in,
    interface,
    kiosk_signed_in,
    plays,
    profile_for,
    seeks,
    shot,
    wait_job,
    wait_text,
)


async def test_a_video_is_reviewed_played_sanitized_released_and_played_at_the_kiosk(world: World,
                                                                                     tmp_path: Path) -> None:
    clip = Clips(tmp_path).tagged
    victim = await world.session(world.victim)
    try:
        with open(clip, "rb") as src:
            sent = await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=src,
                                     kind="video", content_type="video/quicktime")
    finally:
        await victim.close()

    desk_profile = profile_for(tmp_path / "desk", world, world.mediator, "desk")
    async with interface(desk_profile, "desk") as desk, chromium(tmp_path / "browser-desk") as browser:
        page = await desk_signed_in(browser, desk)
        row = page.locator(f"tr[data-item='{sent['id']}']")
        poster = row.locator("img.poster")
        assert await poster.count() == 1
        assert await poster.evaluate("img => img.complete && img.naturalWidth > 0")  # decrypted at the desk
        await shot(page, "desk-queue-video")
        await row.locator("a.open-item").click()
        await page.click("#open-video")
        await wait_job(page)
        await page.wait_for_selector("#original-video")
        await page.click("#sanitize")
        await wait_job(page)
        await page.wait_for_selector("#sanitized-video")
        duration, position = await plays(page, "#sanitized-video")
        assert 1.5 < duration < 2.5 and position > 0
        assert abs(await seeks(page, "#sanitized-video") - duration / 2) < 0.2
        await shot(page, "desk-video")
        await page.click("#release-video")
        await shot(page, "desk-video-release")
        await page.click("#confirm-release")
        await wait_text(page, "#result", "Released")

    kiosk_profile = profile_for(tmp_path / "kiosk", world, None, "kiosk")
    async with interface(kiosk_profile, "kiosk") as kiosk, chromium(tmp_path / "browser-kiosk") as browser:
        page = await kiosk_signed_in(browser, kiosk, world)
        await page.click("a.open-item")
        duration, position = await plays(page, "#video")
        assert 1.5 < duration < 2.5 and position > 0
        assert abs(await seeks(page, "#video") - duration / 2) < 0.2
        await shot(page, "kiosk-video")
        source = await page.get_attribute("#video", "src")
        delivered = await page.evaluate("s => fetch(s).then(r => r.arrayBuffer()).then(b => Array.from(new Uint8Array(b)))",
                                        source)
    received = tmp_path / "delivered.mp4"
    received.write_bytes(bytes(delivered))
    data = received.read_bytes()
    assert data.startswith(b"\x00\x00\x00") and b"ftyp" in data[:16]  # the player got an MP4
    described = str(ffprobe_json(received))
    for tag in (GPS, DEVICE_MAKE, DEVICE_MODEL):
        assert tag not in described and tag.encode() not in data
