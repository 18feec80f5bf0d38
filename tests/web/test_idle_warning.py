"""At the kiosk, someone reading without touching anything is warned before the idle sign-out, can
stay signed in with one key or touch, and is signed out (the screen cleared) if nobody answers."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

from relay.client.scenario import World
from relay.client.web import jobs
from relay.client.web.person import Job
from relay.client.web.state import STATE
from tests.web.support import (
    PASSPHRASE,
    chromium,
    desk_signed_in,
    interface,
    kiosk_signed_in,
    profile_for,
    shot,
    victim_writes,
)

MARKER = "MARKER-READ-SLOWLY-5R"


async def test_the_kiosk_warns_before_the_idle_sign_out_and_one_key_keeps_the_session(world: World,
                                                                                      tmp_path: Path) -> None:
    victim = await world.session(world.victim)
    mediator = await world.session(world.mediator)
    try:
        sent = await victim.send(case_id=world.case_id, recipient=world.offender.person_id,
                                 src=io.BytesIO(f"A long letter. {MARKER}\n".encode()))
        await mediator.release(sent["id"])
    finally:
        await victim.close()
        await mediator.close()
    profile = profile_for(tmp_path / "kiosk", world, None, "kiosk")
    async with interface(profile, "kiosk", idle_seconds=8) as kiosk, chromium(tmp_path / "browser") as browser:
        page = await kiosk_signed_in(browser, kiosk, world)
        await page.goto(f"{kiosk.url}/items/{sent['id']}")
        assert not await page.is_visible("#idle-warning")
        await page.wait_for_selector("#idle-warning", state="visible", timeout=8_000)
        assert "signed out in a moment" in await page.inner_text("#idle-warning")
        assert kiosk.app[STATE].person is not None and MARKER in await page.inner_text(".letter")
        await shot(page, "kiosk-idle-warning")
        await page.keyboard.press("Shift")  # any key: the reader is still there
        assert not await page.is_visible("#idle-warning")
        await asyncio.sleep(4)  # past the first deadline
        assert page.url.endswith(f"/items/{sent['id']}") and kiosk.app[STATE].person is not None
        # Nobody answers the next warning: signed out, the letter gone from the screen.
        await page.wait_for_url(f"{kiosk.url}/", timeout=15_000)
        assert "without activity" in await page.inner_text("main")
        assert kiosk.app[STATE].person is None and MARKER not in await page.content()


async def test_long_work_under_way_at_the_desk_is_not_idleness(world: World, tmp_path: Path) -> None:
    """A video being released (or sent from the app) outlasts the idle time: the session stays
    while it runs, and the idle time counts from its end."""
    sent = await victim_writes(world, b"A letter.\n")
    profile = profile_for(tmp_path / "desk", world, world.mediator, "desk")
    async with interface(profile, "desk", idle_seconds=6) as desk, chromium(tmp_path / "browser") as browser:
        page = await desk_signed_in(browser, desk)
        person = desk.app[STATE].person
        assert person is not None

        async def slow(job: Job) -> None:  # stands for a long upload, with its progress
            for step in range(10):
                job.progress(step, 10)
                await asyncio.sleep(1)

        job = jobs.start(person, "release", sent["id"], slow)
        await page.goto(f"{desk.url}/items/{sent['id']}/done?action=release&job={job.id}")
        assert "carries on if you leave this page" in await page.inner_text("main")  # it runs here, not there
        await asyncio.sleep(8.5)  # past the idle time, nobody touching anything
        assert desk.app[STATE].person is person and job.state == "running"
        assert "/done?" in page.url and not await page.is_visible("#idle-warning")
        await page.wait_for_selector(".job[data-state='finished']", timeout=10_000)
        # Then the idle time runs from the end of the work.
        await page.wait_for_url(f"{desk.url}/", timeout=15_000)
        assert desk.app[STATE].person is None


async def test_signing_out_while_a_video_is_being_sent_asks_first(world: World, tmp_path: Path) -> None:
    profile = profile_for(tmp_path / "desk", world, world.mediator, "desk")
    async with interface(profile, "desk") as desk, chromium(tmp_path / "browser") as browser:
        page = await desk_signed_in(browser, desk)
        person = desk.app[STATE].person
        assert person is not None
        release = asyncio.Event()

        async def slow(job: Job) -> None:
            await release.wait()

        job = jobs.start(person, "release", "", slow)
        await page.click("#sign-out")
        assert page.url.endswith("/sign-out")
        assert "still being sent" in await page.inner_text("main")
        assert desk.app[STATE].person is person and job.state == "running"
        await shot(page, "desk-sign-out-busy")
        await page.click("#stay-signed-in")
        assert await page.locator("#sign-out").count() == 1 and desk.app[STATE].person is person
        await page.click("#sign-out")
        await page.click("#sign-out-anyway")
        assert "signed out" in await page.inner_text("main")
        assert desk.app[STATE].person is None
        release.set()

        # With nothing under way, signing out asks nothing.
        await page.fill("#passphrase", PASSPHRASE)
        await page.click("#unlock")
        await page.click("#sign-out")
        assert "signed out" in await page.inner_text("main")
