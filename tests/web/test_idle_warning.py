"""At the kiosk, someone reading without touching anything is warned before the idle sign-out, can
stay signed in with one key or touch, and is signed out (the screen cleared) if nobody answers."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

from relay.client.scenario import World
from relay.client.web.state import STATE
from tests.web.support import chromium, interface, kiosk_signed_in, profile_for, shot

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
