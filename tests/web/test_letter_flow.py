"""A letter, through the desk and the kiosk, in a real Chromium: the hidden characters are
flagged, the mediator redacts a line and releases, the participant reads exactly that text."""

from __future__ import annotations

from pathlib import Path

from relay.client.scenario import World
from tests.web.support import PASSPHRASE, chromium, desk_signed_in, interface, profile_for, shot, victim_writes

LETTER = ("Dear O-1,\n"
          "I want you to know how the night changed our family.\n"
          "We moved: our new address is 12 Elm Street, Unit 4.\n"
          "Visible line.\x1b[8mA HIDDEN LINE\x1b[0m\n"
          "\u202eevil\u202c and a zero\u200bwidth space.\n"
          "MARKER-LETTER-7Q\n")
REDACTED = LETTER.replace("We moved: our new address is 12 Elm Street, Unit 4.\n", "")


async def test_a_hidden_letter_is_flagged_redacted_released_and_read_exactly(world: World, tmp_path: Path) -> None:
    sent = await victim_writes(world, LETTER.encode())

    desk_profile = profile_for(tmp_path / "desk", world, world.mediator, "desk")
    async with interface(desk_profile, "desk") as desk, chromium(tmp_path / "browser-desk") as browser:
        page = await browser.new_page()
        await page.goto(desk.link)
        await shot(page, "desk-unlock")
        await page.fill("#passphrase", PASSPHRASE)
        await page.click("#unlock")
        await page.wait_for_selector("table.queue")
        await shot(page, "desk-queue")
        row = page.locator(f"tr[data-item='{sent['id']}']")
        assert "Victim" in await row.inner_text() and "Offender" in await row.inner_text()
        assert "per_" not in await page.inner_text("main")  # labels, never raw ids
        await row.locator("a.open-item").click()
        warning = await page.inner_text("#hidden-warning")
        assert "5 hidden characters" in warning, warning
        assert "A HIDDEN LINE" in await page.inner_text(".letter")
        assert await page.locator("mark.hidden-char").count() == 5
        await shot(page, "desk-letter")

        await page.click("#redact")
        text = await page.input_value("#text")
        assert text == LETTER
        await page.fill("#text", REDACTED)
        await page.click("#preview")
        assert "12 Elm Street" in await page.inner_text("#original del")
        await shot(page, "desk-redaction")
        await page.click("#confirm-draft")
        await page.click("#confirm-release")
        assert "Released" in await page.inner_text("#result")
        await shot(page, "desk-released")

    kiosk_profile = profile_for(tmp_path / "kiosk", world, None, "kiosk")
    async with interface(kiosk_profile, "kiosk") as kiosk, chromium(tmp_path / "browser-kiosk") as browser:
        page = await browser.new_page()
        await page.goto(kiosk.link)
        await shot(page, "kiosk-identify")
        await page.fill("#code", str(world.offender.kiosk_code))
        await page.fill("#passphrase", str(world.offender.passphrase))
        await page.click("#unlock")
        await page.wait_for_selector("a.open-item")
        await shot(page, "kiosk-home")
        await page.click("a.open-item")
        shown = await page.inner_text(".letter")
        await shot(page, "kiosk-letter")
        # What the participant reads is exactly the text the mediator confirmed, hidden marks included.
        assert "12 Elm Street" not in shown
        assert "MARKER-LETTER-7Q" in shown and "A HIDDEN LINE" in shown


async def test_emoji_read_as_written_and_a_long_gap_is_one_counted_mark(world: World, tmp_path: Path) -> None:
    """At the desk, a heart and a family (built with a selector and joiners) are plain text, and
    forty empty lines before a last line show as one mark that counts them, so the mediator
    cannot take the letter for finished above it."""
    letter = "Dear O-1,\nMerci ❤️ from all of us 👨\u200d👩\u200d👧.\n" + "\n" * 40 + "We live at 12 Elm Street.\n"
    sent = await victim_writes(world, letter.encode())
    desk_profile = profile_for(tmp_path / "desk", world, world.mediator, "desk")
    async with interface(desk_profile, "desk") as desk, chromium(tmp_path / "browser-desk") as browser:
        page = await desk_signed_in(browser, desk)
        await page.locator(f"tr[data-item='{sent['id']}'] a.open-item").click()
        assert "1 hidden character or long run of empty lines" in await page.inner_text("#hidden-warning")
        gap = page.locator(".letter mark.gap")
        assert await gap.count() == 1 and await page.locator(".letter mark.hidden-char").count() == 1
        assert "⟦↵ × 40⟧" in await gap.inner_text() and await gap.get_attribute("title") == "40 empty lines"
        shown = await page.inner_text(".letter")
        assert "❤️" in shown and "We live at 12 Elm Street." in shown
        assert shown.index("⟦↵ × 40⟧") < shown.index("We live at")
        await shot(page, "desk-letter-gap")
