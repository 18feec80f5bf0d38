"""The desk says where an item stands and offers only what can be done: no release while the
case is paused (and the way to resume it), a refusal in the mediator's words and in the page's
language, and a decided letter never presented as what the recipient "would receive"."""

from __future__ import annotations

import io
from pathlib import Path

from relay.client.scenario import World
from tests.web.support import chromium, desk_signed_in, interface, profile_for, shot, victim_writes


async def test_a_paused_case_offers_no_release_and_says_how_to_resume(world: World, tmp_path: Path) -> None:
    victim = await world.session(world.victim)
    mediator = await world.session(world.mediator)
    try:
        waiting = await victim.send(case_id=world.case_id, recipient=world.offender.person_id,
                                    src=io.BytesIO(b"A letter that waits.\n"))
        await mediator.call("POST", f"/v1/cases/{world.case_id}/pause",
                            json_body={"paused": True, "reason": "safety-assessment"})
    finally:
        await victim.close()
        await mediator.close()
    profile = profile_for(tmp_path / "desk", world, world.mediator, "desk")
    async with interface(profile, "desk") as desk, chromium(tmp_path / "browser") as browser:
        page = await desk_signed_in(browser, desk)
        await page.click("a.open-item")
        assert await page.locator("#release-as-written").count() == 0
        assert await page.locator("#redact").count() == 0
        offer = await page.inner_text("#paused-no-release")
        assert "not possible while the case is paused" in offer
        await shot(page, "desk-letter-paused")
        await page.click("#paused-no-release a")
        assert page.url.endswith(f"/cases/{world.case_id}")
        assert await page.locator("#resume-case").count() == 1

        # The confirmation offers none either.
        await page.goto(f"{desk.url}/items/{waiting['id']}/release")
        assert await page.locator("#confirm-release").count() == 0
        assert await page.locator("#paused-no-release").count() == 1

        # Forced anyway (a confirmation left open from before the pause): the relay refuses, and
        # the desk says so to the mediator, not in the words meant for a participant, and in French
        # when the page is read in French (the interface was started in English).
        mediator = await world.session(world.mediator)
        try:
            await mediator.call("POST", f"/v1/cases/{world.case_id}/pause",
                                json_body={"paused": False, "reason": "assessment-complete"})
            await page.goto(f"{desk.url}/items/{waiting['id']}/release")
            await page.click("text=Français")
            await mediator.call("POST", f"/v1/cases/{world.case_id}/pause",
                                json_body={"paused": True, "reason": "safety-assessment"})
        finally:
            await mediator.close()
        await page.click("#confirm-release")
        refusal = await page.inner_text("main")
        assert "filtrage" in refusal and "dossier" in refusal, refusal
        assert "Your mediator" not in refusal and "votre médiateur" not in refusal.lower(), refusal
        assert "screening" not in refusal and "relay's" not in refusal, refusal
        await shot(page, "fr-desk-release-refused-paused")
        await page.click("#back-to-item")
        assert page.url.endswith(f"/items/{waiting['id']}")
        # An item that cannot be shown offers no way "back" to itself.
        await page.goto(f"{desk.url}/items/itm_0123456789abcdef")
        assert "Cela n'a pas fonctionné" in await page.inner_text("h1")
        assert await page.locator("#back-to-item").count() == 0


async def test_a_decided_letter_is_not_shown_as_what_the_recipient_would_receive(world: World,
                                                                                 tmp_path: Path) -> None:
    sent = await victim_writes(world, "We live at 12 Elm St.\u200b Second line.\n".encode())
    profile = profile_for(tmp_path / "desk", world, world.mediator, "desk")
    async with interface(profile, "desk") as desk, chromium(tmp_path / "browser") as browser:
        page = await desk_signed_in(browser, desk)
        await page.goto(f"{desk.url}/items/{sent['id']}/edit")
        await page.fill("#text", "We live at [removed]. Second line.\n")
        await page.click("#preview")
        await page.click("#confirm-draft")
        await page.click("#confirm-release")
        assert "Released" in await page.inner_text("#result")
        await page.goto(f"{desk.url}/items/{sent['id']}")
        shown = await page.inner_text("main")
        assert "would receive" not in shown and "would contain" not in shown, shown
        assert "as its sender wrote it" in await page.inner_text("#decided")
        assert "edited version" in await page.inner_text("#decided")
        await shot(page, "desk-letter-released")


async def test_an_address_with_nothing_behind_it_answers_a_page_in_the_readers_language(world: World,
                                                                                       tmp_path: Path) -> None:
    profile = profile_for(tmp_path / "desk", world, world.mediator, "desk")
    async with interface(profile, "desk", lang="fr") as desk, chromium(tmp_path / "browser") as browser:
        page = await desk_signed_in(browser, desk)
        for address in ("/no-such-page", "/media/a-video-of-an-ended-session", "/items/itm_0123456789abcdef/nope"):
            response = await page.goto(desk.url + address)
            assert response is not None and response.status == 404
            assert await page.get_attribute("html", "lang") == "fr"
            assert await page.inner_text("h1") == "Rien ici"
            assert "Not Found" not in await page.inner_text("body")
            assert await page.locator("#sign-out").count() == 1  # still signed in, and can leave
        await shot(page, "fr-desk-not-found")
        await page.click("text=Retour au début")
        assert await page.locator("h1").inner_text() == "File d'examen"


async def test_a_case_the_coordinator_left_unnamed_is_named_in_the_readers_language(world: World,
                                                                                   tmp_path: Path) -> None:
    sent = await victim_writes(world, b"A letter.\n")
    profile = profile_for(tmp_path / "desk", world, world.mediator, "desk")
    async with interface(profile, "desk", lang="fr") as desk, chromium(tmp_path / "browser") as browser:
        page = await desk_signed_in(browser, desk)
        row = await page.inner_text(f"tr[data-item='{sent['id']}']")
        assert "Dossier 1" in row and "Case" not in row, row
        await page.goto(f"{desk.url}/items/{sent['id']}")
        meta = await page.inner_text(".meta")
        assert meta.startswith("Dossier 1 ·") and "Dossier Dossier" not in meta, meta
        await page.goto(f"{desk.url}/cases/{world.case_id}")
        assert await page.inner_text("h1") == "Dossier 1"
        await shot(page, "fr-desk-case")


async def test_a_letter_to_the_mediators_opened_from_the_timeline_says_what_it_is(world: World,
                                                                                 tmp_path: Path) -> None:
    offender = await world.session(world.offender, on_terminal=True)
    try:
        await offender.send(case_id=world.case_id, recipient="mediators", src=io.BytesIO(b"For you only.\n"))
    finally:
        await offender.close()
    profile = profile_for(tmp_path / "desk", world, world.mediator, "desk")
    async with interface(profile, "desk") as desk, chromium(tmp_path / "browser") as browser:
        page = await desk_signed_in(browser, desk)
        await page.goto(f"{desk.url}/cases/{world.case_id}")
        await page.click("#timeline li[data-event='submitted'] a")
        shown = await page.inner_text("main")
        assert "For you only." in shown
        assert "not passed on to anyone" in await page.inner_text("#to-mediators")
        for wrong in ("would receive", "This letter was not passed on", "Released"):
            assert wrong not in shown, shown


async def test_pausing_a_case_asks_for_its_reason_rather_than_recording_the_first_one(world: World,
                                                                                     tmp_path: Path) -> None:
    profile = profile_for(tmp_path / "desk", world, world.mediator, "desk")
    async with interface(profile, "desk", lang="fr") as desk, chromium(tmp_path / "browser") as browser:
        page = await desk_signed_in(browser, desk)
        await page.goto(f"{desk.url}/cases/{world.case_id}")
        assert await page.input_value("#case-reason") == ""  # no reason chosen for the mediator
        await page.click("#pause-case")
        assert await page.locator("#case-reason:invalid").count() == 1
        assert await page.inner_text("#case-status") == "Ouvert"
        # Sent without one all the same (a browser that does not check forms): refused in words.
        await page.evaluate("document.getElementById('case-reason').removeAttribute('required')")
        await page.click("#pause-case")
        assert "Choisissez un motif dans la liste" in await page.inner_text("#case-error")
        assert await page.inner_text("#case-status") == "Ouvert"
        await page.select_option("#case-reason", "safety-assessment")
        await page.click("#pause-case")
        assert "Suspendu" in await page.inner_text("#case-status")
        await shot(page, "fr-desk-case-paused")


async def test_a_redaction_of_a_letter_that_cannot_be_released_now_offers_no_release(world: World,
                                                                                     tmp_path: Path) -> None:
    victim = await world.session(world.victim)
    mediator = await world.session(world.mediator)
    try:
        waiting = await victim.send(case_id=world.case_id, recipient=world.offender.person_id,
                                    src=io.BytesIO(b"We moved to 12 Elm St.\n"))
    finally:
        await victim.close()
    profile = profile_for(tmp_path / "desk", world, world.mediator, "desk")
    async with interface(profile, "desk") as desk, chromium(tmp_path / "browser") as browser:
        page = await desk_signed_in(browser, desk)
        await page.goto(f"{desk.url}/items/{waiting['id']}/edit")
        await page.fill("#text", "We moved.\n")
        await page.click("#preview")
        assert await page.locator("#confirm-draft").count() == 1
        try:  # the case is paused while the mediator compares
            await mediator.call("POST", f"/v1/cases/{world.case_id}/pause",
                                json_body={"paused": True, "reason": "safety-assessment"})
        finally:
            await mediator.close()
        await page.reload()
        assert await page.locator("#confirm-draft").count() == 0
        assert "not possible while the case is paused" in await page.inner_text("#paused-no-release")
        assert "We moved." in await page.inner_text(".side-by-side")  # the redaction is still there
        await shot(page, "desk-preview-paused")
