"""Signing in at the kiosk: too many wrong codes at this terminal is said on the sign-in page, in the
reader's language, with what to do — not on a dead-end failure page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from relay.client.kdf import TEST_KDF
from relay.client.scenario import World, build_world
from tests.test_limits_desk import relay_with  # noqa: F401  (the fixture)
from tests.web.support import chromium, interface, kiosk_signed_in, profile_for, shot


async def test_too_many_wrong_codes_are_said_on_the_sign_in_page(relay_with: Any, tmp_path: Path) -> None:  # noqa: F811
    relay = await relay_with(kiosk_code_attempts_per_terminal=2)
    world = await build_world(relay.url, relay.codes[0], kdf=TEST_KDF)
    profile = profile_for(tmp_path / "kiosk", world, None, "kiosk")
    async with interface(profile, "kiosk", lang="fr") as kiosk, chromium(tmp_path / "browser") as browser:
        page = await browser.new_page()
        await page.goto(kiosk.link)
        for _attempt in range(3):
            await page.fill("#code", "ZZZZ-9999")
            await page.fill("#passphrase", "not it")
            await page.click("#unlock")
        said = await page.inner_text(".error")
        assert "Trop de tentatives" in said, said
        assert await page.locator("#code").count() == 1  # still the sign-in page
        assert "Cela n'a pas fonctionné" not in await page.inner_text("main")
        await shot(page, "fr-kiosk-too-many-codes")


async def test_the_app_speaks_to_a_participant_of_their_messages_not_of_keys(world: World, tmp_path: Path) -> None:
    profile = profile_for(tmp_path / "app", world, world.victim, "app")
    async with interface(profile, "app") as app, chromium(tmp_path / "browser") as browser:
        page = await browser.new_page()
        await page.goto(app.link)
        assert "open your messages on this device" in await page.inner_text("main")
        await page.fill("#passphrase", "not the right one")
        await page.click("#unlock")
        said = await page.inner_text("main")
        assert "not the passphrase for this device" in said
        assert " key" not in said, said
        await shot(page, "app-wrong-passphrase")


async def test_after_sign_out_the_kiosk_is_back_in_its_own_language(world: World, tmp_path: Path) -> None:
    """A shared terminal: the next person starts in the kiosk's language, not the one the last
    person chose; the person leaving reads that they are signed out in both."""
    profile = profile_for(tmp_path / "kiosk", world, None, "kiosk")
    async with interface(profile, "kiosk") as kiosk, chromium(tmp_path / "browser") as browser:
        page = await kiosk_signed_in(browser, kiosk, world)
        await page.goto(kiosk.url + "/lang/fr")
        await page.goto(kiosk.url + "/")
        assert await page.get_attribute("html", "lang") == "fr"
        await page.click("#sign-out")
        assert await page.get_attribute("html", "lang") == "en"
        notice = await page.inner_text(".notice")
        assert "You are signed out." in notice and "Vous êtes déconnecté" in notice, notice
        await shot(page, "kiosk-signed-out-both-languages")
        await page.goto(kiosk.url + "/")
        assert await page.get_attribute("html", "lang") == "en"
