"""A participant reads again a letter they sent, as they sent it, with where it stands: at the
kiosk and in the app ("What you sent" used to list letters without a way to open them)."""

from __future__ import annotations

from pathlib import Path

from relay.client.scenario import World
from tests.web.support import chromium, interface, kiosk_signed_in, profile_for, shot

LETTER = "What I wanted to say. MARKER-SENT-5K\u200b\nSecond line.\n"


async def test_a_participant_reads_again_the_letter_they_sent(world: World, tmp_path: Path) -> None:
    profile = profile_for(tmp_path / "kiosk", world, None, "kiosk")
    async with interface(profile, "kiosk") as kiosk, chromium(tmp_path / "browser") as browser:
        page = await kiosk_signed_in(browser, kiosk, world)
        await page.goto(kiosk.url + "/write")
        await page.select_option("#to", f"{world.case_id}|{world.victim.person_id}")
        await page.fill("#text", LETTER)
        await page.click("#send")
        await page.goto(kiosk.url + "/")
        sent = page.locator("a.open-sent")
        assert await sent.count() == 1
        await sent.click()
        assert await page.inner_text("h1") == "Your letter to Victim"
        assert "Waiting for your mediator's review" in await page.inner_text("#status")
        shown = await page.inner_text(".letter")
        assert "MARKER-SENT-5K⟦ZWSP⟧" in shown and "Second line." in shown  # the hidden character marked
        assert await page.locator("#hidden-warning").count() == 1
        await shot(page, "kiosk-sent-letter")
        # In French too.
        await page.goto(kiosk.url + "/lang/fr")
        await page.goto(kiosk.url + "/")
        await page.locator("a.open-sent").click()
        assert await page.inner_text("h1") == "Votre lettre à Victim"
        assert "En attente de l'examen de votre médiateur" in await page.inner_text("#status")
        # An id that is not one of this person's letters: nothing is shown.
        await page.goto(kiosk.url + "/sent/itm_" + "0" * 26)
        assert "MARKER" not in await page.content()
