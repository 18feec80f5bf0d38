"""The rest of the desk in Chromium: return with a note (the sender reads it in the app),
withhold with a reason from the list, pause and resume the case (the participant's letter is
then refused at submit), the timeline, the mediator's inbox and a message to a participant.
Everything by keyboard and pointer alike, and readable at 200% zoom."""

from __future__ import annotations

import io
from pathlib import Path

from relay.client.scenario import World
from relay.client.sdk import ProblemError
from tests.web.support import PASSPHRASE, chromium, interface, profile_for, shot, signed_in


async def test_return_withhold_pause_timeline_inbox_and_write(world: World, tmp_path: Path) -> None:
    victim = await world.session(world.victim)
    offender = await world.session(world.offender, on_terminal=True)
    try:
        to_return = await victim.send(case_id=world.case_id, recipient=world.offender.person_id,
                                      src=io.BytesIO(b"First letter.\n"))
        to_withhold = await victim.send(case_id=world.case_id, recipient=world.offender.person_id,
                                        src=io.BytesIO(b"Second letter.\n"))
        await offender.send(case_id=world.case_id, recipient="mediators", src=io.BytesIO(b"A word for you.\n"))
    finally:
        await offender.close()

    desk_profile = profile_for(tmp_path / "desk", world, world.mediator, "desk")
    async with interface(desk_profile, "desk") as desk, chromium(tmp_path / "browser") as browser:
        page = await browser.new_page()
        await page.goto(desk.link)
        # Keyboard only: the passphrase field, then Enter.
        await page.focus("#passphrase")
        await page.keyboard.type(PASSPHRASE)
        await page.keyboard.press("Enter")
        await page.wait_for_selector("table.queue")

        await page.goto(f"{desk.url}/items/{to_return['id']}/return")
        await page.click("#confirm-return")  # an empty note: the browser asks for it, nothing is sent
        assert await page.locator("#note:invalid").count() == 1 and page.url.endswith("/return")
        await page.fill("#note", "Please say this more gently; we can talk on Tuesday.")
        await page.click("#confirm-return")
        assert "Returned to Victim" in await page.inner_text("#result")

        await page.goto(f"{desk.url}/items/{to_withhold['id']}/withhold")
        labels = await page.locator("fieldset label").all_inner_texts()
        assert len(labels) >= 5 and all(label.strip() for label in labels)
        await page.check("#reason-not-ready")
        await shot(page, "desk-withhold")
        await page.click("#confirm-withhold")
        assert "Withheld" in await page.inner_text("#result")

        await page.goto(f"{desk.url}/inbox")
        await page.click("text=Offender")
        assert "A word for you." in await page.inner_text(".letter")
        await page.click("text=Write to Offender")
        await page.fill("#text", "Thank you for your note.\n")
        await page.click("#send")
        assert "Your message was sent." in await page.inner_text("main")

        await page.select_option("#case-reason", "safety-assessment")
        await page.click("#pause-case")
        assert "Paused" in await page.inner_text("#case-status")
        events = await page.locator("#timeline li").evaluate_all("items => items.map(i => i.dataset.event)")
        for event in ("case-paused", "returned", "withheld", "submitted"):
            assert event in events, events
        await shot(page, "desk-case")
        try:
            await victim.send(case_id=world.case_id, recipient=world.offender.person_id, src=io.BytesIO(b"Hello\n"))
            raise AssertionError("a paused case carried a letter between the participants")
        except ProblemError as refused:
            assert refused.status in (403, 409, 422)
        await page.select_option("#case-reason", "assessment-complete")
        await page.click("#resume-case")
        assert "Open" in await page.inner_text("#case-status")

        # 200% zoom on a 1280-pixel screen is a 640-pixel layout: nothing needs a sideways scroll.
        await page.set_viewport_size({"width": 640, "height": 900})
        overflow = await page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 1
        await shot(page, "desk-case-narrow")

    app_profile = profile_for(tmp_path / "app", world, world.victim, "app")
    async with interface(app_profile, "app") as app, chromium(tmp_path / "browser-app") as browser:
        page = await signed_in(browser, app)
        sent = await page.inner_text("main")
        assert "Returned to you by your mediator" in sent and "Not passed on by your mediator" in sent
        await page.click("text=Read the note")
        assert "we can talk on Tuesday" in await page.inner_text(".letter")
        await shot(page, "app-note")
    await victim.close()
