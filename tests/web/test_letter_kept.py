"""A participant's letter that the relay does not take (the case is paused) is not lost: the form
comes back with the letter as written, the recipient chosen, and why, in words; once the case is
resumed the same letter is sent."""

from __future__ import annotations

import io
import re
from pathlib import Path

from relay.client.scenario import World
from tests.web.support import chromium, desk_signed_in, interface, kiosk_signed_in, profile_for, shot, signed_in
from tests.web.test_nothing_left import _files, _found

LETTER = "Three pages I wrote slowly. MARKER-KEPT-7Q\nSecond paragraph.\n"


async def test_a_refused_letter_comes_back_as_written_and_can_be_sent_later(world: World, tmp_path: Path) -> None:
    mediator = await world.session(world.mediator)
    try:
        await mediator.call("POST", f"/v1/cases/{world.case_id}/pause",
                            json_body={"paused": True, "reason": "participant-wellbeing"})
        profile = profile_for(tmp_path / "kiosk", world, None, "kiosk")
        async with interface(profile, "kiosk", lang="fr") as kiosk, chromium(tmp_path / "browser") as browser:
            page = await kiosk_signed_in(browser, kiosk, world)
            await page.goto(kiosk.url + "/write")
            victim = f"{world.case_id}|{world.victim.person_id}"
            await page.select_option("#to", victim)
            await page.fill("#text", LETTER)
            await page.click("#send")
            assert "/write?unsent=" in page.url
            said = await page.inner_text("#write-error")
            assert "ne peut pas être envoyé" in said and "n'a pas été envoyée" in said, said
            assert await page.input_value("#text") == LETTER
            assert await page.input_value("#to") == victim
            await shot(page, "fr-kiosk-letter-kept")

            await mediator.call("POST", f"/v1/cases/{world.case_id}/pause",
                                json_body={"paused": False, "reason": "participant-ready"})
            await page.click("#send")
            assert page.url.endswith("/sent")
            await page.goto(kiosk.url + "/")
            assert "En attente de l'examen de votre médiateur" in await page.inner_text("main")
            await page.click("#sign-out")
        # The page that gave the letter back (server-rendered, no-store, autocomplete off) left
        # none of it in the browser's profile, nor in the kiosk's.
        needles = [b"MARKER-KEPT-7Q", "MARKER-KEPT-7Q".encode("utf-16-le")]
        assert len(_files(tmp_path / "browser")) > 10  # the browser's profile is there to search
        assert not _found([tmp_path / "browser", tmp_path / "kiosk"], needles)
        queue = await mediator.call("GET", "/v1/review/queue")
        assert [(q["sender_id"], q["recipient_id"]) for q in queue] == [
            (world.offender.person_id, world.victim.person_id)]
    finally:
        await mediator.close()


NOTE = "Could you say the second part in your own words? MARKER-NOTE-4D\n"


async def test_a_return_note_the_relay_refuses_comes_back_with_why(world: World, tmp_path: Path) -> None:
    """Another mediator decided the item while this one wrote the note: the note is not lost."""
    victim = await world.session(world.victim)
    mediator = await world.session(world.mediator)
    try:
        sent = await victim.send(case_id=world.case_id, recipient=world.offender.person_id,
                                 src=io.BytesIO(b"A letter.\n"))
        profile = profile_for(tmp_path / "desk", world, world.mediator, "desk")
        async with interface(profile, "desk") as desk, chromium(tmp_path / "browser") as browser:
            page = await desk_signed_in(browser, desk)
            await page.goto(f"{desk.url}/items/{sent['id']}/return")
            await page.fill("#note", NOTE)
            await mediator.release(sent["id"])  # decided elsewhere meanwhile
            await page.click("#confirm-return")
            assert f"/items/{sent['id']}/return?unsent=" in page.url
            said = await page.inner_text("#return-error")
            assert "already recorded" in said and "released" in said and "not sent" in said, said
            assert not re.search(r"\d{4}-\d{2}-\d{2}T", said), said  # a date in words, not the relay's stamp
            assert (await page.input_value("#note")).strip() == NOTE.strip()
            await shot(page, "desk-return-kept")
    finally:
        await victim.close()
        await mediator.close()


async def test_the_app_asks_who_a_letter_is_for_rather_than_choosing_for_the_writer(world: World,
                                                                                    tmp_path: Path) -> None:
    """A letter meant for the mediator must not leave addressed to the other participant because
    that name came first in the list."""
    profile = profile_for(tmp_path / "app", world, world.victim, "app")
    async with interface(profile, "app") as app, chromium(tmp_path / "browser") as browser:
        page = await signed_in(browser, app)
        # Letters and videos alike are listed under "My messages".
        assert await page.get_by_role("link", name="My messages").count() == 1
        for form, select in (("/write", "#to"), ("/video", "#video-to")):
            await page.goto(app.url + form)
            assert await page.input_value(select) == ""
            assert "Choose who it is for" in await page.inner_text(f"{select} option:checked")
        await page.goto(app.url + "/write")
        await page.fill("#text", "For my mediator only: I am afraid.\n")
        await page.click("#send")
        assert await page.locator("#to:invalid").count() == 1 and page.url.endswith("/write")
        await shot(page, "app-write-choose")
    mediator = await world.session(world.mediator)
    try:
        assert await mediator.call("GET", "/v1/review/queue") == []
        assert await mediator.call("GET", "/v1/review/inbox") == []
    finally:
        await mediator.close()
